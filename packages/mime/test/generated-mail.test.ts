import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import {
  type BilingualTemplates,
  bilingualText,
  deliveryReportMail,
  type GeneratedMailHeaders,
  generatedMail,
  loadBilingualTemplates,
  renderTemplate,
} from '../src/index.ts';

const headers: GeneratedMailHeaders = {
  fromName: 'Mail-Gateway der Behörde',
  hostname: 'smgw.test',
  to: 'clerk@behoerde.example',
  subject: 'Unzustellbar: Ihre Nachricht / Undeliverable',
  date: new Date('2026-03-04T12:00:01Z'),
  messageId: '01JNQ0000000000000000000AB',
  autoSubmitted: 'auto-replied',
};

async function rendered(extra: Partial<GeneratedMailHeaders> = {}): Promise<string> {
  const mail = generatedMail('text/plain; charset=utf-8', { ...headers, ...extra });
  mail.setContent('Hallo\r\n');
  return (await buffer(mail.createReadStream())).toString('latin1');
}

describe('a generated mail', () => {
  it('carries From MAILER-DAEMON, To, Subject, Date, Message-ID and Auto-Submitted, in that order', async () => {
    const text = await rendered();
    const head = text.slice(0, text.indexOf('\r\n\r\n'));
    const names = head
      .split('\r\n')
      .filter((line) => !/^[ \t]/.test(line))
      .map((line) => line.slice(0, line.indexOf(':')));
    assert.deepEqual(names.slice(0, 6), ['From', 'To', 'Subject', 'Date', 'Message-ID', 'Auto-Submitted']);
    assert.match(head, /^Date: Wed, 04 Mar 2026 12:00:01 \+0000$/m);
    assert.match(head, /^Message-ID: <01JNQ0000000000000000000AB@smgw\.test>$/m);
    assert.match(head, /^Auto-Submitted: auto-replied$/m);
  });

  it('encodes a sender name with umlauts (RFC 2047) so it reads back as written', async () => {
    const parsed = await simpleParser(Buffer.from(await rendered(), 'latin1'));
    assert.equal(parsed.from?.value[0]?.name, 'Mail-Gateway der Behörde');
    assert.equal(parsed.from?.value[0]?.address, 'MAILER-DAEMON@smgw.test');
    assert.doesNotMatch(await rendered(), /Behörde/, 'no raw 8-bit in the header');
  });

  it('answers a message with In-Reply-To and References, then the extra fields', async () => {
    const text = await rendered({ inReplyTo: '<orig@x.example>', extra: [['X-Note', 'n']] });
    assert.match(text, /\r\nIn-Reply-To: <orig@x\.example>\r\nReferences: <orig@x\.example>\r\nX-Note: n\r\n/);
  });

  it('has no In-Reply-To when there is nothing it answers', async () => {
    assert.doesNotMatch(await rendered(), /In-Reply-To|References/);
  });
});

describe('bilingual text from templates', () => {
  it('fills known placeholders and leaves unknown ones', () => {
    assert.equal(renderTemplate('Nachricht {{messageId}} an {{who}}', { messageId: 'M1' }), 'Nachricht M1 an {{who}}');
  });

  it('puts German, the separator and English together with CRLF line ends', () => {
    assert.equal(
      bilingualText('Hallo\nWelt\n\n', 'Hello\r\nworld', '---'),
      'Hallo\r\nWelt\r\n\r\n---\r\n\r\nHello\r\nworld\r\n',
    );
  });

  it('loads the German and English texts and the JSON beside them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'smgw-mime-'));
    try {
      await writeFile(join(dir, 'notice.de.txt'), 'Guten Tag');
      await writeFile(join(dir, 'notice.en.txt'), 'Good day');
      await writeFile(join(dir, 'notice.json'), JSON.stringify({ subject: 'S', from: 'F', separator: '--', extra: 1 }));
      const templates = await loadBilingualTemplates<BilingualTemplates & { extra: number }>(dir, 'notice');
      assert.deepEqual(templates, {
        de: 'Guten Tag',
        en: 'Good day',
        subject: 'S',
        from: 'F',
        separator: '--',
        extra: 1,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a delivery report (DSN)', () => {
  const report = (original?: Parameters<typeof deliveryReportMail>[0]['original']) =>
    deliveryReportMail({
      headers: { ...headers, extra: [['X-SMGW-Related-Message-Id', 'orig']] },
      text: 'Text\r\n',
      status: {
        reportingMta: 'smgw.test',
        messageId: 'orig',
        arrivedAt: new Date('2026-03-04T12:00:00Z'),
        recipients: [{ recipient: 'a@x.example', status: '5.1.1', diagnostic: { type: 'smtp', text: '550 no' } }],
      },
      original,
    });
  const partTypes = async (mail: ReturnType<typeof deliveryReportMail>) => {
    const text = (await buffer(mail.createReadStream())).toString('latin1');
    return { text, types: [...text.matchAll(/^Content-Type: ([^;\r\n]+)/gm)].map((m) => m[1]) };
  };

  it('is multipart/report: the text, the delivery-status part, then the quoted header block', async () => {
    const { text, types } = await partTypes(report({ headers: 'Subject: s\r\n' }));
    assert.deepEqual(types, ['multipart/report', 'text/plain', 'message/delivery-status', 'text/rfc822-headers']);
    assert.match(text, /report-type=delivery-status/);
    assert.match(text, /^Auto-Submitted: auto-replied$/m);
    assert.match(text, /^Final-Recipient: rfc822; a@x\.example$/m);
    assert.match(text, /^Diagnostic-Code: smtp; 550 no$/m);
  });

  it('quotes the whole original only when given it, and nothing when given nothing', async () => {
    assert.deepEqual((await partTypes(report({ full: 'Subject: s\r\n\r\nbody\r\n' }))).types.slice(3), [
      'message/rfc822',
    ]);
    assert.deepEqual((await partTypes(report())).types.slice(3), []);
  });
});
