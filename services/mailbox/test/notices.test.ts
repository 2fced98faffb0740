// The mailbox stage's mails on their own: every template renders completely in German and English, the links point
// at the portal, and the DSN is a multipart/report a mail client shows as a bounce.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { SMALL_BLOB_BYTES } from '@smgw/blob-store';
import { simpleParser } from 'mailparser';
import {
  buildNoticeMail,
  loadMailboxTemplates,
  type MailboxTemplates,
  NOTICE_KINDS,
  portalLinks,
} from '../src/notices.ts';

const VALUES: Record<string, string> = {
  mailFrom: 'clerk@behoerde.example',
  recipient: 'erika@buerger.example',
  messageId: '01TESTMESSAGE0000000000001',
  activationUrl: 'https://portal.test/aktivieren/TOKEN',
  loginUrl: 'https://portal.test/anmelden',
  expiresAt: 'Fri, 18 Dec 2026 10:00:00 +0000',
  pin: '12345678',
  arrivalDate: 'Fri, 04 Dec 2026 10:00:00 +0000',
  usedMb: '29.0',
  quotaMb: '30.0',
  sizeMb: '2.0',
  reactivationUrl: 'https://portal.test/reaktivieren',
  contactName: 'Max Mustermann',
  agencyName: 'Stadt Musterhausen',
  registrationId: 'c0ffee00-aaaa-4bbb-8ccc-dddddddddddd',
  domains: '  musterhausen.example',
  domainCount: '1',
};

async function render(templates: MailboxTemplates, kind: (typeof NOTICE_KINDS)[number]) {
  const mail = buildNoticeMail(templates, {
    kind,
    to: 'erika@buerger.example',
    values: VALUES,
    hostname: 'smgw.test',
    now: new Date('2026-12-04T10:00:00Z'),
    id: '01TESTNOTICE00000000000001',
    relatesTo: VALUES.messageId as string,
    ...(kind === 'over-quota-dsn' ? { dsn: { arrivedAt: new Date(), recipient: 'erika@buerger.example' } } : {}),
  });
  const raw = await mail.build();
  return { raw, parsed: await simpleParser(raw) };
}

describe('mailbox notices', () => {
  let templates: MailboxTemplates;
  before(async () => {
    templates = await loadMailboxTemplates();
  });

  for (const kind of NOTICE_KINDS) {
    it(`${kind}: renders every placeholder, German before English, from the gateway with a related message id`, async () => {
      const { parsed } = await render(templates, kind);
      const text = parsed.text ?? '';
      assert.equal(/\{\{\w+\}\}/.test(text + (parsed.subject ?? '')), false, 'no placeholder left');
      assert.ok(
        text.indexOf('Guten Tag') < text.indexOf('Hello') || text.indexOf('Dies ist') < text.indexOf('This is'),
      );
      assert.equal(parsed.from?.value[0]?.address, 'MAILER-DAEMON@smgw.test');
      assert.equal(parsed.headers.get('x-smgw-related-message-id'), VALUES.messageId);
    });
  }

  it('stays far below SMALL_BLOB_BYTES, even with addresses of 254 characters: a notice never needs a file', async () => {
    // noticeEnvelope refuses a larger one (its content must commit with its row, in the deciding transaction).
    const long = `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(57)}.example`;
    for (const kind of NOTICE_KINDS) {
      const mail = buildNoticeMail(templates, {
        kind,
        to: long,
        values: {
          ...VALUES,
          mailFrom: long,
          recipient: long,
          activationUrl: `https://portal.test/aktivieren/${'T'.repeat(200)}`,
        },
        hostname: `${'h'.repeat(60)}.${'g'.repeat(60)}.example`,
        now: new Date('2026-12-04T10:00:00Z'),
        id: '01TESTNOTICE00000000000001',
        relatesTo: VALUES.messageId as string,
        ...(kind === 'over-quota-dsn' ? { dsn: { arrivedAt: new Date(), recipient: long } } : {}),
      });
      const raw = await mail.build();
      assert.ok(raw.length < SMALL_BLOB_BYTES / 2, `${kind}: ${raw.length} bytes`);
    }
  });

  it('gives the PIN only in the PIN mails, never beside the link', async () => {
    for (const kind of NOTICE_KINDS) {
      const { parsed } = await render(templates, kind);
      const hasPin = (parsed.text ?? '').includes(VALUES.pin as string);
      assert.equal(hasPin, kind === 'pin-mail' || kind === 'sender-pin', kind);
    }
  });

  it('makes the over-quota DSN a multipart/report with status 5.2.2', async () => {
    const { raw, parsed } = await render(templates, 'over-quota-dsn');
    const type = parsed.headers.get('content-type') as { value: string; params: Record<string, string> };
    assert.equal(type.value, 'multipart/report');
    assert.equal(type.params['report-type'], 'delivery-status');
    assert.ok(raw.includes('Status: 5.2.2'));
    assert.ok(raw.includes('Final-Recipient: rfc822; erika@buerger.example'));
    assert.equal(parsed.headers.get('auto-submitted'), 'auto-replied');
  });

  it('links to the portal below SMGW_PUBLIC_URL, with or without a trailing slash', () => {
    for (const base of ['https://portal.test', 'https://portal.test/']) {
      const links = portalLinks(base);
      assert.equal(links.activation('abc'), 'https://portal.test/aktivieren/abc');
      assert.equal(links.login, 'https://portal.test/anmelden');
      assert.equal(links.reactivation, 'https://portal.test/reaktivieren');
    }
  });
});
