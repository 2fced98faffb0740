// POST /pgp-keys, POST /pgp-keys/{fingerprint}/approve|reject, GET /pgp-keys (SPEC.md "Admin API"). An imported key
// is pending: the encrypt stage uses only approved keys. Approval records who and when.
import { inspectPublicKey, type PgpKeyInfo } from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import {
  addPgpKey,
  getPgpKeyArmored,
  listPgpKeys,
  PGP_KEY_STATES,
  type PgpKeyState,
  setPgpKeyState,
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
  required: ['fingerprint', 'addresses', 'algorithm', 'expiresAt', 'state', 'source', 'createdAt'],
  properties: {
    fingerprint: { type: 'string' },
    addresses: { type: 'array', items: { type: 'string' } },
    algorithm: { type: 'string' },
    expiresAt: { type: ['string', 'null'] },
    state: { type: 'string' },
    source: { type: 'string' },
    stateChangedBy: { type: ['string', 'null'] },
    stateChangedAt: { type: ['string', 'null'] },
    createdAt: { type: 'string' },
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

  api.post(
    '/pgp-keys',
    {
      config: { bodyTypes: ARMORED_KEY_BODY_TYPES },
      schema: { response: { 200: pgpKeySchema, 201: pgpKeySchema, 400: problemSchema, 422: problemSchema } },
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
      if (result.created) {
        req.log.info(
          { code: 'PGP_KEY_IMPORTED', fingerprint: info.fingerprint, addresses: info.addresses },
          'OpenPGP key imported (pending)',
        );
      }
      return reply.code(result.created ? 201 : 200).send(result.key);
    },
  );

  for (const action of ['approve', 'reject'] as const) {
    api.post<{ Params: { fingerprint: string }; Headers: { 'x-smgw-operator'?: string } }>(
      `/pgp-keys/:fingerprint/${action}`,
      {
        schema: {
          params: fingerprintParams,
          headers: operatorHeaders,
          response: { 200: pgpKeySchema, 400: problemSchema, 404: problemSchema, 422: problemSchema },
        },
      },
      async (req, reply) => {
        const fingerprint = req.params.fingerprint.toUpperCase();
        const armored = await getPgpKeyArmored(options.pool, fingerprint);
        if (armored === undefined) {
          return reply.code(404).send(problem('PGP_KEY_NOT_FOUND', `no OpenPGP key ${fingerprint}`));
        }
        if (action === 'approve') {
          // A key may have expired or been found unusable since it was imported: approve only what is usable now.
          const inspection = await inspect(armored, options.now());
          if (!inspection.ok) return reply.code(422).send(problem(inspection.code, inspection.message));
        }
        const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
        const key = await setPgpKeyState(options.pool, {
          fingerprint,
          state: action === 'approve' ? 'approved' : 'rejected',
          operator,
          at: options.now(),
        });
        if (!key) return reply.code(404).send(problem('PGP_KEY_NOT_FOUND', `no OpenPGP key ${fingerprint}`));
        req.log.info(
          { code: action === 'approve' ? 'PGP_KEY_APPROVED' : 'PGP_KEY_REJECTED', fingerprint, operator },
          `OpenPGP key ${key.state}`,
        );
        return key;
      },
    );
  }

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
