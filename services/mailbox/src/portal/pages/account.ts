// /konto: the account page, a list of sections (ACCOUNT_SECTIONS), each a view under views/account/ with the data
// it needs. portal-core's section: log out everywhere. Other sections (download all, delete the mailbox) add an
// entry to ACCOUNT_SECTIONS and their own routes in their own page module.
import { recordMailboxAudit } from '@smgw/mailbox-store';
import type { FastifyRequest } from 'fastify';
import type { PortalContext, PortalPage } from '../context.ts';
import { DELETE_MAILBOX_SECTION, DOWNLOAD_ALL_SECTION } from './account-data.ts';

export interface AccountSection {
  /** A view under views/ (e.g. 'account/logout-everywhere'); it gets the page's `it` plus `data`. */
  view: string;
  /** Extra data of the section (read for each request). */
  data?: (req: FastifyRequest, ctx: PortalContext) => Promise<Record<string, unknown>>;
}

/** The sections of /konto in order, one line each. */
export const ACCOUNT_SECTIONS: AccountSection[] = [
  { view: 'account/logout-everywhere' },
  DOWNLOAD_ALL_SECTION,
  DELETE_MAILBOX_SECTION,
];

export const accountPages: PortalPage = async (app, ctx) => {
  app.get('/konto', { config: { requireLogin: true } }, async (req, reply) => {
    const sections = await Promise.all(
      ACCOUNT_SECTIONS.map(async (section) => ({ view: section.view, data: (await section.data?.(req, ctx)) ?? {} })),
    );
    return ctx.render(req, reply, 'pages/account', { title: ctx.t(req)('account.title'), sections });
  });

  // Every session of the mailbox ends, this one too (a lost phone, a shared computer).
  app.post('/konto/ueberall-abmelden', { config: { requireLogin: true } }, async (req, reply) => {
    const { mailbox } = ctx.login(req);
    const ended = await ctx.sessions.destroyAllOf(mailbox.id);
    await ctx.endSession(req, reply);
    ctx.viewCache.forgetMailbox(mailbox.id);
    await recordMailboxAudit(ctx.deps.pool, {
      mailboxId: mailbox.id,
      address: mailbox.address,
      event: 'mailbox.logged-out-everywhere',
      actor: 'portal',
      at: ctx.now(),
      detail: { sessions: ended },
    });
    req.log.info(
      { code: 'PORTAL_LOGGED_OUT_EVERYWHERE', mailboxId: mailbox.id, sessions: ended },
      'logged out everywhere',
    );
    return reply.redirect('/anmelden?abgemeldet=1', 303);
  });
};
