// GET /agency-registrations, GET /agency-registrations/{id}, POST /agency-registrations/{id}/accept|reject: the
// registrations agencies sent through the portal's form, waiting for an operator. Accepting creates the agency with
// the registered domains in the key directory (its addresses and keys are added afterwards as for any agency).
import type { Pool } from '@smgw/db';
import {
  type AgencyRegistration,
  acceptAgencyRegistration,
  findAgencyRegistration,
  listAgencyRegistrations,
  REGISTRATION_STATES,
  type RegistrationDecision,
  type RegistrationState,
  rejectAgencyRegistration,
} from '@smgw/key-directory';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { DEFAULT_OPERATOR, operatorHeaders } from './operator.ts';
import { problem, problemSchema } from './problem.ts';

export interface AgencyRegistrationRouteOptions {
  pool: Pool;
  now: () => Date;
}

const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
/** Free text that cannot forge a terminal line; newlines are allowed in a note. */
const NOTE_PATTERN = '^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f]*$';

const nullableString = { type: ['string', 'null'] } as const;

const registrationSchema = {
  type: 'object',
  required: ['id', 'agencyName', 'contactName', 'contactEmail', 'domains', 'state', 'createdAt'],
  properties: {
    id: { type: 'string' },
    agencyName: { type: 'string' },
    contactName: { type: 'string' },
    contactEmail: { type: 'string' },
    contactPhone: nullableString,
    domains: { type: 'array', items: { type: 'string' } },
    note: nullableString,
    state: { type: 'string' },
    createdAt: { type: 'string' },
    decidedAt: nullableString,
    decidedBy: nullableString,
    decisionNote: nullableString,
    agencyId: nullableString,
  },
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: UUID_PATTERN } },
} as const;

function toJson(r: AgencyRegistration) {
  return { ...r, createdAt: r.createdAt.toISOString(), decidedAt: r.decidedAt?.toISOString() ?? null };
}

/** The answer to a decision that did not happen: 404, or 409 naming why. */
function refusal(reply: FastifyReply, id: string, decision: RegistrationDecision) {
  switch (decision.kind) {
    case 'not-found':
      return reply.code(404).send(problem('REGISTRATION_NOT_FOUND', `no agency registration ${id}`));
    case 'already-decided':
      return reply
        .code(409)
        .send(
          problem(
            'REGISTRATION_DECIDED',
            `registration ${id} was ${decision.registration.state} by ${decision.registration.decidedBy} already`,
          ),
        );
    case 'name-taken':
      return reply
        .code(409)
        .send(problem('AGENCY_EXISTS', `an agency named "${decision.registration.agencyName}" exists`));
    case 'domain-taken':
      return reply
        .code(409)
        .send(problem('DOMAIN_TAKEN', `a domain belongs to another agency already (${decision.detail})`));
    default:
      throw new Error(`not a refusal: ${decision.kind}`);
  }
}

export async function agencyRegistrationRoutes(
  api: FastifyInstance,
  options: AgencyRegistrationRouteOptions,
): Promise<void> {
  api.get<{ Querystring: { state: RegistrationState | 'all'; limit: number } }>(
    '/agency-registrations',
    {
      schema: {
        querystring: {
          type: 'object',
          propertyNames: { enum: ['state', 'limit'] },
          properties: {
            state: { type: 'string', enum: [...REGISTRATION_STATES, 'all'], default: 'pending' },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['registrations'],
            properties: { registrations: { type: 'array', items: registrationSchema } },
          },
          400: problemSchema,
        },
      },
    },
    async (req) => {
      const state = req.query.state === 'all' ? undefined : req.query.state;
      const registrations = await listAgencyRegistrations(options.pool, { state, limit: req.query.limit });
      return { registrations: registrations.map(toJson) };
    },
  );

  api.get<{ Params: { id: string } }>(
    '/agency-registrations/:id',
    { schema: { params: idParams, response: { 200: registrationSchema, 400: problemSchema, 404: problemSchema } } },
    async (req, reply) => {
      const id = req.params.id.toLowerCase();
      const registration = await findAgencyRegistration(options.pool, id);
      if (!registration) return reply.code(404).send(problem('REGISTRATION_NOT_FOUND', `no agency registration ${id}`));
      return toJson(registration);
    },
  );

  api.post<{
    Params: { id: string };
    Body: { note?: string; signOutbound?: boolean } | undefined;
    Headers: { 'x-smgw-operator'?: string };
  }>(
    '/agency-registrations/:id/accept',
    {
      // Before the schema: the body is optional (a bare POST accepts), and the schema's type coercion would turn
      // "yes" or 1 into a boolean.
      preValidation: async (req, reply) => {
        if (req.body === undefined) req.body = {};
        const flag = (req.body as Record<string, unknown> | undefined)?.signOutbound;
        if (flag !== undefined && typeof flag !== 'boolean') {
          return reply.code(400).send(problem('BAD_REQUEST', 'body/signOutbound must be true or false'));
        }
      },
      schema: {
        params: idParams,
        headers: operatorHeaders,
        body: {
          type: 'object',
          propertyNames: { enum: ['note', 'signOutbound'] },
          properties: {
            note: { type: 'string', maxLength: 2000, pattern: NOTE_PATTERN },
            signOutbound: { type: 'boolean' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['registration', 'agencyId'],
            properties: { registration: registrationSchema, agencyId: { type: 'string' } },
          },
          400: problemSchema,
          404: problemSchema,
          409: problemSchema,
        },
      },
    },
    async (req, reply) => {
      const id = req.params.id.toLowerCase();
      const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
      const decision = await acceptAgencyRegistration(options.pool, {
        id,
        operator,
        note: req.body?.note,
        signOutbound: req.body?.signOutbound ?? false,
        now: options.now(),
      });
      if (decision.kind !== 'accepted') return refusal(reply, id, decision);
      req.log.info(
        {
          code: 'AGENCY_REGISTRATION_ACCEPTED',
          registrationId: id,
          agencyId: decision.agencyId,
          domains: decision.registration.domains,
          operator,
        },
        'agency registration accepted: agency created',
      );
      return { registration: toJson(decision.registration), agencyId: decision.agencyId };
    },
  );

  api.post<{ Params: { id: string }; Body: { note: string }; Headers: { 'x-smgw-operator'?: string } }>(
    '/agency-registrations/:id/reject',
    {
      schema: {
        params: idParams,
        headers: operatorHeaders,
        body: {
          type: 'object',
          required: ['note'],
          propertyNames: { enum: ['note'] },
          properties: { note: { type: 'string', minLength: 1, maxLength: 2000, pattern: NOTE_PATTERN } },
        },
        response: { 200: registrationSchema, 400: problemSchema, 404: problemSchema, 409: problemSchema },
      },
    },
    async (req, reply) => {
      const id = req.params.id.toLowerCase();
      const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
      const note = req.body.note.trim();
      if (!note) return reply.code(400).send(problem('BAD_REQUEST', 'body/note must say why'));
      const decision = await rejectAgencyRegistration(options.pool, { id, operator, note, now: options.now() });
      if (decision.kind !== 'rejected') return refusal(reply, id, decision);
      req.log.info(
        { code: 'AGENCY_REGISTRATION_REJECTED', registrationId: id, operator },
        'agency registration rejected',
      );
      return toJson(decision.registration);
    },
  );
}
