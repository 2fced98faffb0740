// POST /submission-accounts, GET /submission-accounts, POST /submission-accounts/{username}/disable|enable|password,
// PUT /submission-accounts/{username}/addresses, DELETE /submission-accounts/{username}: the agency accounts that may
// AUTH on the submission listener (ingest checks them, and reads them again at every MAIL FROM, so a change, a
// deletion too, reaches sessions already open). Passwords arrive once, are kept only as argon2id hashes, and are never returned or logged.
// An account sends as the addresses it owns (senderAddresses); senderDomains is a separate, explicit grant of every
// address in those domains. At least one of the two is given.
import type { Pool } from '@smgw/db';
import {
  createSubmissionAccount,
  deleteSubmissionAccount,
  type ListedSubmissionAccount,
  listSubmissionAccounts,
  SubmissionAccountError,
  setSubmissionAccountDisabled,
  setSubmissionPassword,
  setSubmissionSenderRights,
} from '@smgw/submission-accounts';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { DEFAULT_OPERATOR, operatorHeaders, strictArrays } from './operator.ts';
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

const usernameParams = {
  type: 'object',
  required: ['username'],
  properties: { username: { type: 'string', minLength: 1, maxLength: 254 } },
} as const;

/** A change named by the route alone (disable, enable, delete): the account, who made it, the account afterwards. */
const bodilessChangeSchema = {
  params: usernameParams,
  headers: operatorHeaders,
  response: { 200: accountSchema, 400: problemSchema, 404: problemSchema },
} as const;

const senderAddressesSchema = { type: 'array', maxItems: 100, items: { type: 'string', maxLength: 254 } } as const;
const senderDomainsSchema = { type: 'array', maxItems: 100, items: { type: 'string', maxLength: 253 } } as const;

const notFound = (reply: FastifyReply, username: string) =>
  reply.code(404).send(problem('SUBMISSION_ACCOUNT_NOT_FOUND', `no submission account ${username}`));

export async function submissionAccountRoutes(api: FastifyInstance, options: { pool: Pool }): Promise<void> {
  api.post<{ Body: { username: string; password: string; senderAddresses?: string[]; senderDomains?: string[] } }>(
    '/submission-accounts',
    {
      preValidation: strictArrays('senderAddresses', 'senderDomains'),
      schema: {
        body: {
          type: 'object',
          required: ['username', 'password'],
          // Unknown fields are refused: fastify's Ajv drops them under additionalProperties: false, so an account
          // asked for as disabled (or with a misspelt grant) was made without it, enabled.
          propertyNames: { enum: ['username', 'password', 'senderAddresses', 'senderDomains'] },
          properties: {
            username: { type: 'string', minLength: 1, maxLength: 254 },
            password: { type: 'string', minLength: 1, maxLength: 1024 },
            senderAddresses: senderAddressesSchema,
            senderDomains: senderDomainsSchema,
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

  for (const action of ['disable', 'enable'] as const) {
    api.post<{ Params: { username: string }; Headers: { 'x-smgw-operator'?: string } }>(
      `/submission-accounts/:username/${action}`,
      {
        schema: bodilessChangeSchema,
      },
      async (req, reply) => {
        const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
        const account = await setSubmissionAccountDisabled(options.pool, req.params.username, action === 'disable');
        if (!account) return notFound(reply, req.params.username);
        logChange(req.log, action === 'disable' ? 'SUBMISSION_ACCOUNT_DISABLED' : 'SUBMISSION_ACCOUNT_ENABLED', {
          account,
          operator,
        });
        return account;
      },
    );
  }

  api.post<{ Params: { username: string }; Body: { password: string }; Headers: { 'x-smgw-operator'?: string } }>(
    '/submission-accounts/:username/password',
    {
      schema: {
        params: usernameParams,
        headers: operatorHeaders,
        body: {
          type: 'object',
          required: ['password'],
          propertyNames: { enum: ['password'] },
          properties: { password: { type: 'string', minLength: 1, maxLength: 1024 } },
        },
        response: { 200: accountSchema, 400: problemSchema, 404: problemSchema },
      },
    },
    async (req, reply) => {
      const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
      let account: ListedSubmissionAccount | undefined;
      try {
        account = await setSubmissionPassword(options.pool, req.params.username, req.body.password);
      } catch (err) {
        if (!(err instanceof SubmissionAccountError)) throw err;
        return reply.code(400).send(problem(err.code, err.message));
      }
      if (!account) return notFound(reply, req.params.username);
      logChange(req.log, 'SUBMISSION_ACCOUNT_PASSWORD_SET', { account, operator });
      return account;
    },
  );

  // Both lists, always: the account's rights afterwards are exactly what the request says (an omitted list must not
  // keep, or drop, a domain grant by surprise).
  api.put<{
    Params: { username: string };
    Body: { senderAddresses: string[]; senderDomains: string[] };
    Headers: { 'x-smgw-operator'?: string };
  }>(
    '/submission-accounts/:username/addresses',
    {
      preValidation: strictArrays('senderAddresses', 'senderDomains'),
      schema: {
        params: usernameParams,
        headers: operatorHeaders,
        body: {
          type: 'object',
          required: ['senderAddresses', 'senderDomains'],
          propertyNames: { enum: ['senderAddresses', 'senderDomains'] },
          properties: { senderAddresses: senderAddressesSchema, senderDomains: senderDomainsSchema },
        },
        response: { 200: accountSchema, 400: problemSchema, 404: problemSchema },
      },
    },
    async (req, reply) => {
      const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
      let account: ListedSubmissionAccount | undefined;
      try {
        account = await setSubmissionSenderRights(options.pool, req.params.username, req.body);
      } catch (err) {
        if (!(err instanceof SubmissionAccountError)) throw err;
        return reply.code(400).send(problem(err.code, err.message));
      }
      if (!account) return notFound(reply, req.params.username);
      logChange(req.log, 'SUBMISSION_ACCOUNT_ADDRESSES_SET', { account, operator });
      return account;
    },
  );

  api.delete<{ Params: { username: string }; Headers: { 'x-smgw-operator'?: string } }>(
    '/submission-accounts/:username',
    {
      schema: bodilessChangeSchema,
    },
    async (req, reply) => {
      const operator = req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR;
      const account = await deleteSubmissionAccount(options.pool, req.params.username);
      if (!account) return notFound(reply, req.params.username);
      logChange(req.log, 'SUBMISSION_ACCOUNT_DELETED', { account, operator });
      return account;
    },
  );
}

/** An operator's change to an account: code, username and operator (and the new rights), never the password. */
function logChange(
  log: FastifyInstance['log'],
  code:
    | 'SUBMISSION_ACCOUNT_DISABLED'
    | 'SUBMISSION_ACCOUNT_ENABLED'
    | 'SUBMISSION_ACCOUNT_PASSWORD_SET'
    | 'SUBMISSION_ACCOUNT_ADDRESSES_SET'
    | 'SUBMISSION_ACCOUNT_DELETED',
  change: { account: ListedSubmissionAccount; operator: string },
) {
  const rights =
    code === 'SUBMISSION_ACCOUNT_ADDRESSES_SET'
      ? { senderAddresses: change.account.senderAddresses, senderDomains: change.account.senderDomains }
      : {};
  log.info(
    { code, username: change.account.username, operator: change.operator, ...rights },
    code.toLowerCase().replaceAll('_', ' '),
  );
}
