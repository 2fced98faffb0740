import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { checkOutboundBytes, checkOutboundGuard } from '../src/outbound-guard.ts';
import { NOT_PLAIN_AGENCY_LOOKALIKES, sampleEnvelope } from './fixtures.ts';

const domains = ['behoerde.example'];
const at = '2026-03-02T09:00:00.000Z';

describe('checkOutboundGuard', () => {
  for (const recipient of NOT_PLAIN_AGENCY_LOOKALIKES) {
    it(`refuses inbound mail to ${JSON.stringify(recipient)}: not one plain address, so not known to be inside`, () => {
      const refusal = checkOutboundGuard(
        sampleEnvelope({ direction: 'inbound', recipients: ['a@behoerde.example', recipient] }),
        domains,
      );
      assert.equal(refusal?.code, 'PLAINTEXT_TO_OUTSIDE');
    });
  }

  it('refuses outbound mail without a crypto verdict', () => {
    const refusal = checkOutboundGuard(
      sampleEnvelope({ direction: 'outbound', recipients: ['x@firma.example'] }),
      domains,
    );
    assert.equal(refusal?.code, 'OUTBOUND_NOT_ENCRYPTED');
  });

  it('refuses outbound mail whose crypto verdict is not a safe one', () => {
    const envelope = sampleEnvelope({
      direction: 'outbound',
      recipients: ['x@firma.example'],
      verdicts: { crypto: { status: 'plaintext', at } },
    });
    assert.equal(checkOutboundGuard(envelope, domains)?.code, 'OUTBOUND_NOT_ENCRYPTED');
  });

  it('lets outbound mail go that encrypt encrypted, or that the sender had encrypted already', () => {
    for (const status of ['encrypted', 'already-encrypted']) {
      const envelope = sampleEnvelope({
        direction: 'outbound',
        recipients: ['x@firma.example'],
        verdicts: { crypto: { status, at } },
      });
      assert.equal(checkOutboundGuard(envelope, domains), undefined, status);
    }
  });

  it('has outbound mail that encrypt gave up for its own header bounced, never sent', () => {
    for (const code of ['ENCRYPT_HEADER_INVALID', 'ENCRYPT_HEADER_TOO_LARGE']) {
      const envelope = sampleEnvelope({
        direction: 'outbound',
        recipients: ['x@firma.example'],
        verdicts: { crypto: { status: 'not-encryptable', code, at } },
      });
      const refusal = checkOutboundGuard(envelope, domains);
      assert.equal(refusal?.code, code);
      assert.deepEqual(refusal?.bounceAs && [refusal.bounceAs.kind, refusal.bounceAs.errorCode], ['refused', code]);
    }
  });

  it('parks outbound mail whose not-encryptable verdict gives no reason it knows', () => {
    for (const code of [undefined, 'ENCRYPT_FAILED', 'ENOTPLAINADDRESS']) {
      const envelope = sampleEnvelope({
        direction: 'outbound',
        recipients: ['x@firma.example'],
        verdicts: { crypto: { status: 'not-encryptable', code, at } },
      });
      const refusal = checkOutboundGuard(envelope, domains);
      assert.deepEqual([refusal?.code, refusal?.bounceAs], ['OUTBOUND_NOT_ENCRYPTED', undefined], String(code));
    }
  });

  it('never lets mail meant for the portal go outside', () => {
    const envelope = sampleEnvelope({
      direction: 'outbound',
      recipients: ['x@firma.example'],
      verdicts: { crypto: { status: 'portal', at } },
    });
    assert.equal(checkOutboundGuard(envelope, domains)?.code, 'OUTBOUND_NOT_ENCRYPTED');
  });

  it('refuses inbound, internal and portal mail addressed outside the agency domains', () => {
    for (const direction of ['inbound', 'internal', 'portal'] as const) {
      const envelope = sampleEnvelope({ direction, recipients: ['a@behoerde.example', 'x@firma.example'] });
      assert.equal(checkOutboundGuard(envelope, domains)?.code, 'PLAINTEXT_TO_OUTSIDE', direction);
    }
  });

  it('lets inbound mail for the agency domains go', () => {
    assert.equal(checkOutboundGuard(sampleEnvelope({ recipients: ['a@behoerde.example'] }), domains), undefined);
  });

  it("lets the gateway's own mail (DSNs, notices) go anywhere", () => {
    const envelope = sampleEnvelope({ direction: 'generated', mailFrom: '', recipients: ['x@firma.example'] });
    assert.equal(checkOutboundGuard(envelope, domains), undefined);
  });
});

describe('checkOutboundBytes', () => {
  const outbound = sampleEnvelope({
    direction: 'outbound',
    recipients: ['x@firma.example'],
    verdicts: { crypto: { status: 'already-encrypted', at } },
  });
  const bytes = (text: string) => () => Readable.from([Buffer.from(text)]);

  it('refuses outbound mail whose bytes only claim to be encrypted, whatever its verdict says', async () => {
    const fake =
      'Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
      'MIAGCSqGSIb3DQEHA6CAMIACAQAxggE=\r\nDer Bescheid im Klartext.\r\n';
    const refusal = await checkOutboundBytes(outbound, bytes(fake));
    assert.equal(refusal?.code, 'OUTBOUND_NOT_ENCRYPTED');
    assert.match(refusal?.reason ?? '', /not wholly encrypted/);
  });

  it('refuses plain outbound mail', async () => {
    assert.equal(
      (await checkOutboundBytes(outbound, bytes('Subject: x\r\n\r\nplain\r\n')))?.code,
      'OUTBOUND_NOT_ENCRYPTED',
    );
  });

  it('does not read mail that stays inside', async () => {
    const inbound = sampleEnvelope({ recipients: ['a@behoerde.example'] });
    const open = () => assert.fail('must not be read');
    assert.equal(await checkOutboundBytes(inbound, open), undefined);
  });
});
