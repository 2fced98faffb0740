// SPF, DKIM and DMARC end to end: the gateway as real processes (ingest → encrypt → scan → deliver), a stub DNS that
// publishes the senders' records, and the agency relay as an SMTP sink. What the agency receives carries one
// Authentication-Results field in our name, ours; a forged p=reject sender never gets in; submission is untouched.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertQueued, createDkimTestKey, startTestGateway, type TestGateway, waitFor } from '@smgw/testing';
import nodemailer from 'nodemailer';

const dkimKey = createDkimTestKey();

/** The unfolded header fields of a message, in order. */
function fields(raw: Buffer): string[] {
  const head = raw.toString('latin1').split('\r\n\r\n')[0] ?? '';
  return head.replace(/\r\n[ \t]+/g, ' ').split('\r\n');
}

describe('mail authentication, end to end', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startTestGateway({ services: ['ingest', 'encrypt', 'scan', 'deliver'] });
    gw.dns.set('buerger.example', [{ type: 'TXT', text: 'v=spf1 ip4:127.0.0.1 -all' }]);
    gw.dns.set('sel._domainkey.buerger.example', [{ type: 'TXT', text: dkimKey.record }]);
    gw.dns.set('_dmarc.buerger.example', [{ type: 'TXT', text: 'v=DMARC1; p=reject' }]);
    gw.dns.set('bank.example', [{ type: 'TXT', text: 'v=spf1 -all' }]);
    gw.dns.set('_dmarc.bank.example', [{ type: 'TXT', text: 'v=DMARC1; p=reject' }]);
  });
  after(async () => {
    await gw?.close();
  });

  async function sendInbound(from: string, raw: string) {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.inboundPort, ignoreTLS: true });
    try {
      return await transport.sendMail({ envelope: { from, to: ['amt@behoerde.example'] }, raw });
    } finally {
      transport.close();
    }
  }

  it('delivers a signed message from a permitted address with our Authentication-Results, and only ours', async () => {
    const message = await dkimKey.sign(
      [
        'From: Bürgerin <post@buerger.example>',
        'To: amt@behoerde.example',
        'Subject: Antrag',
        'Message-ID: <auth-pass@buerger.example>',
        '',
        'Sehr geehrte Damen und Herren,',
        '',
      ].join('\r\n'),
      'buerger.example',
    );
    // The sender's own claim in our name, outside the signed fields: removed before anything reads the message.
    const forged = `Authentication-Results: smgw.test; dmarc=pass header.from=buerger.example\r\n${message}`;
    assertQueued((await sendInbound('post@buerger.example', forged)).response);

    const arrived = await waitFor('the message at the agency relay', () =>
      gw.relay.messages.find((m) => m.raw.includes('auth-pass@buerger.example')),
    );
    const ours = fields(arrived.raw).filter((f) => /^Authentication-Results:\s*smgw\.test\s*;/i.test(f));
    assert.equal(ours.length, 1, ours.join('\n'));
    assert.match(ours[0] ?? '', /; spf=pass [^;]*smtp\.mailfrom=post@buerger\.example/);
    assert.match(ours[0] ?? '', /; dkim=pass [^;]*header\.i=@buerger\.example header\.s=sel/);
    assert.match(ours[0] ?? '', /; dmarc=pass [^;]*header\.from=buerger\.example/);
    assert.ok(fields(arrived.raw)[0]?.startsWith('Authentication-Results: smgw.test;'), 'ours is on top');
  });

  it('refuses a forged sender of a p=reject domain with 550 5.7.1; nothing reaches the agency', async () => {
    const raw = [
      'From: Bank <service@bank.example>',
      'To: amt@behoerde.example',
      'Subject: Ihr Konto',
      'Message-ID: <auth-forged@bank.example>',
      '',
      'Bitte bestätigen Sie Ihre Daten.',
      '',
    ].join('\r\n');
    await assert.rejects(
      sendInbound('service@bank.example', raw),
      (err: { responseCode?: number; response?: string }) => {
        assert.equal(err.responseCode, 550);
        assert.match(err.response ?? '', /^550 5\.7\.1 /);
        return true;
      },
    );
    const { rows } = await gw.db.pool.query('select count(*)::int as n from messages where mail_from = $1', [
      'service@bank.example',
    ]);
    assert.equal(rows[0].n, 0);
    // A message sent after it arrives; the refused one never does.
    const later = 'From: post@buerger.example\r\nMessage-ID: <auth-later@buerger.example>\r\n\r\nlater\r\n';
    assertQueued((await sendInbound('post@buerger.example', later)).response);
    await waitFor('the later message at the relay', () =>
      gw.relay.messages.find((m) => m.raw.includes('auth-later@buerger.example')),
    );
    assert.equal(
      gw.relay.messages.find((m) => m.raw.includes('auth-forged@bank.example')),
      undefined,
    );
  });

  it('adds no Authentication-Results to mail the agencies submit', async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.submissionPort, ignoreTLS: true });
    const info = await transport.sendMail({
      envelope: { from: 'amt@behoerde.example', to: ['kollegin@behoerde.example'] },
      raw: 'From: amt@behoerde.example\r\nTo: kollegin@behoerde.example\r\nMessage-ID: <auth-internal@behoerde.example>\r\n\r\nintern\r\n',
    });
    transport.close();
    assertQueued(info.response);
    const arrived = await waitFor('the internal message at the relay', () =>
      gw.relay.messages.find((m) => m.raw.includes('auth-internal@behoerde.example')),
    );
    assert.ok(!fields(arrived.raw).some((f) => /^Authentication-Results:/i.test(f)));
  });
});
