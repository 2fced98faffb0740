// /reaktivieren: a new activation link for a forgotten password or a dead link. Every address gets the same answer
// page at once; the work (is there a mailbox? then revoke every earlier link and PIN, make a new token, mail the
// link now, the PIN after SMGW_PIN_DELAY through the PIN mail sweep) runs after the answer, so neither the page nor
// its timing tells whether the address has a mailbox. Requests are limited per address and per client.
import { isInternetAddress } from '@smgw/config';
import { withTransaction } from '@smgw/db';
import { findMailbox } from '@smgw/mailbox-store';
import type { PortalContext, PortalPage } from '../context.ts';
import { contactSubject, firstExceeded } from '../limits.ts';
import { mailNewActivationLink } from '../portal-notices.ts';
import { plainAddress } from '../recipients.ts';
import { formField } from './form-fields.ts';

export const reactivationPages: PortalPage = async (app, ctx) => {
  app.get('/reaktivieren', async (req, reply) =>
    ctx.render(req, reply, 'pages/reactivation', { title: ctx.t(req)('reactivation.title') }),
  );

  app.post('/reaktivieren', async (req, reply) => {
    const t = ctx.t(req);
    const typed = formField(req.body, 'address', 320).trim();
    // Only a plain address at a name of the internet, as on /registrieren (the link is mailed to it).
    const address = plainAddress(typed);
    if (!address || !isInternetAddress(address)) {
      return ctx.render(
        req,
        reply,
        'pages/reactivation',
        {
          title: t('reactivation.title'),
          values: { address: typed },
          errors: { address: t('reactivation.addressInvalid') },
        },
        400,
      );
    }
    // Counted for every address, known or not, so the limit itself tells nothing.
    const exceeded = await firstExceeded(ctx.limits, [
      ['reactivationPerClient', ctx.clientOf(req)],
      // Without its +tag, as on /registrieren: one inbox, one limit.
      ['reactivationPerAddress', contactSubject(address)],
    ]);
    if (exceeded) return ctx.renderError(req, reply, 429, exceeded.retryAfterMs);

    ctx.afterAnswer(req, 'PORTAL_REACTIVATION_FAILED', () => reactivate(ctx, address));
    return ctx.render(req, reply, 'pages/reactivation-sent', { title: t('reactivation.sent.title') });
  });
};

/**
 * When the address has a mailbox that is not locked: every earlier link and PIN stops working, a new token is made
 * and its link mailed now (the PIN mail follows from the sweep, SMGW_PIN_DELAY later). Published before the commit:
 * if the broker refuses, the old link stays valid.
 */
export async function reactivate(ctx: PortalContext, address: string): Promise<'sent' | 'no-mailbox'> {
  const { deps } = ctx;
  const mailbox = await findMailbox(deps.pool, address);
  if (!mailbox || mailbox.state === 'locked') return 'no-mailbox';
  const now = ctx.now();
  await withTransaction(deps.pool, (db) =>
    mailNewActivationLink(ctx, db, {
      mailbox,
      purpose: 'reactivation',
      event: 'mailbox.reactivation-requested',
      now,
    }),
  );
  deps.logger.info({ code: 'PORTAL_REACTIVATION_SENT', mailboxId: mailbox.id }, 're-activation link sent');
  return 'sent';
}
