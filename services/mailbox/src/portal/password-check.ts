// A password checked under the login's limits: by the login form, and by the forms that ask a logged-in user for it
// again before something that cannot be undone or hands their mail to someone else (deleting the mailbox, uploading
// a key). Each check takes a slot of the client's and the address's wrong-password limits before argon2id runs (a
// parallel burst gets no more checks than the limits allow); a right password gives them back, a refused attempt
// too. So asking again is no second way to guess: a stolen session guesses no faster than the login form allows.
import { randomBytes } from 'node:crypto';
import { type Mailbox, mailboxPasswordHash, recordMailboxAudit } from '@smgw/mailbox-store';
import { hashPassword, verifyPassword } from '@smgw/submission-accounts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PortalContext } from './context.ts';

export type PasswordCheck =
  /** The mailbox has a password (active or locked) and this is it. */
  | { kind: 'right' }
  /** Wrong, or no mailbox with a password: `lockedOutMs` when this attempt reached a limit (refuse the next ones). */
  | { kind: 'wrong'; lockedOutMs: number | undefined }
  /** Over a limit already: the password was not checked. */
  | { kind: 'locked-out'; retryAfterMs: number };

export interface PasswordAttempt {
  /** The client as the limits count it (ctx.clientOf). */
  client: string;
  /** The address as the per-address limit counts it: a mailbox's own address, or what was typed. */
  addressKey: string;
  /** The mailbox of that address, if any (a passive one has no password: always wrong). */
  mailbox: Mailbox | undefined;
  password: string;
}

// Checked when there is no real hash, so an unknown address costs what a known one does. Made once, on first use.
let dummyHash: Promise<string> | undefined;

export async function checkPasswordLimited(
  ctx: PortalContext,
  req: FastifyRequest,
  attempt: PasswordAttempt,
): Promise<PasswordCheck> {
  const { client, addressKey, mailbox } = attempt;
  const [clientAfter, addressAfter] = await Promise.all([
    ctx.limits.hit('loginPerClient', client),
    ctx.limits.hit('loginPerMailbox', addressKey),
  ]);
  const giveBack = () =>
    Promise.all([ctx.limits.giveBack('loginPerClient', client), ctx.limits.giveBack('loginPerMailbox', addressKey)]);
  const retryAfterMs = Math.max(clientAfter.retryAfterMs, addressAfter.retryAfterMs);
  if (clientAfter.exceeded || addressAfter.exceeded) {
    await giveBack();
    return { kind: 'locked-out', retryAfterMs };
  }

  const hash =
    mailbox && mailbox.state !== 'passive' ? await mailboxPasswordHash(ctx.deps.pool, mailbox.id) : undefined;
  dummyHash ??= hashPassword(randomBytes(24).toString('base64url'));
  const matches = await verifyPassword(attempt.password, hash ?? (await dummyHash));
  if (matches && hash) {
    // Not a wrong password: its own slots go back. Wrong ones counted meanwhile stay until their window ends.
    await giveBack();
    return { kind: 'right' };
  }

  if (mailbox && addressAfter.blocked && addressAfter.count === ctx.limits.rules.loginPerMailbox.max) {
    await recordMailboxAudit(ctx.deps.pool, {
      mailboxId: mailbox.id,
      address: mailbox.address,
      event: 'mailbox.login-locked-out',
      actor: 'portal',
      at: ctx.now(),
      detail: { failures: addressAfter.count },
    });
    req.log.warn({ code: 'PORTAL_LOGIN_LOCKED_OUT', mailboxId: mailbox.id }, 'too many wrong passwords for a mailbox');
  }
  return { kind: 'wrong', lockedOutMs: clientAfter.blocked || addressAfter.blocked ? retryAfterMs : undefined };
}

/**
 * The logged-in user's password, asked again by a form (field `password`): undefined when it is right, else the
 * error for the field and the status to answer with (400 wrong or missing, 429 locked out; Retry-After is set).
 */
export async function confirmCurrentPassword(
  ctx: PortalContext,
  req: FastifyRequest,
  reply: FastifyReply,
  password: string,
): Promise<{ error: string; status: number } | undefined> {
  const { mailbox } = ctx.login(req);
  const t = ctx.t(req);
  if (password === '') return { error: t('reauth.passwordMissing'), status: 400 };
  const checked = await checkPasswordLimited(ctx, req, {
    client: ctx.clientOf(req),
    addressKey: mailbox.address,
    mailbox,
    password,
  });
  if (checked.kind === 'right') return undefined;
  req.log.info(
    { code: 'PORTAL_REAUTH_FAILED', mailboxId: mailbox.id, route: req.routeOptions.url },
    'password asked again was wrong',
  );
  const lockedOutMs = checked.kind === 'locked-out' ? checked.retryAfterMs : checked.lockedOutMs;
  if (lockedOutMs === undefined) return { error: t('reauth.passwordWrong'), status: 400 };
  reply.header('retry-after', Math.ceil(lockedOutMs / 1000));
  return { error: t('login.lockedOut', { minutes: Math.max(1, Math.ceil(lockedOutMs / 60_000)) }), status: 429 };
}
