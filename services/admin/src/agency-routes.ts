// POST/GET /agencies, POST /agencies/{id}/addresses, POST /agencies/{id}/addresses/{address}/keys (SPEC.md "Admin
// API"): onboarding an agency, its addresses (signature verification on/off), and each address's own private keys
// for inbound decryption. Private keys are sealed under SMGW_MASTER_KEY before they touch the database and never
// leave the gateway again: the answer carries only the public part.
import { createHash } from 'node:crypto';
import { certificateFacts, type Pkcs12Contents, parsePkcs12, readPrivateKeyForStorage } from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import { MESSAGE_ID_PATTERN_ANY_CASE } from '@smgw/envelope';
import {
  addAgencyKey,
  agencyKeyAad,
  agencyOfAddress,
  createAgency,
  getAgency,
  listAgencies,
  putAgencyAddress,
  setAgencySigning,
} from '@smgw/key-directory';
import { sealSecret } from '@smgw/secrets';
import type { FastifyInstance } from 'fastify';
import { mediaTypeOf } from './body-types.ts';
import {
  acceptKeyMaterialBodies,
  CURL_DEFAULT_TYPE,
  looksArmoredOpenPgp,
  PGP_KEY_TYPE,
  PRIVATE_KEY_BODY_TYPES,
  TEXT_TYPE,
  textBody,
} from './key-material-bodies.ts';
import { DEFAULT_OPERATOR, operatorHeaders, strictBoolean } from './operator.ts';
import { problem, problemSchema } from './problem.ts';

export interface AgencyRouteOptions {
  pool: Pool;
  /** SMGW_MASTER_KEY; without it key uploads answer 503 MASTER_KEY_MISSING. */
  masterKey: Buffer | undefined;
  now: () => Date;
}

const DOMAIN_PATTERN = '^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$';
const ADDRESS_PATTERN = "^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}$";
/** Free text that cannot break a terminal line or forge one. */
const NO_CONTROL_CHARACTERS = '^[^\\u0000-\\u001f\\u007f]*$';

const agencySchema = {
  type: 'object',
  required: ['id', 'name', 'domains', 'addresses', 'signOutbound', 'createdAt'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    domains: { type: 'array', items: { type: 'string' } },
    addresses: {
      type: 'array',
      items: {
        type: 'object',
        required: ['address', 'verifySignatures'],
        properties: { address: { type: 'string' }, verifySignatures: { type: 'boolean' } },
      },
    },
    signOutbound: { type: 'boolean' },
    signOutboundChangedBy: { type: ['string', 'null'] },
    signOutboundChangedAt: { type: ['string', 'null'] },
    createdAt: { type: 'string' },
  },
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: MESSAGE_ID_PATTERN_ANY_CASE } },
} as const;

const agencyKeySchema = {
  type: 'object',
  required: ['id', 'address', 'kind', 'fingerprint', 'createdAt'],
  properties: {
    id: { type: 'string' },
    address: { type: 'string' },
    kind: { type: 'string' },
    fingerprint: { type: 'string' },
    createdAt: { type: 'string' },
    subject: { type: 'string' },
    notAfter: { type: 'string' },
    /** The public part: the certificate as PEM (S/MIME). */
    certificate: { type: 'string' },
    /** The public part: the armored public key (OpenPGP). */
    publicKey: { type: 'string' },
  },
} as const;

function pem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

export async function agencyRoutes(api: FastifyInstance, options: AgencyRouteOptions): Promise<void> {
  acceptKeyMaterialBodies(api);

  api.post<{
    Body: { name: string; domains: string[]; signOutbound: boolean };
    Headers: { 'x-smgw-operator'?: string };
  }>(
    '/agencies',
    {
      preValidation: strictBoolean('signOutbound'),
      schema: {
        headers: operatorHeaders,
        body: {
          type: 'object',
          required: ['name', 'domains'],
          propertyNames: { enum: ['name', 'domains', 'signOutbound'] },
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 200, pattern: NO_CONTROL_CHARACTERS },
            domains: {
              type: 'array',
              minItems: 1,
              maxItems: 100,
              uniqueItems: true,
              items: { type: 'string', pattern: DOMAIN_PATTERN },
            },
            signOutbound: { type: 'boolean', default: false },
          },
        },
        response: {
          201: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
          400: problemSchema,
          409: problemSchema,
        },
      },
    },
    async (req, reply) => {
      const result = await createAgency(options.pool, {
        name: req.body.name.trim(),
        domains: req.body.domains,
        signOutbound: req.body.signOutbound,
        operator: req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR,
        now: options.now(),
      });
      switch (result.kind) {
        case 'created':
          req.log.info(
            {
              code: 'AGENCY_CREATED',
              agencyId: result.id,
              domains: req.body.domains,
              signOutbound: req.body.signOutbound,
            },
            'agency created',
          );
          return reply.code(201).send({ id: result.id });
        case 'name-taken':
          return reply.code(409).send(problem('AGENCY_EXISTS', `an agency named "${req.body.name}" exists`));
        case 'domain-taken':
          return reply
            .code(409)
            .send(problem('DOMAIN_TAKEN', `a domain belongs to another agency already (${result.detail})`));
      }
    },
  );

  api.get(
    '/agencies',
    {
      schema: {
        response: {
          200: {
            type: 'object',
            required: ['agencies'],
            properties: { agencies: { type: 'array', items: agencySchema } },
          },
        },
      },
    },
    async () => ({ agencies: await listAgencies(options.pool) }),
  );

  api.get<{ Params: { id: string } }>(
    '/agencies/:id',
    { schema: { params: idParams, response: { 200: agencySchema, 400: problemSchema, 404: problemSchema } } },
    async (req, reply) => {
      const agency = await getAgency(options.pool, req.params.id.toUpperCase());
      if (!agency) return reply.code(404).send(problem('AGENCY_NOT_FOUND', `no agency ${req.params.id}`));
      return agency;
    },
  );

  api.post<{ Params: { id: string }; Body: { signOutbound: boolean }; Headers: { 'x-smgw-operator'?: string } }>(
    '/agencies/:id/signing',
    {
      preValidation: strictBoolean('signOutbound'),
      schema: {
        params: idParams,
        headers: operatorHeaders,
        body: {
          type: 'object',
          required: ['signOutbound'],
          propertyNames: { enum: ['signOutbound'] },
          properties: { signOutbound: { type: 'boolean' } },
        },
        response: { 200: agencySchema, 400: problemSchema, 404: problemSchema },
      },
    },
    async (req, reply) => {
      const agencyId = req.params.id.toUpperCase();
      const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
      const agency = await setAgencySigning(options.pool, {
        agencyId,
        signOutbound: req.body.signOutbound,
        operator,
        at: options.now(),
      });
      if (!agency) return reply.code(404).send(problem('AGENCY_NOT_FOUND', `no agency ${agencyId}`));
      req.log.info(
        { code: 'AGENCY_SIGNING_SET', agencyId, signOutbound: agency.signOutbound, operator },
        `outbound signing ${agency.signOutbound ? 'on' : 'off'}`,
      );
      return agency;
    },
  );

  api.post<{ Params: { id: string }; Body: { address: string; verifySignatures: boolean } }>(
    '/agencies/:id/addresses',
    {
      preValidation: strictBoolean('verifySignatures'),
      schema: {
        params: idParams,
        body: {
          type: 'object',
          required: ['address'],
          propertyNames: { enum: ['address', 'verifySignatures'] },
          properties: {
            address: { type: 'string', maxLength: 320, pattern: ADDRESS_PATTERN },
            verifySignatures: { type: 'boolean', default: false },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['address', 'verifySignatures'],
            properties: { address: { type: 'string' }, verifySignatures: { type: 'boolean' } },
          },
          201: {
            type: 'object',
            required: ['address', 'verifySignatures'],
            properties: { address: { type: 'string' }, verifySignatures: { type: 'boolean' } },
          },
          400: problemSchema,
          404: problemSchema,
          409: problemSchema,
        },
      },
    },
    async (req, reply) => {
      const agencyId = req.params.id.toUpperCase();
      const result = await putAgencyAddress(options.pool, {
        agencyId,
        address: req.body.address,
        verifySignatures: req.body.verifySignatures,
      });
      switch (result.kind) {
        case 'created':
        case 'updated':
          req.log.info(
            {
              code: 'AGENCY_ADDRESS_SET',
              agencyId,
              address: result.address,
              verifySignatures: result.verifySignatures,
            },
            'agency address set',
          );
          return reply
            .code(result.kind === 'created' ? 201 : 200)
            .send({ address: result.address, verifySignatures: result.verifySignatures });
        case 'agency-not-found':
          return reply.code(404).send(problem('AGENCY_NOT_FOUND', `no agency ${agencyId}`));
        case 'not-in-domains':
          return reply
            .code(400)
            .send(
              problem(
                'ADDRESS_NOT_IN_AGENCY_DOMAINS',
                `${req.body.address} is not in the agency's domains (${result.domains.join(', ')})`,
              ),
            );
        case 'taken':
          return reply.code(409).send(problem('ADDRESS_TAKEN', `${req.body.address} belongs to another agency`));
      }
    },
  );

  api.post<{ Params: { id: string; address: string }; Headers: { 'x-smgw-key-password'?: string } }>(
    '/agencies/:id/addresses/:address/keys',
    {
      config: { bodyTypes: PRIVATE_KEY_BODY_TYPES },
      schema: {
        params: {
          type: 'object',
          required: ['id', 'address'],
          properties: {
            id: { type: 'string', pattern: MESSAGE_ID_PATTERN_ANY_CASE },
            address: { type: 'string', maxLength: 320, pattern: ADDRESS_PATTERN },
          },
        },
        headers: {
          type: 'object',
          properties: { 'x-smgw-key-password': { type: 'string', maxLength: 1024 } },
        },
        response: {
          201: { type: 'object', required: ['keys'], properties: { keys: { type: 'array', items: agencyKeySchema } } },
          400: problemSchema,
          404: problemSchema,
          415: problemSchema,
          503: problemSchema,
        },
      },
    },
    async (req, reply) => {
      const agencyId = req.params.id.toUpperCase();
      const address = req.params.address.toLowerCase();
      if (!options.masterKey) {
        return reply
          .code(503)
          .send(problem('MASTER_KEY_MISSING', 'SMGW_MASTER_KEY is not set: private keys cannot be stored sealed'));
      }
      if ((await agencyOfAddress(options.pool, address)) !== agencyId) {
        return reply
          .code(404)
          .send(problem('AGENCY_ADDRESS_NOT_FOUND', `${address} is not an address of agency ${agencyId}`));
      }
      const body = req.body as string | Buffer | undefined;
      if (!body || body.length === 0) {
        return reply
          .code(400)
          .send(problem('BAD_REQUEST', 'the body is empty: send a PKCS#12 file or an armored OpenPGP private key'));
      }
      // Text types are armored OpenPGP; curl's default type may carry either, so its bytes decide.
      const type = mediaTypeOf(req);
      const armoredOpenPgp =
        type === PGP_KEY_TYPE || type === TEXT_TYPE || (type === CURL_DEFAULT_TYPE && looksArmoredOpenPgp(body));
      if (armoredOpenPgp) {
        const armored = textBody(body) ?? '';
        const passphrase = req.headers['x-smgw-key-password'];
        let key: Awaited<ReturnType<typeof readPrivateKeyForStorage>>;
        try {
          key = await readPrivateKeyForStorage({
            armored,
            ...(typeof passphrase === 'string' ? { passphrase } : {}),
          });
        } catch (err) {
          // PgpError messages name the key's fingerprint at most, never the passphrase.
          return reply.code(400).send(problem('KEY_FILE_UNREADABLE', (err as Error).message));
        }
        if (!key.canDecrypt) {
          return reply
            .code(400)
            .send(problem('KEY_FILE_UNREADABLE', `OpenPGP key ${key.fingerprint} has no subkey that can decrypt`));
        }
        const sealed = sealSecret(options.masterKey, Buffer.from(key.unlockedArmored), {
          aad: agencyKeyAad(address, key.fingerprint),
        });
        const { key: row } = await addAgencyKey(options.pool, {
          address,
          kind: 'pgp',
          fingerprint: key.fingerprint,
          certificate: null,
          publicArmored: key.publicArmored,
          privateKeySealed: sealed,
          now: options.now(),
        });
        req.log.info(
          { code: 'AGENCY_KEY_ADDED', agencyId, address, kind: 'pgp', fingerprint: key.fingerprint },
          'agency private key stored (sealed)',
        );
        return reply.code(201).send({ keys: [{ ...row, publicKey: key.publicArmored }] });
      }
      let contents: Pkcs12Contents;
      try {
        // The types left (PKCS#12, octet-stream, curl's default) are parsed as bytes.
        contents = await parsePkcs12(body as Buffer, req.headers['x-smgw-key-password'] ?? '');
      } catch (err) {
        if ((err as { code?: string }).code === 'SMIME_PKCS12_FAILED') {
          // The message names no secret (pkijs/node say "wrong password" or "bad decrypt" at most).
          return reply.code(400).send(problem('KEY_FILE_UNREADABLE', (err as Error).message));
        }
        throw err;
      }
      if (contents.keys.length === 0) {
        return reply
          .code(400)
          .send(problem('KEY_FILE_EMPTY', 'the PKCS#12 file holds no private key with its certificate'));
      }
      const now = options.now();
      const stored = [];
      for (const { certificate, privateKey } of contents.keys) {
        const facts = certificateFacts(certificate);
        const fingerprint = createHash('sha256').update(certificate).digest('hex');
        const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
        let sealed: Buffer;
        try {
          sealed = sealSecret(options.masterKey, pkcs8, { aad: agencyKeyAad(address, fingerprint) });
        } finally {
          pkcs8.fill(0);
        }
        const { key } = await addAgencyKey(options.pool, {
          address,
          kind: 'smime',
          fingerprint,
          certificate,
          publicArmored: null,
          privateKeySealed: sealed,
          now,
        });
        req.log.info(
          { code: 'AGENCY_KEY_ADDED', agencyId, address, kind: 'smime', fingerprint },
          'agency private key stored (sealed)',
        );
        stored.push({
          ...key,
          subject: facts.subject,
          notAfter: facts.notAfter.toISOString(),
          certificate: pem(certificate),
        });
      }
      return reply.code(201).send({ keys: stored });
    },
  );
}
