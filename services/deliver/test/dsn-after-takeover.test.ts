// Two deliver processes, one envelope: A claimed the recipient and got a 5xx, then stalled (a GC or VM pause, a slow
// database) between the answer and recordOutcomes for longer than deadAfterMs; its fence stops sends in flight only,
// not this. B got a copy of the envelope meanwhile (redelivered after a broker restart), took the claim over (A's
// heartbeat is stale), got the 5xx too, recorded `bounced` and its DSN. When A goes on, its DSN must not be recorded
// nor handed on: the sender is told once. (A second DSN under another id used to go out: deliver's (message id,
// recipient) dedupe cannot see it.)
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newMessageId } from '@smgw/envelope';
import type { HandlerContext, Outcome } from '@smgw/mq';
import { createTestDatabase, type SmtpSink, type TestDatabase } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
import { createDeliverHandler } from '../src/deliver-envelope.ts';
import { startOwnerHeartbeat } from '../src/owner-heartbeat.ts';
import { sampleEnvelope, sampleMessage } from './fixtures.ts';
import { type HandlerWorld, startHandlerWorld, testLogger } from './harness.ts';

function context(): HandlerContext {
  return { attempt: 0, lastAttempt: false, log: testLogger, signal: new AbortController().signal };
}

describe('a DSN after a claim was taken over', () => {
  let db: TestDatabase;
  let world: HandlerWorld;
  let relay: SmtpSink;
  let published: Envelope[];
  let deps: Parameters<typeof createDeliverHandler>[0];

  before(async () => {
    db = await createTestDatabase();
    world = await startHandlerWorld(db, (rcpt) =>
      rcpt.startsWith('perm') ? { code: 550, message: '5.1.1 unknown' } : undefined,
    );
    ({ relay, published, deps } = world);
  });
  after(async () => {
    await world?.close();
    await db?.drop();
  });

  it('tells the sender once when the process that lost its claim records its bounce late', async () => {
    const id = newMessageId();
    const blob = await createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) }).put(
      Readable.from([sampleMessage()]),
      { messageId: id },
    );
    const envelope = sampleEnvelope({
      id,
      blob,
      receivedAt: new Date().toISOString(),
      recipients: ['perm-zweimal@behoerde.example'],
    });
    await recordMessage(db.pool, envelope);

    const timing = { heartbeatMs: 60_000, fenceAfterMs: 5_000, deadAfterMs: 10_000 };
    const ownerA = await startOwnerHeartbeat(db.pool, testLogger, timing);
    const ownerB = await startOwnerHeartbeat(db.pool, testLogger, timing);
    // A stalls where it stores its DSN (after the 5xx, before recordOutcomes).
    let aAtDsn!: () => void;
    const aReachedDsn = new Promise<void>((r) => {
      aAtDsn = r;
    });
    let aMayGo!: () => void;
    const aGate = new Promise<void>((r) => {
      aMayGo = r;
    });
    const stallingStore = new Proxy(deps.blobStore, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (property !== 'put') return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          aAtDsn();
          await aGate;
          return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      },
    });
    const handleA = createDeliverHandler({ ...deps, blobStore: stallingStore, owner: ownerA, sending: new Set() });
    const handleB = createDeliverHandler({ ...deps, owner: ownerB, sending: new Set() });
    try {
      const outcomeA = handleA(envelope, context());
      await aReachedDsn;
      // A's heartbeat as B sees it: older than deadAfterMs (A is stalled).
      await db.pool.query("update deliver_instances set heartbeat_at = now() - interval '11 seconds' where id = $1", [
        ownerA.id,
      ]);
      const outcomeB = await handleB(envelope, context());
      aMayGo();
      const outcomes: Outcome[] = [await outcomeA, outcomeB];
      const dsnIds = new Set(
        [
          ...outcomes.flatMap((o) => (o.kind === 'next' ? o.envelopes.filter((e) => e.direction === 'generated') : [])),
          ...published,
        ].map((e) => e.id),
      );
      const recorded = await db.pool.query('select id from messages where relates_to = $1', [id]);
      assert.equal(relay.messages.filter((m) => m.rcptTo.includes('perm-zweimal@behoerde.example')).length, 0);
      assert.deepEqual(
        { dsnsHandedOn: dsnIds.size, dsnsRecorded: recorded.rowCount },
        { dsnsHandedOn: 1, dsnsRecorded: 1 },
        `outcomes: ${outcomes.map((o) => o.kind).join(', ')}; DSN ids handed on: ${[...dsnIds].join(', ')}`,
      );
    } finally {
      aMayGo();
      await ownerA.close();
      await ownerB.close();
    }
  });
});
