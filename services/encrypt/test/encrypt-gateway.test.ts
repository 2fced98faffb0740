// The whole gateway as real processes (ingest → encrypt → scan → deliver): inbound mail encrypted by openssl to an
// agency key arrives decrypted at the agencies' relay, and what was hidden inside the encryption is scanned.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertQueued, type TestGateway, waitFor } from '@smgw/testing';
import { getTrace } from '@smgw/trace';
import nodemailer from 'nodemailer';
import { opensslEncrypted, startDecryptingGateway, type TestCertificate, type TestPki } from './fixtures.ts';

describe('inbound decryption in the running gateway', () => {
  let gw: TestGateway;
  let pki: TestPki;
  let agency: TestCertificate;

  before(async () => {
    ({ gw, pki, agency } = await startDecryptingGateway('stelle@behoerde.example', 'Gateway-Test-CA'));
  });
  after(async () => {
    await gw?.close();
    await pki?.remove();
  });

  async function sendEncrypted(inner: Buffer, subject: string): Promise<string> {
    const encrypted = await opensslEncrypted(pki, agency, inner, {
      to: 'stelle@behoerde.example',
      subject,
      file: subject,
    });
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.inboundPort, ignoreTLS: true });
    const info = await transport.sendMail({
      envelope: { from: 'buerger@example.org', to: ['stelle@behoerde.example'] },
      raw: encrypted,
    });
    transport.close();
    return assertQueued(info.response);
  }

  it('delivers what openssl encrypted to an agency key decrypted, after scanning it', async () => {
    const inner = Buffer.from('Content-Type: text/plain; charset=utf-8\r\n\r\nMein Antrag auf Akteneinsicht.\r\n');
    const id = await sendEncrypted(inner, 'Antrag');
    const arrived = await waitFor('the decrypted message at the relay', () =>
      gw.relay.messages.find((m) => m.raw.includes(Buffer.from('Akteneinsicht'))),
    );
    const text = arrived.raw.toString('utf8');
    assert.match(text, /^X-SMGW-Decrypted: smime\r$/m);
    assert.match(text, /^Subject: Antrag\r$/m);
    const trace = await getTrace(gw.db.pool, id);
    const stages = trace?.events.map((e) => `${e.stage}:${e.event}`) ?? [];
    assert.ok(stages.includes('encrypt:message.decrypted'), stages.join(', '));
    assert.ok(stages.includes('scan:message.scanned'), stages.join(', '));
  });

  it('quarantines a virus that came encrypted: it is scanned after decryption', async () => {
    // EICAR, assembled at run time so that this file is not itself a "virus".
    const eicar = `X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-${'STANDARD-ANTIVIRUS-TEST-FILE'}!$H+H*`;
    const inner = Buffer.from(
      'Content-Type: application/octet-stream; name="rechnung.com"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
        `${Buffer.from(eicar).toString('base64')}\r\n`,
    );
    const id = await sendEncrypted(inner, 'Rechnung');
    await waitFor('the message quarantined', async () => {
      const trace = await getTrace(gw.db.pool, id);
      return trace?.recipients.every((r) => r.state === 'quarantined') && trace.recipients.length > 0;
    });
    assert.ok(!gw.relay.messages.some((m) => m.raw.includes(Buffer.from('EICAR'))));
  });
});
