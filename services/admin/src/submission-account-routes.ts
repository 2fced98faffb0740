// POST /submission-accounts, GET /submission-accounts: the agency accounts that may AUTH on the submission listener
// (ingest checks them). Passwords arrive once, are kept only as argon2id hashes, and are never returned or logged.
// An account sends as the addresses it owns (senderAddresses); senderDomains is a separate, explicit grant of every
// address in those domains. At least one of the two is given.
import type { Pool } from '@smgw/db';
import { createSubmissionAccount, listSubmissionAccounts, SubmissionAccountError } from '@smgw/submission-accounts';
import type { FastifyInstance } from 'fastify';
import { problem, problemSchema } from './problem.ts';

const accountSchema = {
  type: 'object',
  required: ['username', 'senderAddresses', 'senderDomains'],
  properties: {
    username: { type: 'string' },
    senderAddresses: { type: 'array', items: { type: 'string' } },
    senderDomains: { type: 'array', items: { type: 'string' } },
    disabled: { type: 'boolean' },
    createdAt: { type: 'string' },
  },
} as const;

export async function submissionAccountRoutes(api: FastifyInstance, options: { pool: Pool }): Promise<void> {
  api.post<{ Body: { username: string; password: string; senderAddresses?: string[]; senderDomains?: string[] } }>(
    '/submission-accounts',
    {
      schema: {
        body: {
          type: 'object',
          required: ['username', 'password'],
          additionalProperties: false,
          properties: {
            username: { type: 'string', minLength: 1, maxLength: 254 },
            password: { type: 'string', minLength: 1, maxLength: 1024 },
            senderAddresses: { type: 'array', maxItems: 100, items: { type: 'string', maxLength: 254 } },
            senderDomains: { type: 'array', maxItems: 100, items: { type: 'string', maxLength: 253 } },
          },
        },
        response: { 201: accountSchema, 400: problemSchema, 409: problemSchema },
      },
    },
    async (req, reply) => {
      try {
        const account = await createSubmissionAccount(options.pool, req.body);
        req.log.info({ code: 'SUBMISSION_ACCOUNT_CREATED', username: account.username }, 'submission account created');
        return reply.code(201).send(account);
      } catch (err) {
        if (!(err instanceof SubmissionAccountError)) throw err;
        return reply.code(err.code === 'SUBMISSION_ACCOUNT_EXISTS' ? 409 : 400).send(problem(err.code, err.message));
      }
    },
  );

  api.get(
    '/submission-accounts',
    {
      schema: {
        response: { 200: { type: 'object', properties: { accounts: { type: 'array', items: accountSchema } } } },
      },
    },
    async () => ({ accounts: await listSubmissionAccounts(options.pool) }),
  );
}
