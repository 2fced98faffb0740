// The whole gateway as real processes (ingest → encrypt → scan → deliver): a captured S/MIME message replayed to
// its agency recipient and to one the agencies' relay refuses at delivery. The bounce goes to the internet sender;
// it must not carry a byte of what decryption revealed (protected headers, body), nor say whether decryption worked.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertQueued, type SunkMessage, type TestGateway, waitFor } from '@smgw/testing';
import { getTrace } from '@smgw/trace';
import nodemailer from 'nodemailer';
import {
  opensslEncrypted,
  startDecryptingGateway,
  type TestCa,
  type TestCertificate,
  type TestPki,
} from './fixtures.ts';

const AGENCY = 'stelle@behoerde.example';
const HEADER_MARKER = 'GEHEIM-KOPF';
const BODY_MARKER = 'GEHEIM-RUMPF';
const RELAY_TEXT_MARKER = 'RELAY-ECHO';
const AES_BLOCK = 16;

/**
 * The protected entity: a header holding HEADER_MARKER, then the blank line, then a body holding BODY_MARKER. The
 * header block is padded so that the blank line's CRLF CRLF lies in one AES block (`blankLineBlock`), and the body
 * marker comes after the block behind it (which cutting the blank line's block garbles).
 */
function protectedEntity(): { entity: Buffer; blankLineBlock: number } {
  const fields = ['Content-Type: text/plain; charset=utf-8', `Subject: ${HEADER_MARKER} Akte 4711`];
  let head = `${fields.join('\r\n')}\r\nX-Padding: `;
  // "\r\n\r\n" (the end of X-Padding and the blank line) starts 4 bytes into a block.
  while ((head.length + 4) % AES_BLOCK !== 0) head += 'p';
  head += 'pppp';
  const blankLineBlock = Math.floor(head.length / AES_BLOCK);
  const body = `${'f'.repeat(2 * AES_BLOCK)}\r\n${BODY_MARKER}: Aktenzeichen 4711\r\n`;
  return { entity: Buffer.from(`${head}\r\n\r\n${body}`), blankLineBlock };
}

/** One DER element: tag byte, length, value (CMS from openssl has single-byte tags and definite lengths). */
function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n >>= 8) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/**
 * Re-encodes DER, handing the primitive element that ends the whole structure (EnvelopedData's encryptedContent,
 * [0] IMPLICIT OCTET STRING) to `change`; every enclosing length follows the new size.
 */
function rewriteLastPrimitive(der: Buffer, start: number, end: number, change: (value: Buffer) => Buffer): Buffer {
  const out: Buffer[] = [];
  let at = start;
  while (at < end) {
    const tag = der[at] as number;
    let length = der[at + 1] as number;
    let valueStart = at + 2;
    if (length === 0x80) throw new Error('indefinite length: not the DER this test expects');
    if (length > 0x80) {
      const count = length & 0x7f;
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + (der[at + 2 + i] as number);
      valueStart += count;
    }
    const valueEnd = valueStart + length;
    let value = der.subarray(valueStart, valueEnd);
    if (tag & 0x20) value = rewriteLastPrimitive(der, valueStart, valueEnd, change);
    else if (valueEnd === der.length) value = change(value);
    out.push(Buffer.from([tag]), derLength(value.length), value);
    at = valueEnd;
  }
  return Buffer.concat(out);
}

/**
 * The AES-CBC cut: the ciphertext block holding the blank line is removed. CBC has no integrity: the rest still
 * decrypts (the block after the cut to garbage, everything later as it was), only the blank line is gone, so a
 * reader of the header block reads on into the body.
 */
function cutCiphertextBlock(smime: Buffer, block: number): Buffer {
  const text = smime.toString('latin1');
  const split = text.indexOf('\r\n\r\n') >= 0 ? text.indexOf('\r\n\r\n') + 4 : text.indexOf('\n\n') + 2;
  const head = text.slice(0, split);
  const der = Buffer.from(text.slice(split).replace(/\s+/g, ''), 'base64');
  const cut = rewriteLastPrimitive(der, 0, der.length, (ciphertext) =>
    Buffer.concat([ciphertext.subarray(0, block * AES_BLOCK), ciphertext.subarray((block + 1) * AES_BLOCK)]),
  );
  const lines = cut.toString('base64').match(/.{1,64}/g) ?? [];
  return Buffer.from(`${head}${lines.join('\r\n')}\r\n`, 'latin1');
}

function containsAny(message: SunkMessage, markers: string[]): string[] {
  return markers.filter((marker) => message.raw.includes(Buffer.from(marker)));
}

describe('bounces about decrypted inbound mail, sent to the internet sender', () => {
  let gw: TestGateway;
  let pki: TestPki;
  let agency: TestCertificate;
  let stranger: TestCertificate;

  before(async () => {
    let ca: TestCa;
    ({ gw, pki, ca, agency } = await startDecryptingGateway(AGENCY, 'Bounce-Test-CA'));
    stranger = await pki.leaf(ca, 'fremd@behoerde.example', { key: 'rsa-2048' });
    // The relay knows `unbekannt-*` when ingest asks (null sender probe) but refuses it at delivery, echoing text.
    gw.relay.rejectRecipient = (rcpt, mailFrom) =>
      rcpt.startsWith('unbekannt') && mailFrom !== ''
        ? { code: 550, message: `5.1.1 <${rcpt}>: user unknown ${RELAY_TEXT_MARKER}` }
        : undefined;
  });
  after(async () => {
    await gw?.close();
    await pki?.remove();
  });

  function encryptFor(certificate: TestCertificate, entity: Buffer, file: string): Promise<Buffer> {
    return opensslEncrypted(pki, certificate, entity, { to: AGENCY, subject: 'Harmlose Huelle', file });
  }

  async function replay(message: Buffer, sender: string, unknown: string): Promise<string> {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.inboundPort, ignoreTLS: true });
    try {
      const info = await transport.sendMail({ envelope: { from: sender, to: [AGENCY, unknown] }, raw: message });
      return assertQueued(info.response);
    } finally {
      transport.close();
    }
  }

  async function bounceTo(sender: string): Promise<SunkMessage> {
    return waitFor(`the DSN at ${sender}`, () => gw.smarthost.messages.find((m) => m.rcptTo.includes(sender)));
  }

  function assertNothingRevealedOutside(dsn: SunkMessage): void {
    const leaks = gw.smarthost.messages.flatMap((m) =>
      containsAny(m, [HEADER_MARKER, BODY_MARKER, RELAY_TEXT_MARKER, 'X-SMGW-Decrypt']),
    );
    assert.deepEqual(leaks, [], 'nothing the gateway decrypted or added reaches the outside');
    const text = dsn.raw.toString('latin1');
    assert.match(text, /^Status: 5\.1\.1\r$/m, 'the status code is there');
    assert.doesNotMatch(text, /^Diagnostic-Code:/m, "not the relay's reply text");
    assert.match(text, /^Subject: Harmlose Huelle\r$/m, 'the header block quoted is the one received');
  }

  it('quotes only the message as received: no protected header, no decryption status, no relay reply', async () => {
    const { entity } = protectedEntity();
    const id = await replay(
      await encryptFor(agency, entity, 'replay'),
      'buerger1@example.org',
      'unbekannt-1@behoerde.example',
    );
    const decrypted = await waitFor('the decrypted copy at the relay', () =>
      gw.relay.messages.find((m) => m.mailFrom === 'buerger1@example.org' && m.rcptTo.includes(AGENCY)),
    );
    assert.ok(decrypted.raw.includes(Buffer.from(`Subject: ${HEADER_MARKER}`)), 'the agency got it decrypted');
    assert.ok(decrypted.raw.includes(Buffer.from(BODY_MARKER)));
    assertNothingRevealedOutside(await bounceTo('buerger1@example.org'));
    const trace = await getTrace(gw.db.pool, id);
    assert.equal(trace?.recipients.find((r) => r.address === 'unbekannt-1@behoerde.example')?.state, 'bounced');
  });

  it('quotes nothing of the body when the ciphertext block holding the blank line was cut (AES-CBC)', async () => {
    const { entity, blankLineBlock } = protectedEntity();
    const whole = await encryptFor(agency, entity, 'cbc-cut');
    await replay(cutCiphertextBlock(whole, blankLineBlock), 'buerger2@example.org', 'unbekannt-2@behoerde.example');
    const passedOn = await waitFor('the cut message at the relay', () =>
      gw.relay.messages.find((m) => m.mailFrom === 'buerger2@example.org' && m.rcptTo.includes(AGENCY)),
    );
    // The block after the cut decrypts to noise: content without integrity that was changed is no longer opened
    // (EFAIL, inbound-efail.test.ts), so the body never reaches the header block; the DSN stays as silent.
    const raw = passedOn.raw.toString('latin1');
    assert.match(raw, /^X-SMGW-Decryption: failed; reason=ENCRYPT_UNAUTHENTICATED_DAMAGED\r\n/m);
    assert.ok(!raw.includes(BODY_MARKER));
    assertNothingRevealedOutside(await bounceTo('buerger2@example.org'));
  });

  it('says nothing about a message that could not be decrypted (no decryption oracle)', async () => {
    const { entity } = protectedEntity();
    await replay(await encryptFor(stranger, entity, 'foreign'), 'buerger3@example.org', 'unbekannt-3@behoerde.example');
    const passedOn = await waitFor('the undecrypted copy at the relay', () =>
      gw.relay.messages.find((m) => m.mailFrom === 'buerger3@example.org' && m.rcptTo.includes(AGENCY)),
    );
    assert.match(passedOn.raw.toString('latin1'), /^X-SMGW-Decryption: failed/m, 'inside, the agency is told');
    assertNothingRevealedOutside(await bounceTo('buerger3@example.org'));
  });
});
