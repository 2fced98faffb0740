// GET /quarantine, GET /quarantine/{id}, POST /quarantine/{id}/release (SPEC.md "Admin API"). Request and response
// schemas sit beside each route; the response schemas also make sure nothing but these fields ever leaves.
import type { Pool } from '@smgw/db';
import { DIRECTIONS, type Envelope, MESSAGE_ID_PATTERN_ANY_CASE } from '@smgw/envelope';
import { type Logger, messageLogger } from '@smgw/observability';
import { getQuarantineEntry, listQuarantine, QUARANTINE_STATES, type QuarantineState } from '@smgw/quarantine';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_OPERATOR, operatorHeaders } from './operator.ts';
import { problem, problemSchema } from './problem.ts';
import { releaseQuarantined } from './release-quarantined.ts';

/** Free text that cannot break a terminal line or forge one. */
const NO_CONTROL_CHARACTERS = '^[^\\u0000-\\u001f\\u007f]*$';

const MAX_PAGE = 500;

const nullableString = { type: ['string', 'null'] } as const;

const entrySchema = {
  type: 'object',
  required: ['id', 'messageId', 'direction', 'verdict', 'finding', 'quarantinedAt', 'expiresAt'],
  properties: {
    id: { type: 'string' },
    messageId: { type: 'string' },
    direction: { type: 'string' },
    verdict: { type: 'string' },
    finding: { type: 'string' },
    detail: nullableString,
    quarantinedAt: { type: 'string' },
    expiresAt: { type: 'string' },
    releasedAt: nullableString,
    releasedBy: nullableString,
    releaseReason: nullableString,
    mailFrom: { type: 'string' },
    recipients: { type: 'array', items: { type: 'string' } },
  },
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: MESSAGE_ID_PATTERN_ANY_CASE } },
} as const;

export interface QuarantineRouteOptions {
  pool: Pool;
  /** Confirmed publish to the envelope's next stage (the mq package). */
  publish: (envelope: Envelope) => Promise<void>;
}

export async function quarantineRoutes(api: FastifyInstance, options: QuarantineRouteOptions): Promise<void> {
  api.get<{ Querystring: { state: QuarantineState; direction?: string; limit: number; before?: string } }>(
    '/quarantine',
    {
      schema: {
        querystring: {
          type: 'object',
          // Unknown names are refused (fastify's Ajv would silently drop them under additionalProperties: false).
          propertyNames: { enum: ['state', 'direction', 'limit', 'before'] },
          properties: {
            state: { type: 'string', enum: [...QUARANTINE_STATES], default: 'open' },
            direction: { type: 'string', enum: [...DIRECTIONS] },
            limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 100 },
            before: { type: 'string', pattern: MESSAGE_ID_PATTERN_ANY_CASE },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['entries', 'nextBefore'],
            properties: { entries: { type: 'array', items: entrySchema }, nextBefore: nullableString },
          },
          400: problemSchema,
        },
      },
    },
    async (req) => {
      const { state, direction, limit, before } = req.query;
      const entries = await listQuarantine(options.pool, {
        state,
        direction,
        limit,
        before: before?.toUpperCase(),
      });
      // A full page may have more behind it: the last id is the cursor for the next one.
      const nextBefore = entries.length === limit ? (entries.at(-1)?.id ?? null) : null;
      return { entries, nextBefore };
    },
  );

  api.get<{ Params: { id: string } }>(
    '/quarantine/:id',
    { schema: { params: idParams, response: { 200: entrySchema, 400: problemSchema, 404: problemSchema } } },
    async (req, reply) => {
      const id = req.params.id.toUpperCase();
      const entry = await getQuarantineEntry(options.pool, id);
      if (!entry) return reply.code(404).send(problem('QUARANTINE_NOT_FOUND', `no quarantine entry ${id}`));
      return entry;
    },
  );

  api.post<{ Params: { id: string }; Body: { reason?: string } | undefined; Headers: { 'x-smgw-operator'?: string } }>(
    '/quarantine/:id/release',
    {
      preValidation: async (req, reply) => {
        // The body is optional: a POST without one is validated as an empty object.
        req.body ??= {};
        // Checked before the schema, whose type coercion would turn a number into a string.
        const reason = (req.body as { reason?: unknown }).reason;
        if (reason !== undefined && typeof reason !== 'string') {
          return reply.code(400).send(problem('BAD_REQUEST', 'body/reason must be a string'));
        }
      },
      schema: {
        params: idParams,
        headers: operatorHeaders,
        body: {
          type: 'object',
          propertyNames: { enum: ['reason'] },
          properties: { reason: { type: 'string', minLength: 1, maxLength: 500, pattern: NO_CONTROL_CHARACTERS } },
        },
        response: {
          200: {
            type: 'object',
            required: ['entry', 'queuedFor'],
            properties: { entry: entrySchema, queuedFor: { type: 'string' } },
          },
          400: problemSchema,
          404: problemSchema,
          409: problemSchema,
          422: problemSchema,
          503: problemSchema,
        },
      },
    },
    async (req, reply) => {
      const id = req.params.id.toUpperCase();
      const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
      const result = await releaseQuarantined(options.pool, options.publish, {
        id,
        operator,
        reason: req.body?.reason,
        now: new Date(),
      });
      switch (result.kind) {
        case 'released': {
          const log = messageLogger(req.log as Logger, result.envelope);
          log.info(
            { code: 'QUARANTINE_RELEASED', quarantineId: id, operator, queuedFor: result.envelope.itinerary[0] },
            'released from quarantine',
          );
          return { entry: result.entry, queuedFor: result.envelope.itinerary[0] ?? '' };
        }
        case 'not-found':
          return reply.code(404).send(problem('QUARANTINE_NOT_FOUND', `no quarantine entry ${id}`));
        case 'already-released':
          return reply
            .code(409)
            .send(
              problem(
                'ALREADY_RELEASED',
                `${id} was released by ${result.entry.releasedBy} at ${result.entry.releasedAt}`,
              ),
            );
        case 'envelope-unusable':
          req.log.error(
            {
              code: 'QUARANTINE_ENVELOPE_UNUSABLE',
              quarantineId: id,
              messageId: result.messageId,
              reason: result.reason,
            },
            'cannot release',
          );
          return reply.code(422).send(problem('QUARANTINE_ENVELOPE_UNUSABLE', result.reason));
        case 'queue-unavailable':
          messageLogger(req.log as Logger, result.envelope).warn(
            { code: 'QUEUE_UNAVAILABLE', quarantineId: id, err: result.error.message },
            'release not published; nothing changed',
          );
          return reply
            .code(503)
            .header('retry-after', '30')
            .send(
              problem('QUEUE_UNAVAILABLE', 'the message queue did not take the message; nothing changed, try again'),
            );
      }
    },
  );
}
