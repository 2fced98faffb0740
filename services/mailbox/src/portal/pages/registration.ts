// /registrieren: self-registration as a passive user. An address of an agency domain (SMGW_INTERNAL_DOMAINS or a
// domain of the key directory's agencies) is refused on the page, with the reason: agencies are reached by plain
// e-mail, not through the portal. Every other address gets the same answer page at once ("if this address can get a
// mailbox, a mail is on its way"); the work runs after the answer, so neither the page nor its timing tells whether
// the address has a mailbox:
//   - no mailbox: a passive one is made with a token (purpose 'registration'); the link is mailed now, the PIN by
//     the PIN mail sweep after SMGW_PIN_DELAY;
//   - a mailbox: a mail to the address "you already have a mailbox: log in or ask for a new link" (nothing for a
//     locked one, as re-activation does);
// Requests are limited per client and mails per address (counted for every address, known or not).
import { inDomains, isInternetAddress } from '@smgw/config';
import { withTransaction } from '@smgw/db';
import { newTraceId } from '@smgw/envelope';
import { isAgencyDomain } from '@smgw/key-directory';
import { ensureMailbox, findMailbox } from '@smgw/mailbox-store';
import { portalLinks } from '../../notices.ts';
import type { PortalContext, PortalPage } from '../context.ts';
import { contactSubject, firstExceeded } from '../limits.ts';
import { mailNewActivationLink, portalNotice, sendPortalNotice } from '../portal-notices.ts';
import { plainAddress } from '../recipients.ts';
import { formField } from './form-fields.ts';

export const registrationPages: PortalPage = async (app, ctx) => {
  app.get('/registrieren', async (req, reply) =>
    ctx.render(req, reply, 'pages/registration', { title: ctx.t(req)('registration.title') }),
  );

  app.post('/registrieren', async (req, reply) => {
    const t = ctx.t(req);
    const typed = formField(req.body, 'address', 320).trim();
    const refuse = (error: string) =>
      ctx.render(
        req,
        reply,
        'pages/registration',
        { title: t('registration.title'), values: { address: typed }, errors: { address: error } },
        400,
      );
    // Only a plain address (as a portal user's address must be to send): no quotes, spaces, separators or brackets.
    const address = plainAddress(typed);
    if (!address) return refuse(t('registration.addressInvalid'));
    if (await isAgencyAddress(ctx, address)) return refuse(t('registration.agencyDomain'));
    // The link is mailed to it: never to an IPv4 address, a bare host or a special-use name a stranger typed.
    if (!isInternetAddress(address)) return refuse(t('registration.addressInvalid'));

    const exceeded = await firstExceeded(ctx.limits, [
      ['registrationPerClient', ctx.clientOf(req)],
      // Without its +tag: victim+1@, victim+2@ … are new addresses, but one inbox (as on the agency form).
      ['registrationPerAddress', contactSubject(address)],
    ]);
    if (exceeded) return ctx.renderError(req, reply, 429, exceeded.retryAfterMs);

    ctx.afterAnswer(req, 'PORTAL_REGISTRATION_FAILED', () => register(ctx, address));
    return ctx.render(req, reply, 'pages/registration-sent', { title: t('registration.sent.title') });
  });
};

/** An address of the agencies: SMGW_INTERNAL_DOMAINS (wildcards too) or a domain of an agency in the key directory. */
export async function isAgencyAddress(ctx: PortalContext, address: string): Promise<boolean> {
  if (inDomains(address, ctx.settings.internalDomains ?? [])) return true;
  return isAgencyDomain(ctx.deps.pool, address.slice(address.lastIndexOf('@') + 1));
}

export type RegistrationOutcome = 'registered' | 'already-registered' | 'locked';

/**
 * The work behind the answer page. A new mailbox and its token and the audit row commit together, after the broker
 * confirmed the link mail: if it refuses, no mailbox is kept and the address can register again.
 */
export async function register(ctx: PortalContext, address: string): Promise<RegistrationOutcome> {
  const { deps, settings } = ctx;
  const now = ctx.now();
  const outcome = await withTransaction(deps.pool, async (db): Promise<RegistrationOutcome> => {
    const { mailbox, created } = await ensureMailbox(db, address, deps.mailboxKeys);
    if (!created) return mailbox.state === 'locked' ? 'locked' : 'already-registered';
    await mailNewActivationLink(ctx, db, {
      mailbox,
      purpose: 'registration',
      event: 'mailbox.registered',
      now,
    });
    deps.logger.info({ code: 'PORTAL_REGISTERED', mailboxId: mailbox.id }, 'passive mailbox registered; link sent');
    return 'registered';
  });
  if (outcome !== 'already-registered') return outcome;

  // The owner learns that someone (maybe they) tried; the link leads to re-activation, not to a new mailbox.
  const mailbox = await findMailbox(deps.pool, address);
  if (!mailbox) return outcome;
  const links = portalLinks(settings.publicUrl);
  const notice = await portalNotice(ctx, {
    kind: 'registration-existing',
    to: mailbox.address,
    values: { loginUrl: links.login, reactivationUrl: links.reactivation },
    traceId: newTraceId(),
    now,
  });
  await withTransaction(deps.pool, (db) =>
    sendPortalNotice(ctx, db, notice, now, { mailbox, event: 'mailbox.registration-repeated' }),
  );
  deps.logger.info(
    { code: 'PORTAL_REGISTRATION_EXISTING', mailboxId: mailbox.id },
    'registration of an existing mailbox',
  );
  return outcome;
}
