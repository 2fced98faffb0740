// /aktivieren/:token: the link from the activation (or re-activation) mail. With the PIN and a new password the
// mailbox becomes active and the user is logged in. A wrong PIN counts against the link (checkTokenPin: the link dies
// after SMGW_PIN_MAX_ATTEMPTS) and against the client (Redis). The token is used and the password set in one
// transaction: a used link always has its password.
import { withTransaction } from '@smgw/db';
import {
  type ActivationToken,
  checkTokenPin,
  findMailboxById,
  findTokenByLink,
  lockMailbox,
  PIN_DIGITS,
  recordMailboxAudit,
  recordMailboxLogin,
  setMailboxPassword,
  useToken,
} from '@smgw/mailbox-store';
import { hashPassword } from '@smgw/submission-accounts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PortalContext, PortalPage } from '../context.ts';
import type { MessageKey } from '../i18n/index.ts';
import {
  MAX_PASSWORD_LENGTH,
  type PasswordProblem,
  PORTAL_MIN_PASSWORD_LENGTH,
  passwordProblem,
} from '../password-rules.ts';
import { formField } from './form-fields.ts';

const PASSWORD_MESSAGES: Record<PasswordProblem, MessageKey> = {
  short: 'activation.passwordShort',
  long: 'activation.passwordShort',
  weak: 'activation.passwordWeak',
  mismatch: 'activation.passwordMismatch',
};

type Params = { Params: { token: string } };

export const activationPages: PortalPage = async (app, ctx) => {
  app.get<Params>('/aktivieren/:token', async (req, reply) => {
    const found = await findTokenByLink(ctx.deps.pool, req.params.token, ctx.now());
    if (found.kind !== 'live') return deadLink(ctx, req, reply);
    return form(ctx, req, reply, {}, 200);
  });

  app.post<Params>('/aktivieren/:token', async (req, reply) => {
    const t = ctx.t(req);
    const now = ctx.now();
    const found = await findTokenByLink(ctx.deps.pool, req.params.token, now);
    if (found.kind !== 'live') return deadLink(ctx, req, reply);
    const client = ctx.clientOf(req);

    const pin = formField(req.body, 'pin', 64).replace(/\s+/g, '');
    const password = formField(req.body, 'password', MAX_PASSWORD_LENGTH + 1);
    const repeated = formField(req.body, 'passwordRepeat', MAX_PASSWORD_LENGTH + 1);
    const problem = passwordProblem(password, repeated, await userInputsOf(ctx, found.token));
    if (problem) {
      const key = problem === 'mismatch' ? 'passwordRepeat' : 'password';
      return form(ctx, req, reply, { [key]: t(PASSWORD_MESSAGES[problem], { min: PORTAL_MIN_PASSWORD_LENGTH }) }, 400);
    }

    // The client's slot is taken before the PIN is checked (a parallel burst gets no more checks than the limit);
    // a refused attempt, a dead link and a right PIN give it back.
    const clientAfter = await ctx.limits.hit('pinPerClient', client);
    if (clientAfter.exceeded) {
      await ctx.limits.giveBack('pinPerClient', client);
      return ctx.renderError(req, reply, 429, clientAfter.retryAfterMs);
    }
    const checked = await checkTokenPin(ctx.deps.pool, found.token.id, pin, ctx.settings.pinMaxAttempts, now);
    if (checked !== 'wrong') await ctx.limits.giveBack('pinPerClient', client);
    if (checked === 'dead') return deadLink(ctx, req, reply);
    if (checked === 'wrong') {
      req.log.info({ code: 'PORTAL_PIN_WRONG', mailboxId: found.token.mailboxId }, 'wrong PIN');
      const after = await findTokenByLink(ctx.deps.pool, req.params.token, now);
      if (after.kind !== 'live') {
        req.log.warn(
          { code: 'PORTAL_LINK_DIED', mailboxId: found.token.mailboxId },
          'activation link dead after wrong PINs',
        );
        return deadLink(ctx, req, reply);
      }
      if (clientAfter.blocked) return ctx.renderError(req, reply, 429, clientAfter.retryAfterMs);
      const left = Math.max(0, ctx.settings.pinMaxAttempts - after.token.attempts);
      const message =
        /^\d+$/.test(pin) && pin.length === PIN_DIGITS
          ? t('activation.pinWrong', { left })
          : `${t('activation.pinFormat')} ${t('activation.pinWrong', { left })}`;
      return form(ctx, req, reply, { pin: message }, 400);
    }

    const passwordHash = await hashPassword(password);
    const activated = await withTransaction(ctx.deps.pool, async (db) => {
      const mailbox = await lockMailbox(db, found.token.mailboxId);
      if (!mailbox || mailbox.state === 'locked') return undefined;
      if (!(await useToken(db, found.token.id, now))) return undefined;
      const withPassword = await setMailboxPassword(db, mailbox.id, passwordHash, now);
      if (!withPassword) return undefined;
      await recordMailboxLogin(db, mailbox.id, now);
      await recordMailboxAudit(db, {
        mailboxId: mailbox.id,
        address: mailbox.address,
        event: found.token.purpose === 'reactivation' ? 'mailbox.reactivated' : 'mailbox.activated',
        actor: 'portal',
        at: now,
        detail: { purpose: found.token.purpose },
      });
      return withPassword;
    });
    if (!activated) return deadLink(ctx, req, reply);
    // A new password: sessions that were opened with the old one end.
    await ctx.sessions.destroyAllOf(activated.id);
    await ctx.startSession(req, reply, activated);
    req.log.info(
      { code: 'PORTAL_ACTIVATED', mailboxId: activated.id, purpose: found.token.purpose },
      'mailbox activated',
    );
    return reply.redirect('/postfach/eingang', 303);
  });
};

function form(
  ctx: PortalContext,
  req: FastifyRequest<Params>,
  reply: FastifyReply,
  errors: Record<string, string>,
  status: number,
) {
  return ctx.render(
    req,
    reply,
    'pages/activation',
    { title: ctx.t(req)('activation.title'), action: `/aktivieren/${req.params.token}`, errors },
    status,
  );
}

/** Used, revoked, expired or unknown: one page for all, offering a new link. */
function deadLink(ctx: PortalContext, req: FastifyRequest, reply: FastifyReply) {
  return ctx.render(req, reply, 'pages/activation-dead', { title: ctx.t(req)('activation.dead.title') }, 410);
}

/** The address and its parts: a password made of them is easy to guess for someone who knows the address. */
async function userInputsOf(ctx: PortalContext, token: ActivationToken): Promise<string[]> {
  const mailbox = await findMailboxById(ctx.deps.pool, token.mailboxId);
  if (!mailbox) return [];
  const [local = '', domain = ''] = mailbox.address.split('@');
  return [mailbox.address, local, domain, ...mailbox.address.split(/[@.+_-]/).filter((part) => part.length >= 3)];
}
