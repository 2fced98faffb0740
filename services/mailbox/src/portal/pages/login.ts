// /anmelden and /abmelden. A login answers the same, in about the same time, for an unknown address, a passive one
// and a wrong password (a dummy argon2id hash is checked when there is no password to check). Wrong passwords are
// counted per address (known or not, so the lock-out itself tells nothing) and per client, each attempt before its
// password is checked; past either limit the form is refused with a clear message until the window ends. A right
// password rotates the session; it does not clear the wrong ones counted for the address (they end with their window).
import { randomBytes } from 'node:crypto';
import {
  findMailbox,
  type Mailbox,
  mailboxPasswordHash,
  normalizeMailboxAddress,
  recordMailboxAudit,
  recordMailboxLogin,
} from '@smgw/mailbox-store';
import { hashPassword, verifyPassword } from '@smgw/submission-accounts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PortalContext, PortalPage } from '../context.ts';
import { MAX_PASSWORD_LENGTH } from '../password-rules.ts';
import { formField } from './form-fields.ts';

const MAX_ADDRESS_LENGTH = 320;

export const loginPages: PortalPage = async (app, ctx) => {
  // Checked when there is no real hash, so an unknown address costs what a known one does.
  const dummyHash = await hashPassword(randomBytes(24).toString('base64url'));

  app.get('/anmelden', async (req, reply) => {
    if (req.portalLogin) return reply.redirect('/postfach/eingang', 303);
    const t = ctx.t(req);
    const loggedOut = (req.query as Record<string, unknown>).abgemeldet !== undefined;
    return ctx.render(req, reply, 'pages/login', {
      title: t('login.title'),
      notice: loggedOut ? t('login.loggedOut') : undefined,
    });
  });

  app.post('/anmelden', async (req, reply) => {
    const t = ctx.t(req);
    const typed = formField(req.body, 'address', MAX_ADDRESS_LENGTH).trim();
    const password = formField(req.body, 'password', MAX_PASSWORD_LENGTH);
    const addressKey = normalizedOrRaw(typed);
    const client = ctx.clientOf(req);
    const fail = (status: number, failure: string) =>
      ctx.render(req, reply, 'pages/login', { title: t('login.title'), failure, values: { address: typed } }, status);

    // Each attempt takes its slots before the password is checked (a parallel burst gets no more checks than the
    // limits allow); a refused attempt and a right password give theirs back.
    const [clientAfter, addressAfter] = await Promise.all([
      ctx.limits.hit('loginPerClient', client),
      ctx.limits.hit('loginPerMailbox', addressKey),
    ]);
    const giveBack = () =>
      Promise.all([ctx.limits.giveBack('loginPerClient', client), ctx.limits.giveBack('loginPerMailbox', addressKey)]);
    if (clientAfter.exceeded || addressAfter.exceeded) {
      await giveBack();
      return lockedOut(ctx, req, reply, fail, Math.max(clientAfter.retryAfterMs, addressAfter.retryAfterMs));
    }

    const mailbox = await findMailboxQuietly(ctx, addressKey);
    const hash =
      mailbox && mailbox.state !== 'passive' ? await mailboxPasswordHash(ctx.deps.pool, mailbox.id) : undefined;
    const matches = await verifyPassword(password, hash ?? dummyHash);
    if (matches && hash && mailbox) {
      // Not a wrong password: its own slots go back. Wrong ones counted meanwhile stay until their window ends.
      await giveBack();
      if (mailbox.state === 'locked') return fail(403, t('login.mailboxLocked'));
      const at = ctx.now();
      await recordMailboxLogin(ctx.deps.pool, mailbox.id, at);
      await recordMailboxAudit(ctx.deps.pool, {
        mailboxId: mailbox.id,
        address: mailbox.address,
        event: 'mailbox.logged-in',
        actor: 'portal',
        at,
      });
      // The mailbox as read before the hash: a password or lock changed since makes this session end at once.
      await ctx.startSession(req, reply, mailbox);
      req.log.info({ code: 'PORTAL_LOGGED_IN', mailboxId: mailbox.id }, 'logged in');
      return reply.redirect('/postfach/eingang', 303);
    }

    req.log.info({ code: 'PORTAL_LOGIN_FAILED', mailboxId: mailbox?.id }, 'login failed');
    if (addressAfter.blocked && addressAfter.count === ctx.limits.rules.loginPerMailbox.max && mailbox) {
      await recordMailboxAudit(ctx.deps.pool, {
        mailboxId: mailbox.id,
        address: mailbox.address,
        event: 'mailbox.login-locked-out',
        actor: 'portal',
        at: ctx.now(),
        detail: { failures: addressAfter.count },
      });
      req.log.warn(
        { code: 'PORTAL_LOGIN_LOCKED_OUT', mailboxId: mailbox.id },
        'too many wrong passwords for a mailbox',
      );
    }
    if (clientAfter.blocked || addressAfter.blocked) {
      return lockedOut(ctx, req, reply, fail, Math.max(clientAfter.retryAfterMs, addressAfter.retryAfterMs));
    }
    return fail(401, t('login.failed'));
  });

  app.post('/abmelden', async (req, reply) => {
    const mailboxId = req.portalLogin?.mailbox.id;
    await ctx.endSession(req, reply);
    if (mailboxId) req.log.info({ code: 'PORTAL_LOGGED_OUT', mailboxId }, 'logged out');
    return reply.redirect('/anmelden?abgemeldet=1', 303);
  });
};

function lockedOut(
  ctx: PortalContext,
  req: FastifyRequest,
  reply: FastifyReply,
  fail: (status: number, failure: string) => Promise<FastifyReply>,
  retryAfterMs: number,
) {
  const minutes = Math.max(1, Math.ceil(retryAfterMs / 60_000));
  reply.header('retry-after', Math.ceil(retryAfterMs / 1000));
  return fail(429, ctx.t(req)('login.lockedOut', { minutes }));
}

/** The address as the store keys it; what was typed (lower-cased) when it is not an address at all. */
function normalizedOrRaw(typed: string): string {
  try {
    return normalizeMailboxAddress(typed);
  } catch {
    return typed.toLowerCase();
  }
}

async function findMailboxQuietly(ctx: PortalContext, address: string): Promise<Mailbox | undefined> {
  try {
    return await findMailbox(ctx.deps.pool, address);
  } catch {
    return undefined; // not an address: like an unknown one
  }
}
