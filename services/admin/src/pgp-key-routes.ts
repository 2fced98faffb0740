// POST /pgp-keys, POST /pgp-keys/{fingerprint}/approve|reject, GET /pgp-keys (SPEC.md "Admin API"). An imported key
// is pending (a known one keeps its state and becomes the operator's, source `imported`): the encrypt stage uses a key
// only for the addresses it is approved for. Approval names them (default: every address of the key), records who and
// when, and displaces another key approved for an address only when that address is named (approvePgpKey).
import { inspectPublicKey, type PgpKeyInfo } from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import {
  addPgpKey,
  approvePgpKey,
  getPgpKeyArmored,
  listPgpKeys,
  PGP_KEY_STATES,
  type PgpKeyState,
  rejectPgpKey,
} from '@smgw/key-directory';
import type { FastifyInstance } from 'fastify';
import { ARMORED_KEY_BODY_TYPES, acceptKeyMaterialBodies, textBody } from './key-material-bodies.ts';
import { DEFAULT_OPERATOR, operatorHeaders } from './operator.ts';
import { problem, problemSchema } from './problem.ts';

export interface PgpKeyRouteOptions {
  pool: Pool;
  now: () => Date;
}

const pgpKeySchema = {
  type: 'object',
  required: ['fingerprint', 'addresses', 'approvedAddresses', 'algorithm', 'expiresAt', 'state', 'source', 'createdAt'],
  properties: {
    fingerprint: { type: 'string' },
    addresses: { type: 'array', items: { type: 'string' } },
    approvedAddresses: { type: 'array', items: { type: 'string' } },
    algorithm: { type: 'string' },
    expiresAt: { type: ['string', 'null'] },
    state: { type: 'string' },
    source: { type: 'string' },
    stateChangedBy: { type: ['string', 'null'] },
    stateChangedAt: { type: ['string', 'null'] },
    createdAt: { type: 'string' },
  },
} as const;

const withdrawnSchema = {
  type: 'array',
  items: {
    type: 'object',
    required: ['address', 'fingerprint'],
    properties: { address: { type: 'string' }, fingerprint: { type: 'string' } },
  },
} as const;

/** The key as approved, and the addresses the approval took from another key (each with that key). */
const approvedSchema = {
  ...pgpKeySchema,
  required: [...pgpKeySchema.required, 'replaced'],
  properties: { ...pgpKeySchema.properties, replaced: withdrawnSchema },
} as const;

const approveBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    addresses: {
      type: 'array',
      minItems: 1,
      maxItems: 100,
      items: { type: 'string', minLength: 3, maxLength: 320, pattern: '^[^@\\s]+@[^@\\s]+$' },
    },
  },
} as const;

const fingerprintParams = {
  type: 'object',
  required: ['fingerprint'],
  properties: { fingerprint: { type: 'string', pattern: '^[0-9A-Fa-f]{32,64}$' } },
} as const;

type Inspection = { ok: true; info: PgpKeyInfo } | { ok: false; code: string; message: string };

/** inspectPublicKey, with every problem turned into one refusal: the first code, and all of them in the message. */
async function inspect(armored: string, now: Date): Promise<Inspection> {
  let info: PgpKeyInfo;
  try {
    info = await inspectPublicKey(armored, { now });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'PGP_KEY_MALFORMED') return { ok: false, code, message: (err as Error).message };
    throw err;
  }
  const [first] = info.problems;
  if (first) {
    return { ok: false, code: first.code, message: info.problems.map((p) => `${p.code}: ${p.detail}`).join('; ') };
  }
  if (info.addresses.length === 0) {
    return { ok: false, code: 'PGP_KEY_NO_ADDRESS', message: 'no valid user ID of the key names an e-mail address' };
  }
  return { ok: true, info };
}

export async function pgpKeyRoutes(api: FastifyInstance, options: PgpKeyRouteOptions): Promise<void> {
  acceptKeyMaterialBodies(api);

  api.post<{ Headers: { 'x-smgw-operator'?: string } }>(
    '/pgp-keys',
    {
      config: { bodyTypes: ARMORED_KEY_BODY_TYPES },
      schema: {
        headers: operatorHeaders,
        response: { 200: pgpKeySchema, 201: pgpKeySchema, 400: problemSchema, 422: problemSchema },
      },
    },
    async (req, reply) => {
      const armored = textBody(req.body);
      if (!armored) {
        return reply
          .code(400)
          .send(
            problem(
              'BAD_REQUEST',
              `the body must be an armored public key (content-type ${ARMORED_KEY_BODY_TYPES.join(', ')})`,
            ),
          );
      }
      const inspection = await inspect(armored, options.now());
      if (!inspection.ok) return reply.code(422).send(problem(inspection.code, inspection.message));
      const { info } = inspection;
      const result = await addPgpKey(options.pool, {
        fingerprint: info.fingerprint,
        armored: info.armored,
        addresses: info.addresses,
        algorithm: info.curve ? `${info.algorithm} ${info.curve}` : `${info.algorithm} ${info.bits ?? ''}`.trim(),
        expiresAt: info.expires,
        source: 'imported',
      });
      const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
      if (result.created) {
        req.log.info(
          { code: 'PGP_KEY_IMPORTED', fingerprint: info.fingerprint, addresses: info.addresses, operator },
          'OpenPGP key imported (pending)',
        );
      } else if (result.takenOverFrom) {
        // Mail or the portal brought it first; the operator's import makes it theirs (it stays when a mailbox goes).
        req.log.info(
          {
            code: 'PGP_KEY_TAKEN_OVER',
            fingerprint: info.fingerprint,
            previousSource: result.takenOverFrom,
            state: result.key.state,
            operator,
          },
          'OpenPGP key imported by an operator: it was stored from mail or the portal, and is now theirs',
        );
      }
      return reply.code(result.created ? 201 : 200).send(result.key);
    },
  );

  api.post<{
    Params: { fingerprint: string };
    Headers: { 'x-smgw-operator'?: string };
    Body: { addresses?: string[] } | null | undefined;
  }>(
    '/pgp-keys/:fingerprint/approve',
    {
      schema: {
        params: fingerprintParams,
        headers: operatorHeaders,
        body: approveBody,
        response: {
          200: approvedSchema,
          400: problemSchema,
          404: problemSchema,
          409: problemSchema,
          422: problemSchema,
        },
      },
    },
    async (req, reply) => {
      const fingerprint = req.params.fingerprint.toUpperCase();
      const armored = await getPgpKeyArmored(options.pool, fingerprint);
      if (armored === undefined) {
        return reply.code(404).send(problem('PGP_KEY_NOT_FOUND', `no OpenPGP key ${fingerprint}`));
      }
      // A key may have expired or been found unusable since it was imported: approve only what is usable now.
      const inspection = await inspect(armored, options.now());
      if (!inspection.ok) return reply.code(422).send(problem(inspection.code, inspection.message));
      const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
      const approval = await approvePgpKey(options.pool, {
        fingerprint,
        addresses: req.body?.addresses,
        operator,
        at: options.now(),
      });
      if (!approval.ok) {
        const status = {
          PGP_KEY_NOT_FOUND: 404,
          PGP_KEY_ADDRESS_NOT_IN_KEY: 422,
          PGP_KEY_ADDRESSES_REQUIRED: 422,
          PGP_KEY_ADDRESS_HAS_APPROVED_KEY: 409,
        };
        return reply.code(status[approval.code]).send(problem(approval.code, approval.message));
      }
      req.log.info(
        {
          code: 'PGP_KEY_APPROVED',
          fingerprint,
          operator,
          addresses: approval.key.approvedAddresses,
          replaced: approval.replaced,
        },
        'OpenPGP key approved',
      );
      return { ...approval.key, replaced: approval.replaced };
    },
  );

  api.post<{ Params: { fingerprint: string }; Headers: { 'x-smgw-operator'?: string } }>(
    '/pgp-keys/:fingerprint/reject',
    {
      schema: {
        params: fingerprintParams,
        headers: operatorHeaders,
        response: { 200: pgpKeySchema, 400: problemSchema, 404: problemSchema },
      },
    },
    async (req, reply) => {
      const fingerprint = req.params.fingerprint.toUpperCase();
      const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
      const key = await rejectPgpKey(options.pool, { fingerprint, operator, at: options.now() });
      if (!key) return reply.code(404).send(problem('PGP_KEY_NOT_FOUND', `no OpenPGP key ${fingerprint}`));
      req.log.info({ code: 'PGP_KEY_REJECTED', fingerprint, operator }, 'OpenPGP key rejected');
      return key;
    },
  );

  api.get<{ Querystring: { state?: PgpKeyState; address?: string; limit: number } }>(
    '/pgp-keys',
    {
      schema: {
        querystring: {
          type: 'object',
          propertyNames: { enum: ['state', 'address', 'limit'] },
          properties: {
            state: { type: 'string', enum: [...PGP_KEY_STATES] },
            address: { type: 'string', minLength: 3, maxLength: 320, pattern: '^[^@\\s]+@[^@\\s]+$' },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
          },
        },
        response: {
          200: { type: 'object', required: ['keys'], properties: { keys: { type: 'array', items: pgpKeySchema } } },
          400: problemSchema,
        },
      },
    },
    async (req) => ({ keys: await listPgpKeys(options.pool, req.query) }),
  );
}
