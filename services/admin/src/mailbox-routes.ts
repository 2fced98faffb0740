// GET /mailboxes/{address}, POST /mailboxes/{address}/lock|unlock|resend-activation, DELETE /mailboxes/{address}:
// an operator's view of a portal mailbox and what an operator may do to it. Every action is recorded in the
// mailbox's audit trail (actor `admin:<operator>`). Nothing of the messages is shown, and no link or PIN: a resend
// makes new ones that only the mailbox's owner receives (the mailbox service mails them).
//
// A lock ends the owner's portal sessions at their next request: the portal re-reads the mailbox on every request
// and ends the session of a mailbox that is locked or gone. Deleting destroys the mailbox's data key with it: the row
// (holding the sealed data key) in the transaction, then the mailbox's key file in the key store.
import { type Pool, type PoolClient, withTransaction } from '@smgw/db';
import {
  countMailboxMessages,
  deleteMailbox,
  findLiveActivationToken,
  findMailbox,
  linkLifetimeOf,
  listInactivityWarnings,
  listRecentMailboxAudit,
  lockMailbox,
  type Mailbox,
  type MailboxKeyStore,
  MailboxStoreError,
  normalizeMailboxAddress,
  recordMailboxAudit,
  requestActivationResend,
  setMailboxLocked,
} from '@smgw/mailbox-store';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { DEFAULT_OPERATOR, operatorHeaders } from './operator.ts';
import { problem, problemSchema } from './problem.ts';

export interface MailboxRouteOptions {
  pool: Pool;
  /**
   * The mailbox key store (SMGW_KEY_STORE_DIR under SMGW_MASTER_KEY, and SMGW_MASTER_KEY_PREVIOUS during a
   * rotation): a resend opens the mailbox's data key to seal the new link and PIN; a delete destroys the key file.
   * Undefined when either setting is missing: both routes then answer 503.
   */
  keys: MailboxKeyStore | undefined;
  quotaBytes: number;
  /** SMGW_ACTIVATION_LINK_LIFETIME, SMGW_REACTIVATION_LINK_LIFETIME and SMGW_PIN_DELAY, as for every other link:
   * a resend to a mailbox with a password is a reset and lives the shorter time (linkLifetimeOf). */
  linkLifetimeMs: number;
  reactivationLinkLifetimeMs: number;
  pinDelayMs: number;
  now: () => Date;
}

const nullableString = { type: ['string', 'null'] } as const;
const folderCountSchema = {
  type: 'object',
  required: ['messages', 'bytes', 'unread'],
  properties: { messages: { type: 'integer' }, bytes: { type: 'integer' }, unread: { type: 'integer' } },
} as const;

const mailboxSchema = {
  type: 'object',
  required: [
    'id',
    'address',
    'state',
    'active',
    'warned',
    'createdAt',
    'usage',
    'folders',
    'activationToken',
    'warnings',
    'audit',
  ],
  properties: {
    id: { type: 'string' },
    address: { type: 'string' },
    state: { type: 'string' },
    /** SPEC's "active": the owner has activated it (a password set) and no operator locked it. */
    active: { type: 'boolean' },
    /** SPEC's "warned": an inactivity warning went out in the current period (since the last login), deletion ahead. */
    warned: { type: 'boolean' },
    createdAt: { type: 'string' },
    activatedAt: nullableString,
    lastLoginAt: nullableString,
    hasPassword: { type: 'boolean' },
    usage: {
      type: 'object',
      required: ['bytes', 'quotaBytes'],
      properties: { bytes: { type: 'integer' }, quotaBytes: { type: 'integer' } },
    },
    folders: {
      type: 'object',
      required: ['inbox', 'sent', 'trash'],
      properties: { inbox: folderCountSchema, sent: folderCountSchema, trash: folderCountSchema },
    },
    /** The live link and PIN, without them: when made, until when, whether the PIN mail went out. */
    activationToken: {
      type: ['object', 'null'],
      properties: {
        purpose: { type: 'string' },
        createdAt: { type: 'string' },
        expiresAt: { type: 'string' },
        expired: { type: 'boolean' },
        pinMailDueAt: { type: 'string' },
        pinMailSent: { type: 'boolean' },
        pinMailSentAt: nullableString,
        wrongPins: { type: 'integer' },
      },
    },
    warnings: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          kind: { type: 'string' },
          periodStart: { type: 'string' },
          sentAt: { type: 'string' },
          deletionDueAt: { type: 'string' },
        },
      },
    },
    /** The latest audit events of the address, newest first. */
    audit: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          event: { type: 'string' },
          actor: { type: 'string' },
          at: { type: 'string' },
          detail: { type: 'object', additionalProperties: true },
        },
      },
    },
  },
} as const;

const addressParams = {
  type: 'object',
  required: ['address'],
  properties: { address: { type: 'string', minLength: 3, maxLength: 320 } },
} as const;

/** The audit actor of an admin action: who, as far as the shared token lets us know. */
export function adminActor(operator: string | undefined): string {
  return `admin:${operator ?? DEFAULT_OPERATOR}`;
}

/** The path's address as the store keeps it, or undefined when it is no mailbox address. */
function mailboxAddress(raw: string): string | undefined {
  try {
    return normalizeMailboxAddress(raw);
  } catch (err) {
    if (err instanceof MailboxStoreError) return undefined;
    throw err;
  }
}

const badAddress = (reply: FastifyReply, raw: string) =>
  reply.code(400).send(problem('BAD_ADDRESS', `"${raw}" is not a mailbox address`));
const notFound = (reply: FastifyReply, address: string) =>
  reply.code(404).send(problem('MAILBOX_NOT_FOUND', `no mailbox for ${address}`));
const keysMissing = (reply: FastifyReply, what: string) =>
  reply
    .code(503)
    .send(problem('MASTER_KEY_MISSING', `SMGW_MASTER_KEY and SMGW_KEY_STORE_DIR must both be set: ${what}`));

export async function mailboxRoutes(api: FastifyInstance, options: MailboxRouteOptions): Promise<void> {
  async function overview(mailbox: Mailbox) {
    const now = options.now();
    const [folders, token, warnings, audit] = await Promise.all([
      countMailboxMessages(options.pool, mailbox.id),
      findLiveActivationToken(options.pool, mailbox.id),
      listInactivityWarnings(options.pool, mailbox.id),
      listRecentMailboxAudit(options.pool, mailbox.address, 50),
    ]);
    // The inactivity period runs from the last login (else the activation, else the creation): warnings of an earlier
    // period were cancelled by the login that ended it (@smgw/mailbox-store's inactivity.ts).
    const periodStart = (mailbox.lastLoginAt ?? mailbox.activatedAt ?? mailbox.createdAt).getTime();
    return {
      id: mailbox.id,
      address: mailbox.address,
      state: mailbox.state,
      active: mailbox.state === 'active',
      warned: warnings.some((w) => w.periodStart.getTime() === periodStart),
      createdAt: mailbox.createdAt.toISOString(),
      activatedAt: mailbox.activatedAt?.toISOString() ?? null,
      lastLoginAt: mailbox.lastLoginAt?.toISOString() ?? null,
      hasPassword: mailbox.hasPassword,
      usage: { bytes: mailbox.usageBytes, quotaBytes: options.quotaBytes },
      folders,
      activationToken: token
        ? {
            purpose: token.purpose,
            createdAt: token.createdAt.toISOString(),
            expiresAt: token.expiresAt.toISOString(),
            expired: token.expiresAt <= now,
            pinMailDueAt: token.pinMailDueAt.toISOString(),
            pinMailSent: token.pinMailSentAt !== null,
            pinMailSentAt: token.pinMailSentAt?.toISOString() ?? null,
            wrongPins: token.attempts,
          }
        : null,
      warnings: warnings.map((w) => ({
        kind: w.kind,
        periodStart: w.periodStart.toISOString(),
        sentAt: w.sentAt.toISOString(),
        deletionDueAt: w.deletionDueAt.toISOString(),
      })),
      audit: audit.map((e) => ({ event: e.event, actor: e.actor, at: e.at.toISOString(), detail: e.detail ?? {} })),
    };
  }

  api.get<{ Params: { address: string } }>(
    '/mailboxes/:address',
    { schema: { params: addressParams, response: { 200: mailboxSchema, 400: problemSchema, 404: problemSchema } } },
    async (req, reply) => {
      const address = mailboxAddress(req.params.address);
      if (!address) return badAddress(reply, req.params.address);
      const mailbox = await findMailbox(options.pool, address);
      if (!mailbox) return notFound(reply, address);
      return overview(mailbox);
    },
  );

  for (const action of ['lock', 'unlock'] as const) {
    api.post<{ Params: { address: string }; Headers: { 'x-smgw-operator'?: string } }>(
      `/mailboxes/:address/${action}`,
      {
        schema: {
          params: addressParams,
          headers: operatorHeaders,
          response: { 200: mailboxSchema, 400: problemSchema, 404: problemSchema },
        },
      },
      async (req, reply) => {
        const address = mailboxAddress(req.params.address);
        if (!address) return badAddress(reply, req.params.address);
        const found = await findMailbox(options.pool, address);
        if (!found) return notFound(reply, address);
        const actor = adminActor(req.headers['x-smgw-operator']);
        const now = options.now();
        const changed = await withMailboxLocked(options.pool, found.id, async (client, mailbox) => {
          // Locking a locked mailbox (or unlocking an unlocked one) changes nothing and records nothing.
          if ((mailbox.state === 'locked') === (action === 'lock')) return false;
          await setMailboxLocked(client, mailbox.id, action === 'lock', actor, now);
          await recordMailboxAudit(client, {
            mailboxId: mailbox.id,
            address: mailbox.address,
            event: action === 'lock' ? 'mailbox.locked' : 'mailbox.unlocked',
            actor,
            at: now,
            detail: { previousState: mailbox.state },
          });
          return true;
        });
        if (changed === undefined) return notFound(reply, address);
        if (changed) {
          req.log.info(
            { code: action === 'lock' ? 'MAILBOX_LOCKED' : 'MAILBOX_UNLOCKED', mailboxId: found.id, actor },
            `mailbox ${action}ed`,
          );
        }
        const mailbox = await findMailbox(options.pool, address);
        if (!mailbox) return notFound(reply, address);
        return overview(mailbox);
      },
    );
  }

  api.post<{ Params: { address: string }; Headers: { 'x-smgw-operator'?: string } }>(
    '/mailboxes/:address/resend-activation',
    {
      schema: {
        params: addressParams,
        headers: operatorHeaders,
        response: {
          202: {
            type: 'object',
            required: ['address', 'expiresAt', 'linkMail', 'pinMailDueAt'],
            properties: {
              address: { type: 'string' },
              expiresAt: { type: 'string' },
              linkMail: { type: 'string' },
              pinMailDueAt: { type: 'string' },
            },
          },
          400: problemSchema,
          404: problemSchema,
          409: problemSchema,
          503: problemSchema,
        },
      },
    },
    async (req, reply) => {
      const address = mailboxAddress(req.params.address);
      if (!address) return badAddress(reply, req.params.address);
      const keys = options.keys;
      if (!keys) return keysMissing(reply, 'a new link and PIN cannot be sealed');
      const found = await findMailbox(options.pool, address);
      if (!found) return notFound(reply, address);
      const actor = adminActor(req.headers['x-smgw-operator']);
      const now = options.now();
      const result = await withMailboxLocked(options.pool, found.id, async (client, mailbox) => {
        // An activation does not lift a lock: a link to a locked mailbox would only lead to a refusal.
        if (mailbox.state === 'locked') return 'locked' as const;
        return requestActivationResend(client, {
          mailbox,
          keys,
          now,
          lifetimeMs: linkLifetimeOf(mailbox, {
            activationMs: options.linkLifetimeMs,
            resetMs: options.reactivationLinkLifetimeMs,
          }),
          pinDelayMs: options.pinDelayMs,
          actor,
        });
      });
      if (result === undefined) return notFound(reply, address);
      if (result === 'locked') {
        return reply.code(409).send(problem('MAILBOX_LOCKED', `the mailbox of ${address} is locked: unlock it first`));
      }
      req.log.info(
        { code: 'MAILBOX_ACTIVATION_RESENT', mailboxId: found.id, tokenId: result.id, actor },
        'new activation link and PIN made; earlier ones revoked; the mailbox service mails them',
      );
      return reply.code(202).send({
        address,
        expiresAt: result.expiresAt.toISOString(),
        linkMail: 'due',
        pinMailDueAt: result.pinMailDueAt.toISOString(),
      });
    },
  );

  api.delete<{
    Params: { address: string };
    Querystring: { confirm?: string };
    Headers: { 'x-smgw-operator'?: string };
  }>(
    '/mailboxes/:address',
    {
      schema: {
        params: addressParams,
        headers: operatorHeaders,
        querystring: {
          type: 'object',
          propertyNames: { enum: ['confirm'] },
          properties: { confirm: { type: 'string', maxLength: 320 } },
        },
        response: {
          200: {
            type: 'object',
            required: ['address', 'messages', 'bytes'],
            properties: { address: { type: 'string' }, messages: { type: 'integer' }, bytes: { type: 'integer' } },
          },
          400: problemSchema,
          404: problemSchema,
          503: problemSchema,
        },
      },
    },
    async (req, reply) => {
      const address = mailboxAddress(req.params.address);
      if (!address) return badAddress(reply, req.params.address);
      const keys = options.keys;
      if (!keys) return keysMissing(reply, 'deleting a mailbox destroys its key file');
      // Deleting cannot be undone (the data key goes with the row): the address must be given twice.
      const confirm = req.query.confirm === undefined ? undefined : mailboxAddress(req.query.confirm);
      if (confirm !== address) {
        return reply
          .code(400)
          .send(
            problem(
              'CONFIRMATION_REQUIRED',
              `deleting a mailbox cannot be undone: repeat its address as ?confirm=${encodeURIComponent(address)}`,
            ),
          );
      }
      const found = await findMailbox(options.pool, address);
      if (!found) return notFound(reply, address);
      const actor = adminActor(req.headers['x-smgw-operator']);
      const now = options.now();
      const deleted = await withMailboxLocked(options.pool, found.id, async (client, mailbox) => {
        const gone = await deleteMailbox(client, mailbox.id);
        if (!gone) return undefined;
        await recordMailboxAudit(client, {
          mailboxId: mailbox.id,
          address: mailbox.address,
          event: 'mailbox.deleted',
          actor,
          at: now,
          detail: {
            messages: gone.messages,
            bytes: gone.bytes,
            previousState: mailbox.state,
            certificates: gone.certificates,
            pgpKeys: gone.pgpKeys,
          },
        });
        return gone;
      });
      if (!deleted) return notFound(reply, address);
      // Committed: now the mailbox's key goes, so nothing opens its content again, not even an earlier dump. If that
      // fails the mailbox is still gone; the reaper's orphan sweep destroys the key later (collectOrphanMailboxKeys).
      await keys.destroy(found.id).catch((err: Error) => {
        req.log.error(
          { err, code: 'MAILBOX_KEY_KEPT', mailboxId: found.id, actor },
          'the deleted mailbox keeps its key until the reaper collects it',
        );
      });
      req.log.info(
        {
          code: 'MAILBOX_DELETED',
          mailboxId: found.id,
          messages: deleted.messages,
          bytes: deleted.bytes,
          certificates: deleted.certificates,
          pgpKeys: deleted.pgpKeys,
          actor,
        },
        'mailbox deleted with its data key',
      );
      return { address, messages: deleted.messages, bytes: deleted.bytes };
    },
  );
}

/**
 * Runs `work` in a transaction holding the mailbox's row lock (so a concurrent arrival, login or second operator
 * waits); undefined when the mailbox is gone by then.
 */
async function withMailboxLocked<T>(
  pool: Pool,
  mailboxId: string,
  work: (client: PoolClient, mailbox: Mailbox) => Promise<T>,
): Promise<T | undefined> {
  return withTransaction(pool, async (client) => {
    const mailbox = await lockMailbox(client, mailboxId);
    return mailbox ? work(client, mailbox) : undefined;
  });
}
