// deliver signs the gateway's own mail with SMGW_DKIM_*: a DSN reaches the sink with a DKIM-Signature that verifies
// against the key in the stub DNS; mail it only passes on (inbound, outbound) leaves without one.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createDkimTestKey, verifyDkim } from '@smgw/testing';
import { encryptedSampleMessage, sampleMessage } from './fixtures.ts';
import { dsnsOf, receivedFor, startWorld, submit, type World, waitFor, waitForState } from './harness.ts';

describe('deliver with DKIM signing', () => {
  const key = createDkimTestKey();
  const keyDir = mkdtempSync(join(tmpdir(), 'smgw-deliver-dkim-'));
  const keyFile = join(keyDir, 'dkim.pem');
  let world: World;

  before(async () => {
    writeFileSync(keyFile, key.privateKeyPem, { mode: 0o600 });
    // The test gateway's SMGW_HOSTNAME is smgw.test: DSNs come from MAILER-DAEMON@smgw.test.
    world = await startWorld({
      SMGW_DKIM_DOMAIN: 'smgw.test',
      SMGW_DKIM_SELECTOR: 'dsn2026',
      SMGW_DKIM_KEY_FILE: keyFile,
    });
    world.gateway.dns.set('dsn2026._domainkey.smgw.test', [{ type: 'TXT', text: key.record }]);
    world.relay.rejectRecipient = (rcpt) =>
      rcpt.startsWith('perm') ? { code: 550, message: '5.1.1 no such user here' } : undefined;
  });

  after(async () => {
    await world?.close();
    rmSync(keyDir, { recursive: true, force: true });
  });

  it('delivers a DSN with a DKIM-Signature that verifies, and the inbound original without one', async () => {
    const message = sampleMessage('Teils abgelehnt');
    const envelope = await submit(world, message, {
      mailFrom: 'absender-k@extern.example',
      recipients: ['perm-k@behoerde.example', 'eingang-k@behoerde.example'],
    });
    await waitForState(world, envelope.id, 'perm-k@behoerde.example', 'bounced');
    await waitForState(world, envelope.id, 'eingang-k@behoerde.example', 'delivered');
    const [original] = receivedFor(world.relay, 'eingang-k@behoerde.example');
    assert.ok(original?.raw.equals(message), 'inbound mail is passed on byte for byte, unsigned');

    const [dsn] = await waitFor('the DSN at the sender', () => {
      const got = receivedFor(world.smarthost, 'absender-k@extern.example');
      return got.length > 0 ? got : undefined;
    });
    const raw = dsn?.raw ?? Buffer.alloc(0);
    assert.match(raw.toString('latin1'), /^DKIM-Signature: /);
    const [result, ...more] = await verifyDkim(raw, world.gateway.dns);
    assert.equal(more.length, 0);
    assert.equal(result?.status.result, 'pass', JSON.stringify(result?.status));
    assert.equal(result?.signingDomain, 'smgw.test');
    assert.equal(result?.selector, 'dsn2026');
    const [recorded] = await dsnsOf(world, envelope.id);
    await waitForState(world, recorded?.id ?? '', 'absender-k@extern.example', 'delivered');
  });

  it('sends outbound mail without a DKIM-Signature', async () => {
    const message = encryptedSampleMessage('verschlüsselt');
    const envelope = await submit(world, message, {
      direction: 'outbound',
      mailFrom: 'sb-k@behoerde.example',
      recipients: ['buerger-k@firma.example'],
      client: { listener: 'submission', ip: '10.0.0.7', helo: 'mail.behoerde.example', tls: true },
      verdicts: { crypto: { status: 'encrypted', at: new Date().toISOString() } },
    });
    await waitForState(world, envelope.id, 'buerger-k@firma.example', 'delivered');
    const [received] = receivedFor(world.smarthost, 'buerger-k@firma.example');
    assert.ok(received?.raw.equals(message), 'outbound mail is passed on byte for byte, unsigned');
  });
});
