import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { readHeaderBlock } from '@smgw/mime';
import { simpleParser } from 'mailparser';
import {
  buildDsn,
  type DsnInput,
  dsnDisclosure,
  dsnParametersFor,
  dsnWanted,
  type FailedRecipient,
  loadDsnTemplates,
  mayReturnFullContent,
  statusOnlyFailure,
} from '../src/dsn.ts';
import { sampleEnvelope, sampleMessage } from './fixtures.ts';

const templates = await loadDsnTemplates();
const lastAttemptAt = new Date('2026-03-04T12:00:00.000Z');

function failure(overrides: Partial<FailedRecipient> = {}): FailedRecipient {
  return {
    recipient: 'eingang@behoerde.example',
    reason: 'rejected',
    status: '5.1.1',
    remoteMta: 'relay.behoerde.example',
    reply: '550 5.1.1 <eingang@behoerde.example>: no such user',
    lastAttemptAt,
    ...overrides,
  };
}

async function build(overrides: Partial<DsnInput> = {}) {
  const original = sampleEnvelope({ mailFrom: 'absender@extern.example' });
  const message = sampleMessage();
  const input: DsnInput = {
    original,
    failures: [failure()],
    reportingMta: 'smgw.behoerde.example',
    dsnMessageId: '01JNQ0000000000000000000AB',
    now: new Date('2026-03-04T12:00:01.000Z'),
    originalHeaders: await readHeaderBlock(Readable.from([message])),
    templates,
    ...overrides,
  };
  const raw = await buffer(buildDsn(input).createReadStream());
  return { raw, parsed: await simpleParser(raw), input };
}

interface MimePart {
  contentType: string;
  content: Buffer;
}

/**
 * The top-level parts of a multipart message, undecoded. mailparser folds message/delivery-status into `text`,
 * so the report's structure is checked on the raw parts (the parts of a DSN are not encoded, except text/*).
 */
function topLevelParts(raw: Buffer): MimePart[] {
  const text = raw.toString('latin1');
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(text)?.[1];
  assert.ok(boundary, 'no boundary');
  const sections = text.split(`--${boundary}`).slice(1, -1);
  return sections.map((section) => {
    const body = section.replace(/^\r\n/, '');
    const end = body.indexOf('\r\n\r\n');
    const head = body.slice(0, end);
    return {
      contentType: /^content-type:\s*([^;\r\n]+)/im.exec(head)?.[1]?.toLowerCase() ?? 'text/plain',
      content: Buffer.from(body.slice(end + 4).replace(/\r\n$/, ''), 'latin1'),
    };
  });
}

function part(raw: Buffer, contentType: string): MimePart {
  const parts = topLevelParts(raw);
  const found = parts.find((a) => a.contentType === contentType);
  assert.ok(found, `no ${contentType} part in ${parts.map((a) => a.contentType).join(', ')}`);
  return found;
}

describe('buildDsn', () => {
  it('is a multipart/report of type delivery-status addressed to the original sender', async () => {
    const { parsed } = await build();
    const contentType = parsed.headers.get('content-type') as { value: string; params: Record<string, string> };
    assert.equal(contentType.value, 'multipart/report');
    assert.equal(contentType.params['report-type'], 'delivery-status');
    assert.equal(parsed.to && !Array.isArray(parsed.to) && parsed.to.value[0]?.address, 'absender@extern.example');
    assert.equal(parsed.from?.value[0]?.address, 'MAILER-DAEMON@smgw.behoerde.example');
    assert.equal(parsed.messageId, '<01JNQ0000000000000000000AB@smgw.behoerde.example>');
    assert.equal(parsed.inReplyTo, '<original-1@behoerde.example>');
    assert.equal(parsed.headers.get('auto-submitted'), 'auto-replied');
  });

  it('has the text first, then the delivery status, then the headers (RFC 6522)', async () => {
    const { raw } = await build();
    assert.deepEqual(
      topLevelParts(raw).map((p) => p.contentType),
      ['text/plain', 'message/delivery-status', 'text/rfc822-headers'],
    );
  });

  it('explains the failure in German and in English', async () => {
    const { parsed } = await build();
    const text = parsed.text ?? '';
    assert.match(text, /konnte an die folgenden Empfänger nicht\s+zugestellt werden/);
    assert.match(text, /could not be delivered to the following\s+recipients/);
    assert.match(text, /<eingang@behoerde\.example>/);
    assert.match(text, /dauerhaft abgelehnt/);
    assert.match(text, /permanently rejected/);
    assert.match(text, /550 5\.1\.1/);
  });

  it('carries the RFC 3464 fields per message and per recipient', async () => {
    const original = sampleEnvelope({
      mailFrom: 'absender@extern.example',
      dsn: { envid: 'ENV-4711', orcpt: { 'eingang@behoerde.example': 'rfc822;Eingang@behoerde.example' } },
    });
    const { raw } = await build({ original });
    const status = part(raw, 'message/delivery-status').content.toString();
    const [perMessage, perRecipient] = status.split(/\r?\n\r?\n/);
    assert.match(perMessage ?? '', /^Reporting-MTA: dns; smgw\.behoerde\.example$/m);
    assert.match(perMessage ?? '', /^Original-Envelope-Id: ENV-4711$/m);
    assert.match(perMessage ?? '', /^Arrival-Date: Mon, 02 Mar 2026 09:00:00 \+0000$/m);
    assert.match(perRecipient ?? '', /^Final-Recipient: rfc822; eingang@behoerde\.example$/m);
    assert.match(perRecipient ?? '', /^Original-Recipient: rfc822; Eingang@behoerde\.example$/m);
    assert.match(perRecipient ?? '', /^Action: failed$/m);
    assert.match(perRecipient ?? '', /^Status: 5\.1\.1$/m);
    assert.match(perRecipient ?? '', /^Remote-MTA: dns; relay\.behoerde\.example$/m);
    assert.match(perRecipient ?? '', /^Diagnostic-Code: smtp; 550 5\.1\.1 <eingang@behoerde\.example>: no such user$/m);
    assert.match(perRecipient ?? '', /^Last-Attempt-Date: Wed, 04 Mar 2026 12:00:00 \+0000$/m);
  });

  it("echoes an ENVID of at most RFC 3461's 100 characters, never a stranger's longer text (backscatter of its choosing)", async () => {
    const spam = `Buy cheap pills at https://spam.example ${'now '.repeat(200)}`;
    const long = sampleEnvelope({ mailFrom: 'opfer@anderswo.example', dsn: { envid: spam } });
    const longStatus = part((await build({ original: long })).raw, 'message/delivery-status').content.toString();
    assert.doesNotMatch(longStatus, /Original-Envelope-Id|spam\.example/);
    const hundred = 'E'.repeat(100);
    const fits = sampleEnvelope({ mailFrom: 'opfer@anderswo.example', dsn: { envid: hundred } });
    const fitsStatus = part((await build({ original: fits })).raw, 'message/delivery-status').content.toString();
    assert.match(fitsStatus, new RegExp(`^Original-Envelope-Id: ${hundred}$`, 'm'));
  });

  it("echoes an ORCPT whose address is at most RFC 3461's 500 characters, never a stranger's longer text", async () => {
    const recipient = 'eingang@behoerde.example';
    const statusFor = async (orcpt: string) => {
      const original = sampleEnvelope({ mailFrom: 'opfer@anderswo.example', dsn: { orcpt: { [recipient]: orcpt } } });
      return part((await build({ original })).raw, 'message/delivery-status').content.toString();
    };
    const spam = `Buy cheap pills at https://spam.example ${'now '.repeat(200)}`;
    assert.doesNotMatch(await statusFor(`rfc822;${spam}`), /Original-Recipient|spam\.example/);
    // The address type is an atom of a few letters (rfc822, utf-8): not a place for text either.
    assert.doesNotMatch(
      await statusFor(`Buy-cheap-pills-at-spam-example-now-now-now;${recipient}`),
      /Original-Recipient|spam-example/,
    );
    const fivehundred = `${'e'.repeat(483)}@behoerde.example`;
    assert.equal(fivehundred.length, 500);
    assert.match(
      await statusFor(`rfc822;${fivehundred}`),
      new RegExp(`^Original-Recipient: rfc822; ${fivehundred}$`, 'm'),
    );
  });

  it('has one block per failed recipient and says when the retry period expired', async () => {
    const { parsed, raw } = await build({
      failures: [
        failure(),
        failure({
          recipient: 'zweite@behoerde.example',
          reason: 'expired',
          status: '4.4.1',
          reply: undefined,
          error: 'connect ECONNREFUSED 127.0.0.1:2526',
        }),
      ],
    });
    const status = part(raw, 'message/delivery-status').content.toString();
    assert.equal(status.match(/^Final-Recipient:/gm)?.length, 2);
    assert.match(status, /^Status: 4\.4\.1$/m);
    assert.match(status, /^Diagnostic-Code: X-SMGW; connect ECONNREFUSED 127\.0\.0\.1:2526$/m);
    assert.match(parsed.text ?? '', /retry period expired/);
    assert.match(parsed.text ?? '', /Frist abgelaufen/);
  });

  it("returns only the original's headers by default, never its body", async () => {
    const { parsed, raw } = await build();
    const headers = part(raw, 'text/rfc822-headers').content.toString();
    assert.match(headers, /^Subject: Bescheid 2026\/17$/m);
    assert.match(headers, /^Message-ID: <original-1@behoerde\.example>$/m);
    assert.equal(
      parsed.attachments.some((a) => a.contentType === 'message/rfc822'),
      false,
    );
    assert.equal(raw.includes('Sehr geehrte Damen und Herren'), false);
  });

  it('returns the whole original when it is given (RET=FULL inside the agencies)', async () => {
    const { raw } = await build({ fullOriginal: Readable.from([sampleMessage()]) });
    assert.match(raw.toString(), /Content-Type: message\/rfc822/);
    assert.ok(raw.includes(sampleMessage()), 'the original is carried byte for byte');
  });

  it('keeps a hostile reply from adding fields to the report', async () => {
    const { raw } = await build({ failures: [failure({ reply: '550 no\r\nAction: delivered\r\nStatus: 2.0.0' })] });
    const status = part(raw, 'message/delivery-status').content.toString();
    assert.equal(status.match(/^Action:/gm)?.length, 1);
    assert.match(status, /^Diagnostic-Code: smtp; 550 no Action: delivered Status: 2\.0\.0$/m);
  });

  it('quotes nothing of the message when it is given no header block', async () => {
    const { raw, parsed } = await build({ originalHeaders: undefined });
    assert.deepEqual(
      topLevelParts(raw).map((p) => p.contentType.split(';')[0]),
      ['text/plain', 'message/delivery-status'],
    );
    assert.equal(parsed.headers.get('in-reply-to'), undefined);
  });

  it('says only the status per recipient for a status-only failure, not the reply or the host', async () => {
    const { raw } = await build({ failures: [statusOnlyFailure(failure({ reply: '550 5.1.1 Betreff: Geheim' }))] });
    const status = part(raw, 'message/delivery-status').content.toString();
    assert.match(status, /^Status: 5\.1\.1$/m);
    assert.doesNotMatch(status, /Diagnostic-Code|Remote-MTA/);
    assert.equal(raw.includes('Geheim'), false);
    assert.equal(raw.includes('relay.behoerde.example'), false);
  });

  it('refuses to build a DSN for a null-sender message', async () => {
    await assert.rejects(build({ original: sampleEnvelope({ mailFrom: '' }) }), /null-sender/);
  });
});

describe('dsnWanted', () => {
  it('wants a failure DSN by default', () => {
    assert.equal(dsnWanted(sampleEnvelope(), 'eingang@behoerde.example'), true);
  });

  it('never bounces a bounce', () => {
    assert.equal(dsnWanted(sampleEnvelope({ mailFrom: '' }), 'eingang@behoerde.example'), false);
  });

  it('honours NOTIFY=NEVER and NOTIFY without FAILURE, per recipient', () => {
    const envelope = sampleEnvelope({
      recipients: ['a@behoerde.example', 'b@behoerde.example', 'c@behoerde.example'],
      dsn: {
        notify: {
          'a@behoerde.example': ['NEVER'],
          'b@behoerde.example': ['SUCCESS', 'DELAY'],
          'c@behoerde.example': ['FAILURE'],
        },
      },
    });
    assert.equal(dsnWanted(envelope, 'a@behoerde.example'), false);
    assert.equal(dsnWanted(envelope, 'b@behoerde.example'), false);
    assert.equal(dsnWanted(envelope, 'c@behoerde.example'), true);
  });
});

describe('mayReturnFullContent', () => {
  const domains = ['behoerde.example'];
  it('allows RET=FULL for internal mail from an agency sender', () => {
    const envelope = sampleEnvelope({ direction: 'internal', mailFrom: 'sb@behoerde.example', dsn: { ret: 'FULL' } });
    assert.equal(mayReturnFullContent(envelope, domains), true);
  });

  it('never carries content to a sender outside the agency domains', () => {
    const envelope = sampleEnvelope({ direction: 'inbound', mailFrom: 'x@extern.example', dsn: { ret: 'FULL' } });
    assert.equal(mayReturnFullContent(envelope, domains), false);
  });

  it('never returns content for inbound, outbound or generated mail', () => {
    for (const direction of ['inbound', 'outbound', 'generated', 'portal'] as const) {
      const envelope = sampleEnvelope({ direction, mailFrom: 'sb@behoerde.example', dsn: { ret: 'FULL' } });
      assert.equal(mayReturnFullContent(envelope, domains), false, direction);
    }
  });

  it('returns headers only without RET=FULL', () => {
    const envelope = sampleEnvelope({ direction: 'internal', mailFrom: 'sb@behoerde.example' });
    assert.equal(mayReturnFullContent(envelope, domains), false);
  });
});

describe('dsnDisclosure', () => {
  const domains = ['behoerde.example'];
  const received = { ref: 'r'.repeat(64), sha256: 'r'.repeat(64), size: 900 };
  const decrypted = { ref: 'd'.repeat(64), sha256: 'd'.repeat(64), size: 700 };
  const at = '2026-03-02T09:00:01.000Z';

  it('quotes the message as received, status codes only, to an outside sender of a decrypted message', () => {
    const envelope = sampleEnvelope({
      mailFrom: 'x@extern.example',
      blob: decrypted,
      receivedBlob: received,
      verdicts: { crypto: { status: 'decrypted', at } },
      dsn: { ret: 'FULL' },
    });
    assert.deepEqual(dsnDisclosure(envelope, domains), {
      quote: received,
      fullContent: false,
      statusOnly: true,
      identifyingOnly: true,
    });
  });

  it('keeps status codes only for a message that could not be decrypted (no decryption oracle)', () => {
    const envelope = sampleEnvelope({
      mailFrom: 'x@extern.example',
      blob: decrypted,
      receivedBlob: received,
      verdicts: { crypto: { status: 'not-decrypted', at } },
    });
    assert.deepEqual(dsnDisclosure(envelope, domains), {
      quote: received,
      fullContent: false,
      statusOnly: true,
      identifyingOnly: true,
    });
  });

  it('quotes nothing of a decrypted message whose envelope does not know what was received', () => {
    const envelope = sampleEnvelope({
      mailFrom: 'x@extern.example',
      blob: decrypted,
      verdicts: { crypto: { status: 'decrypted', at } },
    });
    assert.deepEqual(dsnDisclosure(envelope, domains), {
      quote: undefined,
      fullContent: false,
      statusOnly: true,
      identifyingOnly: true,
    });
  });

  it('quotes an unchanged message to an outside sender, status codes only (the relay is a host of the closed network)', () => {
    const envelope = sampleEnvelope({ mailFrom: 'x@extern.example', blob: received });
    assert.deepEqual(dsnDisclosure(envelope, domains), {
      quote: received,
      fullContent: false,
      statusOnly: true,
      identifyingOnly: true,
    });
  });

  it('quotes plain inbound mail as received, status codes only, whoever judged it plain: encrypt, or ingest that sent it past encrypt', () => {
    for (const plain of [{ status: 'plain', at }, { status: 'plain', at, by: 'ingest' }, undefined]) {
      const envelope = sampleEnvelope({
        direction: 'inbound',
        mailFrom: 'x@extern.example',
        blob: received,
        verdicts: plain ? { crypto: plain } : {},
      });
      assert.deepEqual(dsnDisclosure(envelope, domains), {
        quote: received,
        fullContent: false,
        statusOnly: true,
        identifyingOnly: true,
      });
    }
  });

  it('treats an agency sender of mail from the internet (an MX exception) as outside: nothing decrypted goes back', () => {
    const envelope = sampleEnvelope({
      direction: 'inbound',
      mailFrom: 'newsletter@behoerde.example',
      blob: decrypted,
      receivedBlob: received,
      verdicts: { crypto: { status: 'decrypted', at } },
      dsn: { ret: 'FULL' },
    });
    assert.deepEqual(dsnDisclosure(envelope, domains), {
      quote: received,
      fullContent: false,
      statusOnly: true,
      identifyingOnly: true,
    });
  });

  it('quotes the message as sent on to an agency sender, whole for RET=FULL inside the agencies', () => {
    const envelope = sampleEnvelope({
      direction: 'internal',
      mailFrom: 'sb@behoerde.example',
      blob: decrypted,
      receivedBlob: received,
      dsn: { ret: 'FULL' },
    });
    assert.deepEqual(dsnDisclosure(envelope, domains), {
      quote: decrypted,
      fullContent: true,
      statusOnly: false,
      identifyingOnly: false,
    });
  });
});

describe('dsnParametersFor', () => {
  const domains = ['behoerde.example'];
  const envelope = sampleEnvelope({
    dsn: {
      ret: 'HDRS',
      envid: 'E1',
      notify: { 'a@x.example': ['FAILURE', 'DELAY'], 'b@x.example': ['DELAY', 'FAILURE'], 'c@x.example': ['NEVER'] },
      orcpt: { 'a@x.example': 'rfc822;a@x.example' },
    },
  });

  it('passes RET and ENVID on, and NOTIFY when the recipients agree on it', () => {
    assert.deepEqual(dsnParametersFor(envelope, ['a@x.example', 'b@x.example'], domains), {
      ret: 'HDRS',
      envid: 'E1',
      notify: ['FAILURE', 'DELAY'],
    });
  });

  it('leaves NOTIFY out when the recipients of one transaction differ', () => {
    assert.deepEqual(dsnParametersFor(envelope, ['a@x.example', 'c@x.example'], domains), { ret: 'HDRS', envid: 'E1' });
  });

  it('passes ORCPT only for a single recipient', () => {
    assert.equal(dsnParametersFor(envelope, ['a@x.example'], domains)?.orcpt, 'rfc822;a@x.example');
  });

  it('asks the next hop for no notices at all about a message it decrypted for a sender outside the agencies', () => {
    // Resent with RET=FULL NOTIFY=SUCCESS, a captured ciphertext would come back to its sender opened in the relay's
    // notice (or in a later bounce, which quotes the message by default).
    const received = { ref: 'r'.repeat(64), sha256: 'r'.repeat(64), size: 900 };
    const decrypted = { ref: 'd'.repeat(64), sha256: 'd'.repeat(64), size: 700 };
    const ask = {
      ret: 'FULL' as const,
      envid: 'E1',
      notify: { 'amt@behoerde.example': ['SUCCESS' as const, 'FAILURE' as const] },
    };
    for (const status of ['decrypted', 'not-decrypted']) {
      const opened = sampleEnvelope({
        direction: 'inbound',
        mailFrom: 'x@extern.example',
        blob: decrypted,
        receivedBlob: received,
        verdicts: { crypto: { status, at: '2026-12-06T00:00:00.000Z' } },
        dsn: ask,
      });
      assert.deepEqual(dsnParametersFor(opened, ['amt@behoerde.example'], domains), { notify: ['NEVER'] });
      // Without any request too: the next hop's default is a bounce that quotes the message.
      assert.deepEqual(dsnParametersFor({ ...opened, dsn: undefined }, ['amt@behoerde.example'], domains), {
        notify: ['NEVER'],
      });
    }
    // Unchanged mail from outside, and the agencies' own mail, keep what their senders asked for.
    const plain = sampleEnvelope({ direction: 'inbound', mailFrom: 'x@extern.example', blob: received, dsn: ask });
    assert.deepEqual(dsnParametersFor(plain, ['amt@behoerde.example'], domains)?.notify, ['SUCCESS', 'FAILURE']);
    const agency = sampleEnvelope({
      direction: 'internal',
      mailFrom: 'sb@behoerde.example',
      blob: decrypted,
      receivedBlob: received,
      verdicts: { crypto: { status: 'decrypted', at: '2026-12-06T00:00:00.000Z' } },
      dsn: ask,
    });
    assert.equal(dsnParametersFor(agency, ['amt@behoerde.example'], domains)?.ret, 'FULL');
  });

  it("gives the outside RET and NOTIFY only: ENVID and ORCPT are the agency client's words in clear", () => {
    const outbound = { ...envelope, direction: 'outbound' as const, mailFrom: 'sb@behoerde.example' };
    assert.deepEqual(dsnParametersFor(outbound, ['a@x.example'], domains), {
      ret: 'HDRS',
      notify: ['FAILURE', 'DELAY'],
    });
  });

  it('passes nothing when the sender asked for nothing', () => {
    assert.equal(dsnParametersFor(sampleEnvelope(), ['a@x.example'], domains), undefined);
  });
});
