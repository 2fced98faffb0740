// POST/GET /trust-anchors and POST/GET /certificates (SPEC.md "Admin API"): the CAs trusted for S/MIME and
// signature verification, and recipient certificates, accepted only when they validate against those CAs now. Taking a
// certificate out of use and back: certificate-withdrawal-routes.ts.
import {
  type CertificateFacts,
  PemError,
  type RevocationFetcher,
  type RevocationMode,
  readPemCertificates,
} from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import { acceptRecipientCertificate, addTrustAnchor, listCertificates, listTrustAnchors } from '@smgw/key-directory';
import type { FastifyInstance } from 'fastify';
import { acceptKeyMaterialBodies, PEM_BODY_TYPES, textBody } from './key-material-bodies.ts';
import { DEFAULT_OPERATOR, operatorHeaders } from './operator.ts';
import { problem, problemSchema } from './problem.ts';

export interface TrustRouteOptions {
  pool: Pool;
  revocationMode: RevocationMode;
  revocationFetcher: RevocationFetcher;
  /** The injected clock: validation time. */
  now: () => Date;
}

const anchorSchema = {
  type: 'object',
  required: ['fingerprint', 'subject', 'notBefore', 'notAfter', 'addedBy', 'addedAt'],
  properties: {
    fingerprint: { type: 'string' },
    subject: { type: 'string' },
    notBefore: { type: 'string' },
    notAfter: { type: 'string' },
    addedBy: { type: 'string' },
    addedAt: { type: 'string' },
  },
} as const;

export const certificateSchema = {
  type: 'object',
  required: ['fingerprint', 'subject', 'addresses', 'issuer', 'serial', 'notBefore', 'notAfter', 'source', 'addedAt'],
  properties: {
    fingerprint: { type: 'string' },
    subject: { type: 'string' },
    addresses: { type: 'array', items: { type: 'string' } },
    issuer: { type: 'string' },
    serial: { type: 'string' },
    notBefore: { type: 'string' },
    notAfter: { type: 'string' },
    source: { type: 'string' },
    addedAt: { type: 'string' },
    replacedBy: { type: ['string', 'null'] },
    withdrawnAt: { type: ['string', 'null'] },
    withdrawnBy: { type: ['string', 'null'] },
    withdrawalReason: { type: ['string', 'null'] },
  },
} as const;

const PEM_REQUIRED = `the body must be PEM certificates (content-type ${PEM_BODY_TYPES.join(', ')})`;

export async function trustRoutes(api: FastifyInstance, options: TrustRouteOptions): Promise<void> {
  acceptKeyMaterialBodies(api);

  api.post<{ Headers: { 'x-smgw-operator'?: string } }>(
    '/trust-anchors',
    {
      config: { bodyTypes: PEM_BODY_TYPES },
      schema: {
        headers: operatorHeaders,
        response: { 200: anchorSchema, 201: anchorSchema, 400: problemSchema, 422: problemSchema },
      },
    },
    async (req, reply) => {
      const pem = textBody(req.body);
      if (!pem) return reply.code(400).send(problem('BAD_REQUEST', PEM_REQUIRED));
      let certificates: CertificateFacts[];
      try {
        certificates = readPemCertificates(pem);
      } catch (err) {
        if (err instanceof PemError) return reply.code(400).send(problem(err.code, err.message));
        throw err;
      }
      const [anchor] = certificates;
      if (!anchor || certificates.length > 1) {
        return reply.code(400).send(problem('BAD_CERTIFICATE', 'give exactly one CA certificate per trust anchor'));
      }
      if (!anchor.isCa) {
        return reply
          .code(422)
          .send(problem('NOT_A_CA', `${anchor.subject} is not a CA certificate (basicConstraints cA is not set)`));
      }
      const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
      const result = await addTrustAnchor(options.pool, {
        fingerprint: anchor.fingerprint,
        subject: anchor.subject,
        der: anchor.der,
        notBefore: anchor.notBefore,
        notAfter: anchor.notAfter,
        addedBy: operator,
      });
      if (result.created) {
        req.log.info(
          { code: 'TRUST_ANCHOR_ADDED', fingerprint: anchor.fingerprint, subject: anchor.subject, operator },
          'trust anchor added',
        );
      }
      return reply.code(result.created ? 201 : 200).send(result.anchor);
    },
  );

  api.get(
    '/trust-anchors',
    {
      config: { bodyTypes: PEM_BODY_TYPES },
      schema: {
        response: {
          200: {
            type: 'object',
            required: ['anchors'],
            properties: { anchors: { type: 'array', items: anchorSchema } },
          },
        },
      },
    },
    async () => ({ anchors: await listTrustAnchors(options.pool) }),
  );

  api.post<{ Headers: { 'x-smgw-operator'?: string } }>(
    '/certificates',
    {
      config: { bodyTypes: PEM_BODY_TYPES },
      schema: {
        headers: operatorHeaders,
        response: {
          200: certificateSchema,
          201: {
            ...certificateSchema,
            properties: { ...certificateSchema.properties, replaced: { type: 'array', items: { type: 'string' } } },
          },
          400: problemSchema,
          409: problemSchema,
          422: problemSchema,
        },
      },
    },
    async (req, reply) => {
      const pem = textBody(req.body);
      if (!pem) return reply.code(400).send(problem('BAD_REQUEST', PEM_REQUIRED));
      let chain: CertificateFacts[];
      try {
        chain = readPemCertificates(pem);
      } catch (err) {
        if (err instanceof PemError) return reply.code(400).send(problem(err.code, err.message));
        throw err;
      }
      const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
      const stored = await acceptRecipientCertificate(options.pool, {
        chain,
        source: 'admin',
        by: operator,
        now: options.now(),
        revocationMode: options.revocationMode,
        revocationFetcher: options.revocationFetcher,
      });
      if (!stored.ok) {
        req.log.info(
          {
            code: 'CERTIFICATE_REFUSED',
            fingerprint: stored.fingerprint,
            reasonCode: stored.code,
            reason: stored.reason,
          },
          'certificate refused',
        );
        return reply.code(422).send(problem(stored.code, stored.reason));
      }
      const { withdrawnAt, withdrawnBy, fingerprint } = stored.certificate;
      if (withdrawnAt) {
        // Adding it again does not undo an operator's withdrawal; reinstating does, and says so in the audit.
        return reply
          .code(409)
          .send(
            problem(
              'CERTIFICATE_ALREADY_WITHDRAWN',
              `${fingerprint} was withdrawn by ${withdrawnBy} at ${withdrawnAt}; ` +
                `POST /certificates/${fingerprint}/reinstate brings it back`,
            ),
          );
      }
      if (!stored.created) {
        if (stored.takenOverFrom) {
          // Mail or the portal brought it first; the operator's addition makes it theirs (it stays when a mailbox goes).
          req.log.info(
            {
              code: 'CERTIFICATE_TAKEN_OVER',
              fingerprint,
              previousSource: stored.takenOverFrom,
              addresses: stored.certificate.addresses,
              operator,
            },
            'recipient certificate added by an operator: it was stored from mail or the portal, and is now theirs',
          );
        }
        return reply.code(200).send(stored.certificate);
      }
      req.log.info(
        {
          code: 'CERTIFICATE_ADDED',
          fingerprint: stored.certificate.fingerprint,
          addresses: stored.certificate.addresses,
          replaced: stored.replaced,
          operator,
        },
        'recipient certificate added',
      );
      return reply.code(201).send({ ...stored.certificate, replaced: stored.replaced });
    },
  );

  api.get<{ Querystring: { address?: string; includeReplaced: boolean; limit: number } }>(
    '/certificates',
    {
      schema: {
        querystring: {
          type: 'object',
          propertyNames: { enum: ['address', 'includeReplaced', 'limit'] },
          properties: {
            address: { type: 'string', minLength: 3, maxLength: 320, pattern: '^[^@\\s]+@[^@\\s]+$' },
            includeReplaced: { type: 'boolean', default: false },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['certificates'],
            properties: { certificates: { type: 'array', items: certificateSchema } },
          },
          400: problemSchema,
        },
      },
    },
    async (req) => ({ certificates: await listCertificates(options.pool, req.query) }),
  );
}
