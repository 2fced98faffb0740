// GET /certificates/{fingerprint}, POST /certificates/{fingerprint}/withdraw and /reinstate (SPEC.md "Admin API"): an
// operator takes a recipient certificate out of use (its holder lost the key, it was harvested by mistake, it replaced
// the holder's encryption certificate) and brings one back. POST actions, as a quarantine release or a key approval:
// the row stays (the decision is recorded on it and in certificate_audit) and can be undone, which a DELETE would not
// say. What a withdrawal does to the encrypt stage and to harvesting: @smgw/key-directory withdrawCertificate.
import type { RevocationFetcher, RevocationMode } from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import {
  CERTIFICATE_AUDIT_EVENTS,
  certificateAudit,
  getCertificate,
  reinstateRecipientCertificate,
  withdrawCertificate,
} from '@smgw/key-directory';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DEFAULT_OPERATOR, operatorHeaders } from './operator.ts';
import { problem, problemSchema } from './problem.ts';
import { certificateSchema } from './trust-routes.ts';

export interface CertificateWithdrawalRouteOptions {
  pool: Pool;
  revocationMode: RevocationMode;
  revocationFetcher: RevocationFetcher;
  /** The injected clock: the time recorded, and the validation time of a reinstatement. */
  now: () => Date;
}

/** Free text that cannot break a terminal line or forge one. */
const NO_CONTROL_CHARACTERS = '^[^\\u0000-\\u001f\\u007f]*$';

const fingerprintParams = {
  type: 'object',
  required: ['fingerprint'],
  properties: { fingerprint: { type: 'string', pattern: '^[0-9A-Fa-f]{64}$' } },
} as const;

/** Why: required, for the audit. */
const reasonBody = {
  type: 'object',
  required: ['reason'],
  propertyNames: { enum: ['reason'] },
  properties: { reason: { type: 'string', minLength: 1, maxLength: 500, pattern: NO_CONTROL_CHARACTERS } },
} as const;

const fingerprints = { type: 'array', items: { type: 'string' } } as const;

const auditSchema = {
  type: 'array',
  items: {
    type: 'object',
    required: ['event', 'actor', 'at', 'reason', 'detail'],
    properties: {
      event: { type: 'string', enum: [...CERTIFICATE_AUDIT_EVENTS] },
      actor: { type: 'string' },
      at: { type: 'string' },
      reason: { type: 'string' },
      detail: { type: 'object', additionalProperties: true },
    },
  },
} as const;

const withSchema = <P extends Record<string, unknown>>(properties: P) => ({
  ...certificateSchema,
  required: [...certificateSchema.required, ...Object.keys(properties)],
  properties: { ...certificateSchema.properties, ...properties },
});

/** Checked before the schema, whose type coercion would turn a number into a string; a blank reason says nothing. */
async function requireReason(req: FastifyRequest, reply: FastifyReply) {
  req.body ??= {};
  const reason = (req.body as { reason?: unknown }).reason;
  if (reason !== undefined && (typeof reason !== 'string' || !reason.trim())) {
    return reply.code(400).send(problem('BAD_REQUEST', 'body/reason must say why'));
  }
}

type ChangeRequest = {
  Params: { fingerprint: string };
  Headers: { 'x-smgw-operator'?: string };
  Body: { reason: string };
};

export async function certificateWithdrawalRoutes(
  api: FastifyInstance,
  options: CertificateWithdrawalRouteOptions,
): Promise<void> {
  api.get<{ Params: { fingerprint: string } }>(
    '/certificates/:fingerprint',
    {
      schema: {
        params: fingerprintParams,
        response: { 200: withSchema({ audit: auditSchema }), 400: problemSchema, 404: problemSchema },
      },
    },
    async (req, reply) => {
      const fingerprint = req.params.fingerprint.toLowerCase();
      const certificate = await getCertificate(options.pool, fingerprint);
      if (!certificate) return reply.code(404).send(problem('CERTIFICATE_NOT_FOUND', `no certificate ${fingerprint}`));
      return { ...certificate, audit: await certificateAudit(options.pool, fingerprint) };
    },
  );

  api.post<ChangeRequest>(
    '/certificates/:fingerprint/withdraw',
    {
      preValidation: requireReason,
      schema: {
        params: fingerprintParams,
        headers: operatorHeaders,
        body: reasonBody,
        response: {
          200: withSchema({ hadReplaced: fingerprints }),
          400: problemSchema,
          404: problemSchema,
          409: problemSchema,
        },
      },
    },
    async (req, reply) => {
      const fingerprint = req.params.fingerprint.toLowerCase();
      const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
      const withdrawal = await withdrawCertificate(options.pool, {
        fingerprint,
        operator,
        reason: req.body.reason.trim(),
        at: options.now(),
      });
      if (!withdrawal.ok) {
        const status = withdrawal.code === 'CERTIFICATE_NOT_FOUND' ? 404 : 409;
        return reply.code(status).send(problem(withdrawal.code, withdrawal.message));
      }
      req.log.info(
        {
          code: 'CERTIFICATE_WITHDRAWN',
          fingerprint,
          addresses: withdrawal.certificate.addresses,
          wasCurrent: withdrawal.certificate.replacedBy === null,
          hadReplaced: withdrawal.hadReplaced,
          operator,
        },
        'recipient certificate withdrawn',
      );
      return { ...withdrawal.certificate, hadReplaced: withdrawal.hadReplaced };
    },
  );

  api.post<ChangeRequest>(
    '/certificates/:fingerprint/reinstate',
    {
      preValidation: requireReason,
      schema: {
        params: fingerprintParams,
        headers: operatorHeaders,
        body: reasonBody,
        response: {
          200: withSchema({ replaced: fingerprints }),
          400: problemSchema,
          404: problemSchema,
          409: problemSchema,
          422: problemSchema,
        },
      },
    },
    async (req, reply) => {
      const fingerprint = req.params.fingerprint.toLowerCase();
      const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
      const reinstatement = await reinstateRecipientCertificate(options.pool, {
        fingerprint,
        operator,
        reason: req.body.reason.trim(),
        now: options.now(),
        revocationMode: options.revocationMode,
        revocationFetcher: options.revocationFetcher,
      });
      if (!reinstatement.ok) {
        const { code, message } = reinstatement;
        if (code === 'CERTIFICATE_NOT_FOUND') return reply.code(404).send(problem(code, message));
        if (code === 'CERTIFICATE_CURRENT' || code === 'CERTIFICATE_SUPERSEDED') {
          return reply.code(409).send(problem(code, message));
        }
        req.log.info(
          { code: 'CERTIFICATE_REFUSED', fingerprint, reasonCode: code, reason: message },
          'certificate not reinstated: it does not validate now',
        );
        return reply.code(422).send(problem(code, message));
      }
      req.log.info(
        {
          code: 'CERTIFICATE_REINSTATED',
          fingerprint,
          addresses: reinstatement.certificate.addresses,
          replaced: reinstatement.replaced,
          operator,
        },
        'recipient certificate reinstated',
      );
      return { ...reinstatement.certificate, replaced: reinstatement.replaced };
    },
  );
}
