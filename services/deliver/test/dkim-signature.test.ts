// DKIM signing of the gateway's own mail: signatures mailauth's authenticate() verifies against the key published in
// the stub DNS, only for generated mail, only for a From in the signing domain.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { DkimSigning } from '@smgw/config';
import { DIRECTIONS, type Envelope } from '@smgw/envelope';
import { generatedMail } from '@smgw/mime';
import { createDkimTestKey, envelopeFixture, type StubDns, startStubDns, verifyDkim } from '@smgw/testing';
import { dkimSignatureFor, OVERSIGNED_HEADER_FIELDS } from '../src/dkim-signature.ts';

const NOW = new Date('2026-03-02T10:00:00Z');

async function generatedMessage(hostname: string): Promise<Buffer> {
  const mail = generatedMail('text/plain; charset=utf-8', {
    fromName: 'Mail Delivery System',
    hostname,
    to: 'absender@extern.example',
    subject: 'Unzustellbar / Undeliverable',
    date: NOW,
    messageId: 'dsn-1',
    autoSubmitted: 'auto-replied',
    inReplyTo: '<original-1@extern.example>',
  });
  mail.setContent('Die Nachricht konnte nicht zugestellt werden.\r\n');
  return mail.build();
}

function generated(): Envelope {
  return envelopeFixture({ direction: 'generated', mailFrom: '', recipients: ['absender@extern.example'] });
}

describe('DKIM signature of generated mail', () => {
  let dns: StubDns;
  const rsa = createDkimTestKey('rsa');
  const ed25519 = createDkimTestKey('ed25519');
  const signingWith = (key: typeof rsa, selector: string): DkimSigning => ({
    domain: 'gateway.example',
    selector,
    key: {
      file: 'test',
      algorithm: key === rsa ? 'rsa-sha256' : 'ed25519-sha256',
      pem: key.privateKeyPem,
    },
  });

  before(async () => {
    dns = await startStubDns({
      'rsa2026._domainkey.gateway.example': [{ type: 'TXT', text: rsa.record }],
      'ed2026._domainkey.gateway.example': [{ type: 'TXT', text: ed25519.record }],
    });
  });
  after(() => dns?.close());

  const dkimResults = (message: Buffer) => verifyDkim(message, dns);

  const cases: [string, typeof rsa, string, string][] = [
    ['RSA', rsa, 'rsa2026', 'rsa-sha256'],
    ['Ed25519', ed25519, 'ed2026', 'ed25519-sha256'],
  ];
  for (const [name, key, selector, algorithm] of cases) {
    it(`signs a generated message with an ${name} key so that it verifies as dkim=pass`, async () => {
      const message = await generatedMessage('gateway.example');
      const outcome = await dkimSignatureFor(
        generated(),
        signingWith(key, selector),
        () => Readable.from([message]),
        NOW,
      );
      assert.ok(outcome.signed);
      const field = outcome.field.toString('latin1');
      assert.match(field, /^DKIM-Signature: /);
      assert.match(field, /\r\n$/);
      const [result, ...more] = await dkimResults(Buffer.concat([outcome.field, message]));
      assert.equal(more.length, 0);
      assert.equal(result?.status.result, 'pass', JSON.stringify(result?.status));
      assert.equal(result?.signingDomain, 'gateway.example');
      assert.equal(result?.selector, selector);
      // The tags as signed (mailauth's result types do not name the algorithm and canonicalization it reports).
      const tags = new Map(
        field
          .replace(/^DKIM-Signature:|\s/g, '')
          .split(';')
          .map((tag) => [tag.slice(0, tag.indexOf('=')), tag.slice(tag.indexOf('=') + 1)]),
      );
      assert.equal(tags.get('a'), algorithm);
      assert.equal(tags.get('c'), 'relaxed/relaxed');
      // Each field present, then every over-signed name once more (those the message lacks once).
      const signed = tags.get('h')?.toLowerCase().split(':');
      const present = ['auto-submitted', 'content-type', 'content-transfer-encoding', 'date', 'from', 'in-reply-to']
        .concat(['message-id', 'mime-version', 'references', 'subject', 'to'])
        .sort();
      assert.deepEqual(signed?.slice(0, present.length).sort(), present);
      assert.deepEqual(
        signed?.slice(present.length),
        OVERSIGNED_HEADER_FIELDS.map((name) => name.toLowerCase()),
      );
    });

    it(`makes a copy with a field added above ours fail (${name}: over-signed, RFC 6376 §8.15)`, async () => {
      const message = await generatedMessage('gateway.example');
      const outcome = await dkimSignatureFor(
        generated(),
        signingWith(key, selector),
        () => Readable.from([message]),
        NOW,
      );
      assert.ok(outcome.signed);
      for (const added of [
        'Subject: Ihr Konto wird gesperrt: jetzt bestaetigen',
        'Reply-To: support@phish.example',
        'Cc: opfer@extern.example',
        'From: Amt <amt@gateway.example>',
        'Content-Transfer-Encoding: base64',
      ]) {
        const forged = Buffer.concat([outcome.field, Buffer.from(`${added}\r\n`), message]);
        const [result] = await dkimResults(forged);
        assert.notEqual(result?.status.result, 'pass', added);
      }
    });
  }

  it('signs mail from a subdomain of the signing domain', async () => {
    const message = await generatedMessage('mail.gateway.example');
    const outcome = await dkimSignatureFor(
      generated(),
      signingWith(rsa, 'rsa2026'),
      () => Readable.from([message]),
      NOW,
    );
    assert.ok(outcome.signed);
    const [result] = await dkimResults(Buffer.concat([outcome.field, message]));
    assert.equal(result?.status.result, 'pass');
  });

  it('sends mail whose From is in another domain unsigned, with a warning code', async () => {
    const message = await generatedMessage('notgateway.example');
    const outcome = await dkimSignatureFor(
      generated(),
      signingWith(rsa, 'rsa2026'),
      () => Readable.from([message]),
      NOW,
    );
    assert.equal(outcome.signed, false);
    assert.equal(!outcome.signed && outcome.code, 'DKIM_FROM_NOT_SIGNING_DOMAIN');
  });

  it('never signs mail the gateway did not generate, nor without a signing domain', async () => {
    const message = await generatedMessage('gateway.example');
    const neverRead = () => assert.fail('the message of an envelope that is not signed is not read');
    for (const direction of DIRECTIONS.filter((d) => d !== 'generated')) {
      const envelope = envelopeFixture({ direction });
      const outcome = await dkimSignatureFor(envelope, signingWith(rsa, 'rsa2026'), neverRead, NOW);
      assert.deepEqual(outcome, { signed: false, reason: 'not generated by the gateway' }, direction);
    }
    const outcome = await dkimSignatureFor(generated(), undefined, () => Readable.from([message]), NOW);
    assert.deepEqual(outcome, { signed: false, reason: 'no signing domain set' });
  });
});
