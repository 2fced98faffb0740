// /behoerde-registrieren: an agency asks to be connected. The form's fields are checked one by one (errors beside
// their fields); a valid registration is stored pending for an operator (admin API / CLI: registration accept|reject)
// and the contact gets an information mail with the next steps and a checklist. Stored and mailed together: the
// registration commits only after the broker confirmed the mail. Limited per client, per contact address (without
// its +tag: victim+1@ is victim@) and per contact domain, so the form cannot be used to mail strangers in bulk; the
// mail echoes nothing typed, so it carries no chosen text.
import { withTransaction } from '@smgw/db';
import { newTraceId } from '@smgw/envelope';
import { insertAgencyRegistration } from '@smgw/key-directory';
import {
  AGENCY_FORM_LIMITS,
  type AgencyRegistrationInput,
  agencyFormValues,
  checkAgencyForm,
} from '../agency-registration-form.ts';
import type { PortalContext, PortalPage } from '../context.ts';
import { contactDomainSubject, contactSubject, firstExceeded } from '../limits.ts';
import { portalNotice, sendPortalNotice } from '../portal-notices.ts';

export const agencyRegistrationPages: PortalPage = async (app, ctx) => {
  app.get('/behoerde-registrieren', async (req, reply) =>
    ctx.render(req, reply, 'pages/agency-registration', {
      title: ctx.t(req)('agencyRegistration.title'),
      limits: AGENCY_FORM_LIMITS,
    }),
  );

  app.post('/behoerde-registrieren', async (req, reply) => {
    const t = ctx.t(req);
    const values = agencyFormValues(req.body);
    const checked = checkAgencyForm(values);
    if (!checked.ok) {
      const errors = Object.fromEntries(
        Object.entries(checked.errors).map(([field, error]) => [field, t(error.key, error.values)]),
      );
      return ctx.render(
        req,
        reply,
        'pages/agency-registration',
        { title: t('agencyRegistration.title'), values, errors, limits: AGENCY_FORM_LIMITS },
        400,
      );
    }
    const exceeded = await firstExceeded(ctx.limits, [
      ['agencyRegistrationPerClient', ctx.clientOf(req)],
      ['agencyRegistrationPerContact', contactSubject(checked.input.contactEmail)],
      ['agencyRegistrationPerContactDomain', contactDomainSubject(checked.input.contactEmail)],
    ]);
    if (exceeded) return ctx.renderError(req, reply, 429, exceeded.retryAfterMs);

    const registrationId = await storeAgencyRegistration(ctx, checked.input);
    return ctx.render(req, reply, 'pages/agency-registration-sent', {
      title: t('agencyRegistration.sent.title'),
      registrationId,
      contactEmail: checked.input.contactEmail,
    });
  });
};

/** Stores the registration pending and mails the contact; returns the registration's id. */
export async function storeAgencyRegistration(ctx: PortalContext, input: AgencyRegistrationInput): Promise<string> {
  const { deps } = ctx;
  const now = ctx.now();
  const id = await withTransaction(deps.pool, async (db) => {
    const registration = await insertAgencyRegistration(db, { ...input, now });
    const notice = await portalNotice(ctx, {
      kind: 'agency-registration-received',
      to: registration.contactEmail,
      // Nothing typed into the form is echoed (names, domains): anyone may name any address as the contact, and
      // the gateway must not carry a stranger's chosen text to it. The reference and a count say enough.
      values: { registrationId: registration.id, domainCount: String(registration.domains.length) },
      traceId: newTraceId(),
      now,
    });
    await sendPortalNotice(ctx, db, notice, now);
    return registration.id;
  });
  deps.logger.info({ code: 'PORTAL_AGENCY_REGISTRATION_STORED', registrationId: id }, 'agency registration stored');
  return id;
}
