// /anmelden and /abmelden. A login answers the same, in about the same time, for an unknown address, a passive one
// and a wrong password (a dummy argon2id hash is checked when there is no password to check). Wrong passwords are
// counted per address (known or not, so the lock-out itself tells nothing) and per client, each attempt before its
// password is checked; past either limit the form is refused with a clear message until the window ends. A right
// password rotates the session; it does not clear the wrong ones counted for the address (they end with their window).
import {
  findMailbox,
  type Mailbox,
  normalizeMailboxAddress,
  recordMailboxAudit,
  recordMailboxLogin,
} from '@smgw/mailbox-store';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PortalContext, PortalPage } from '../context.ts';
import { checkPasswordLimited } from '../password-check.ts';
import { MAX_PASSWORD_LENGTH } from '../password-rules.ts';
import { formField } from './form-fields.ts';

const MAX_ADDRESS_LENGTH = 320;

export const loginPages: PortalPage = async (app, ctx) => {
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
    const fail = (status: number, failure: string) =>
      ctx.render(req, reply, 'pages/login', { title: t('login.title'), failure, values: { address: typed } }, status);

    const mailbox = await findMailboxQuietly(ctx, addressKey);
    const checked = await checkPasswordLimited(ctx, req, { client: ctx.clientOf(req), addressKey, mailbox, password });
    if (checked.kind === 'locked-out') return lockedOut(ctx, req, reply, fail, checked.retryAfterMs);
    if (checked.kind === 'right' && mailbox) {
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
    if (checked.kind === 'wrong' && checked.lockedOutMs !== undefined) {
      return lockedOut(ctx, req, reply, fail, checked.lockedOutMs);
    }
    return fail(401, t('login.failed'));
  });

  app.post('/abmelden', async (req, reply) => {
    const mailboxId = req.portalLogin?.mailbox.id;
    await ctx.endSession(req, reply);
    if (mailboxId) {
      // The decrypted views of its messages kept for a reload do not outlive the session that read them.
      ctx.viewCache.forgetMailbox(mailboxId);
      req.log.info({ code: 'PORTAL_LOGGED_OUT', mailboxId }, 'logged out');
    }
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
