// The agency registration form (/behoerde-registrieren): each field checked with its error beside it, a valid
// registration stored pending for an operator with an information mail to the contact, limits per client, contact
// (without its +tag) and contact domain, and what the user typed shown again escaped.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Envelope } from '@smgw/envelope';
import { listAgencyRegistrations } from '@smgw/key-directory';
import { type AgencyFormField, agencyFormValues, checkAgencyForm } from '../src/portal/agency-registration-form.ts';
import { contactDomainSubject, contactSubject, LIMIT_RULES } from '../src/portal/limits.ts';
import { mailText, portalWorldPerSuite } from './portal-world.ts';

const VALID: Record<AgencyFormField, string> = {
  agencyName: 'Stadt Musterhausen',
  contactName: 'Max Mustermann',
  contactEmail: 'it@musterhausen.example',
  contactPhone: '+49 (30) 123-456',
  domains: 'musterhausen.example\r\n  Rathaus.Musterhausen.example \r\n\r\nmusterhausen.example',
  note: 'Bitte bis Monatsende.\r\nDanke.',
};

describe('agency registration form: the checks', () => {
  it('accepts a valid form with domains normalised and repeated ones dropped', () => {
    const checked = checkAgencyForm(VALID);
    assert.ok(checked.ok);
    assert.deepEqual(checked.input.domains, ['musterhausen.example', 'rathaus.musterhausen.example']);
    assert.equal(checked.input.contactEmail, 'it@musterhausen.example');
    assert.equal(checked.input.contactPhone, '+49 (30) 123-456');
  });

  it('takes an IDN domain as its A-label', () => {
    const checked = checkAgencyForm({ ...VALID, domains: 'münchen.example' });
    assert.ok(checked.ok);
    assert.deepEqual(checked.input.domains, ['xn--mnchen-3ya.example']);
  });

  it('leaves phone and note optional', () => {
    const checked = checkAgencyForm({ ...VALID, contactPhone: '', note: '' });
    assert.ok(checked.ok);
    assert.equal(checked.input.contactPhone, undefined);
    assert.equal(checked.input.note, undefined);
  });

  const wrong: Array<[string, Partial<Record<AgencyFormField, string>>, AgencyFormField, string]> = [
    ['an empty agency name', { agencyName: '  ' }, 'agencyName', 'agencyRegistration.error.agencyName'],
    ['a name with a line break', { agencyName: 'Amt\nX' }, 'agencyName', 'agencyRegistration.error.agencyName'],
    [
      'a name with an escape sequence',
      { contactName: 'Max\u001b[2J' },
      'contactName',
      'agencyRegistration.error.contactName',
    ],
    [
      'a name over 200 characters',
      { agencyName: 'A'.repeat(201) },
      'agencyName',
      'agencyRegistration.error.agencyName',
    ],
    ['no @ in the e-mail', { contactEmail: 'it.example' }, 'contactEmail', 'agencyRegistration.error.contactEmail'],
    [
      'a display name as e-mail',
      { contactEmail: 'Max <it@x.example>' },
      'contactEmail',
      'agencyRegistration.error.contactEmail',
    ],
    [
      'an address literal as e-mail (a host the gateway would be made to mail)',
      { contactEmail: 'it@[192.0.2.1]' },
      'contactEmail',
      'agencyRegistration.error.contactEmail',
    ],
    [
      'an IPv4 address as e-mail domain',
      { contactEmail: 'it@192.0.2.1' },
      'contactEmail',
      'agencyRegistration.error.contactEmail',
    ],
    [
      'a bare name as e-mail domain',
      { contactEmail: 'it@localhost' },
      'contactEmail',
      'agencyRegistration.error.contactEmail',
    ],
    [
      'a link-local (mDNS) name as e-mail domain',
      { contactEmail: 'it@printer.local' },
      'contactEmail',
      'agencyRegistration.error.contactEmail',
    ],
    [
      'a short IPv4 form as e-mail domain',
      { contactEmail: 'it@127.1' },
      'contactEmail',
      'agencyRegistration.error.contactEmail',
    ],
    ['letters in the phone', { contactPhone: 'call me' }, 'contactPhone', 'agencyRegistration.error.contactPhone'],
    ['no domain', { domains: '\n \n' }, 'domains', 'agencyRegistration.error.domainsMissing'],
    [
      'an address as domain',
      { domains: 'it@musterhausen.example' },
      'domains',
      'agencyRegistration.error.domainInvalid',
    ],
    ['a bare name as domain', { domains: 'localhost' }, 'domains', 'agencyRegistration.error.domainInvalid'],
    ['an address literal as domain', { domains: '[192.0.2.1]' }, 'domains', 'agencyRegistration.error.domainInvalid'],
    [
      '21 domains',
      { domains: Array.from({ length: 21 }, (_, i) => `d${i}.example`).join('\n') },
      'domains',
      'agencyRegistration.error.domainsTooMany',
    ],
    ['a note over 2000 characters', { note: 'x'.repeat(2001) }, 'note', 'agencyRegistration.error.note'],
  ];
  for (const [what, change, field, key] of wrong) {
    it(`refuses ${what}, naming the field`, () => {
      const checked = checkAgencyForm({ ...VALID, ...change });
      assert.equal(checked.ok, false);
      if (checked.ok) return;
      assert.deepEqual(Object.keys(checked.errors), [field]);
      assert.equal(checked.errors[field]?.key, key);
    });
  }

  it('names the line that is no domain', () => {
    const checked = checkAgencyForm({ ...VALID, domains: 'ok.example\nnicht gut' });
    assert.equal(checked.ok, false);
    if (checked.ok) return;
    assert.deepEqual(checked.errors.domains?.values, { domain: 'nicht gut' });
  });

  it('reads only string fields of bounded length (a repeated or oversized field is empty)', () => {
    const values = agencyFormValues({ agencyName: ['a', 'b'], contactName: 'x'.repeat(10_000), note: 'ok' });
    assert.equal(values.agencyName, '');
    assert.equal(values.contactName, '');
    assert.equal(values.note, 'ok');
  });
});

describe('agency registration limits: whom they count', () => {
  const cases: Array<[string, string, string]> = [
    ['victim@example.org', 'victim@example.org', 'example.org'],
    ['victim+1@example.org', 'victim@example.org', 'example.org'],
    ['victim+a+b@example.org', 'victim@example.org', 'example.org'],
    ['victim+@example.org', 'victim@example.org', 'example.org'],
    ['+only@example.org', '+only@example.org', 'example.org'],
    ['it@xn--mnchen-3ya.example', 'it@xn--mnchen-3ya.example', 'xn--mnchen-3ya.example'],
  ];
  for (const [address, contact, domain] of cases) {
    it(`counts ${address} as the contact ${contact} at ${domain}`, () => {
      assert.equal(contactSubject(address), contact);
      assert.equal(contactDomainSubject(address), domain);
    });
  }
});

describe('agency registration page', () => {
  const world = portalWorldPerSuite();

  const submit = (fields: Record<string, string>, ip?: string) =>
    world.browser(ip).submit('/behoerde-registrieren', fields);

  it('shows every field labelled, the optional ones not required', async () => {
    const page = await world.browser().get('/behoerde-registrieren');
    assert.equal(page.status, 200);
    for (const field of ['agencyName', 'contactName', 'contactEmail', 'contactPhone', 'domains', 'note']) {
      assert.match(page.body, new RegExp(`<label for="field-${field}">`), field);
    }
    assert.match(page.body, /<textarea id="field-domains" name="domains" rows="4" required/);
    assert.doesNotMatch(page.body, /id="field-contactPhone"[^>]* required/);
  });

  it('stores a valid registration pending and mails the contact the next steps and a checklist', async () => {
    const page = await submit(VALID);
    assert.equal(page.status, 200);
    assert.match(page.body, /Registrierung erhalten/);
    const [registration] = (await listAgencyRegistrations(world.db.pool, { state: 'pending' })).filter(
      (r) => r.agencyName === 'Stadt Musterhausen',
    );
    assert.ok(registration);
    assert.deepEqual(registration.domains, ['musterhausen.example', 'rathaus.musterhausen.example']);
    assert.equal(registration.note, 'Bitte bis Monatsende.\r\nDanke.');
    assert.ok(page.body.includes(registration.id));

    assert.equal(world.published.length, 1);
    const envelope = world.published[0] as Envelope;
    assert.deepEqual(envelope.recipients, ['it@musterhausen.example']);
    const { subject, text } = await mailText(world, envelope);
    assert.match(subject, /Registrierung Ihrer Behörde/);
    assert.match(text, /mit\s+2 Domain\(s\)/);
    assert.match(text, /\[ \] Zertifikate/);
    assert.match(text, /\[ \] MX und Relay/);
    assert.match(text, /\[ \] Certificates/);
    assert.ok(text.includes(registration.id));
  });

  it('echoes nothing typed in its mail: a stranger cannot carry chosen text to the contact address', async () => {
    const chosen = {
      agencyName: 'Ihre Bank: Konto gesperrt, rufen Sie 0800 1234567 an',
      contactName: 'Sicherheitsteam, bitte sofort anrufen',
      contactEmail: 'opfer@buerger.example',
      domains: 'konto-gesperrt.bitte-sofort-anrufen-0800-1234567.example',
      note: 'Zahlen Sie jetzt',
    };
    assert.equal((await submit(chosen, '192.0.2.60')).status, 200);
    assert.equal(world.published.length, 1);
    const { subject, text } = await mailText(world, world.published[0] as Envelope);
    for (const typed of Object.values(chosen).filter((v) => !v.includes('@'))) {
      assert.ok(!subject.includes(typed) && !text.includes(typed), typed);
    }
    assert.doesNotMatch(text, /Konto|anrufen|0800|Zahlen/);
    assert.match(text, /mit\s+1 Domain\(s\)/);
  });

  it('shows each wrong field with its error tied to it and keeps what was typed, escaped', async () => {
    const page = await submit({
      ...VALID,
      agencyName: '<script>alert(1)</script>',
      contactEmail: 'kaputt',
      domains: 'gut.example\n"><img src=x onerror=alert(1)>',
    });
    assert.equal(page.status, 400);
    assert.match(page.body, /role="alert"/);
    assert.match(page.body, /id="field-contactEmail-error"/);
    assert.match(page.body, /aria-describedby="field-contactEmail-hint field-contactEmail-error" aria-invalid="true"/);
    assert.match(page.body, /id="field-domains-error"/);
    assert.match(
      page.body,
      /<textarea id="field-domains"[^>]*aria-describedby="field-domains-hint field-domains-error" aria-invalid="true"/,
    );
    assert.match(page.body, /<a href="#field-domains">/);
    // The agency name is fine as text (it is escaped), so it has no error; nothing typed is raw HTML.
    assert.doesNotMatch(page.body, /id="field-agencyName-error"/);
    assert.doesNotMatch(page.body, /<script>alert/);
    assert.doesNotMatch(page.body, /<img src=x/);
    assert.match(page.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.equal(world.published.length, 0);
  });

  it('limits registrations per client and information mails per contact', async () => {
    const perContact = LIMIT_RULES.agencyRegistrationPerContact.max;
    for (let i = 0; i < perContact; i++) {
      assert.equal((await submit({ ...VALID, agencyName: `Amt K${i}` }, `192.0.2.${30 + i}`)).status, 200);
    }
    assert.equal((await submit({ ...VALID, agencyName: 'Amt K9' }, '192.0.2.40')).status, 429);
    assert.equal(world.published.length, perContact);

    const perClient = LIMIT_RULES.agencyRegistrationPerClient.max;
    for (let i = 0; i < perClient; i++) {
      const fields = { ...VALID, agencyName: `Amt C${i}`, contactEmail: `c${i}@musterhausen.example` };
      assert.equal((await submit(fields, '192.0.2.50')).status, 200);
    }
    const limited = await submit({ ...VALID, contactEmail: 'last@musterhausen.example' }, '192.0.2.50');
    assert.equal(limited.status, 429);
  });

  it('counts victim+1@, victim+2@ … as the contact victim@: three mails a day to that mailbox in all', async () => {
    const perContact = LIMIT_RULES.agencyRegistrationPerContact.max;
    for (let i = 0; i < perContact; i++) {
      const fields = { ...VALID, agencyName: `Amt T${i}`, contactEmail: `victim+${i}@opfer.example` };
      assert.equal((await submit(fields, `192.0.2.${70 + i}`)).status, 200);
    }
    for (const contactEmail of ['victim+99@opfer.example', 'Victim@opfer.example', 'victim+@opfer.example']) {
      const page = await submit({ ...VALID, agencyName: 'Amt T9', contactEmail }, '192.0.2.79');
      assert.equal(page.status, 429, contactEmail);
    }
    assert.equal(world.published.length, perContact);
  });

  it('limits the information mails to one contact domain a day, over every address there', async () => {
    const perDomain = LIMIT_RULES.agencyRegistrationPerContactDomain.max;
    for (let i = 0; i < perDomain; i++) {
      const fields = { ...VALID, agencyName: `Amt D${i}`, contactEmail: `v${i}@opfer-domain.example` };
      assert.equal((await submit(fields, `192.0.2.${100 + i}`)).status, 200);
    }
    const page = await submit({ ...VALID, contactEmail: 'fresh@opfer-domain.example' }, '192.0.2.120');
    assert.equal(page.status, 429);
    assert.equal(world.published.length, perDomain);
    // Another domain is not held by it.
    assert.equal((await submit({ ...VALID, contactEmail: 'v0@anderes.example' }, '192.0.2.121')).status, 200);
  });

  it('refuses a post without the CSRF token', async () => {
    const page = await submit({ ...VALID, _csrf: null } as never);
    assert.equal(page.status, 403);
    assert.equal(world.published.length, 0);
  });
});
