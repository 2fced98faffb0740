// scan as a service with the real broker: scan and deliver as processes (the shared test gateway), the agencies'
// relay as an SMTP sink. Notices reach the sender through deliver; clean mail arrives byte for byte; clamd going away
// makes envelopes wait, never pass.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { connectMq, type Mq } from '@smgw/mq';
import { type ServiceProcess, startTestGateway, type TestGateway, waitFor } from '@smgw/testing';
import { getTrace, recordMessage } from '@smgw/trace';
import {
  EICAR,
  mailWithAttachment,
  type PrivateClamd,
  startPrivateClamd,
  testEnvelope,
  testLogger,
  textMail,
} from './fixtures.ts';

interface World {
  gateway: TestGateway;
  scan: ServiceProcess;
  publisher: Mq;
  blobStore: BlobStore;
  close(): Promise<void>;
}

async function startWorld(env: Record<string, string> = {}): Promise<World> {
  const gateway = await startTestGateway({
    services: ['scan', 'deliver'],
    env: {
      SMGW_INTERNAL_DOMAINS: 'behoerde.example',
      SMGW_DELIVER_RETRY_LADDER: '200ms,200ms',
      SMGW_STAGE_RETRY_LADDER: '500ms,1s',
      SMGW_PREFETCH: '8',
      ...env,
    },
  });
  const publisher = await connectMq({
    url: gateway.vhost.url,
    logger: testLogger,
    connectionName: 'scan-test-publisher',
  });
  return {
    gateway,
    scan: gateway.service('scan'),
    publisher,
    blobStore: createBlobStore(gateway.db.pool, {
      keyStore: createFolderKeyStore(gateway.keys),
      directory: gateway.blobDir,
    }),
    async close() {
      await publisher.close();
      await gateway.close();
    },
  };
}

/** Stores and records the message and publishes it to smgw.scan, as ingest does. */
async function submit(world: World, raw: Buffer, overrides: Partial<Envelope> = {}): Promise<Envelope> {
  const id = overrides.id ?? newMessageId();
  const blob = await world.blobStore.put(Readable.from([raw]), { messageId: id });
  const envelope = testEnvelope(blob, 'internal', { ...overrides, id });
  await recordMessage(world.gateway.db.pool, envelope);
  await world.publisher.publish(envelope);
  return envelope;
}

describe('scan with the broker, deliver and the real clamd', () => {
  let world: World;
  before(async () => {
    world = await startWorld();
  });
  after(() => world.close());

  it('delivers clean mail byte for byte, with the scan recorded in the trace', async () => {
    const raw = textMail('Sehr geehrte Damen und Herren,\r\n\r\nanbei nichts Gefährliches.');
    const envelope = await submit(world, raw);
    const arrived = await waitFor('the clean message at the relay', () =>
      world.gateway.relay.messages.find((m) => m.raw.includes(Buffer.from('nichts Gef'))),
    );
    assert.ok(arrived.raw.equals(raw));
    const trace = await getTrace(world.gateway.db.pool, envelope.id);
    assert.ok(trace?.events.some((e) => e.stage === 'scan' && e.event === 'message.scanned'));
  });

  it('quarantines an infected message and the notice reaches the sender through deliver', async () => {
    const envelope = await submit(world, mailWithAttachment('rechnung.com', EICAR));
    const notice = await waitFor('the notice at the relay', () =>
      world.gateway.relay.messages.find((m) => m.raw.includes(Buffer.from(envelope.id))),
    );
    assert.deepEqual(notice.rcptTo, ['clerk@behoerde.example']);
    assert.equal(notice.mailFrom, '');
    const text = notice.raw.toString('latin1');
    assert.match(text, /Eicar/i);
    assert.ok(!text.includes('EICAR-STANDARD'));
    assert.ok(
      !world.gateway.relay.messages.some(
        (m) => m.rcptTo.includes('colleague@behoerde.example') && m.raw.includes(EICAR),
      ),
    );
    const trace = await getTrace(world.gateway.db.pool, envelope.id);
    assert.deepEqual(
      trace?.recipients.map((r) => r.state),
      ['quarantined'],
    );
  });

  it('is ready while clamd answers', async () => {
    const res = await fetch(`http://127.0.0.1:${world.scan.healthPort}/readyz`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /clamd/);
  });
});

describe('when clamd is killed in the middle of a run', () => {
  let clamd: PrivateClamd;
  let world: World;
  before(async () => {
    clamd = await startPrivateClamd();
    // Enough patience for the seconds clamd is away: the envelopes must wait, not park.
    world = await startWorld({ CLAMD_URL: clamd.url, SMGW_STAGE_RETRY_LADDER: Array(40).fill('500ms').join(',') });
  });
  after(async () => {
    await world.close();
    await clamd.close();
  });

  it('lets envelopes wait and delivers every one after clamd is back, none unscanned', async () => {
    const ready = async () => (await fetch(`http://127.0.0.1:${world.scan.healthPort}/readyz`)).status;
    const sent: Envelope[] = [];
    for (let i = 0; i < 10; i++) sent.push(await submit(world, textMail(`Nachricht ${i} vor dem Ausfall`)));
    await waitFor('a first message through', () => world.gateway.relay.messages.length > 0);
    await clamd.kill();
    for (let i = 0; i < 10; i++) sent.push(await submit(world, textMail(`Nachricht ${i} waehrend des Ausfalls`)));
    await waitFor(
      'scan to notice clamd is gone',
      async () => (await world.scan.metric('smgw_scan_clamd_errors_total')) > 0,
    );
    assert.equal(await ready(), 503);
    const duringOutage = world.gateway.relay.messages.length;
    assert.ok(duringOutage < sent.length, 'messages wait while clamd is down');
    await clamd.start();
    await waitFor('every message at the relay', () => world.gateway.relay.messages.length >= sent.length, {
      timeoutMs: 60_000,
    });
    assert.equal(await ready(), 200);
    for (const envelope of sent) {
      const trace = await getTrace(world.gateway.db.pool, envelope.id);
      assert.ok(
        trace?.events.some((e) => e.stage === 'scan' && e.event === 'message.scanned'),
        `${envelope.id} was scanned before delivery`,
      );
      assert.ok(!trace?.events.some((e) => e.event === 'envelope.parked'), `${envelope.id} was not parked`);
    }
    assert.equal(world.gateway.relay.messages.length, sent.length);
  });
});
