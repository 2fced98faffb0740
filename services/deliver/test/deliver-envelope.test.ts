// The handler without a broker: real PostgreSQL and SMTP sinks, outcomes inspected directly. Covers what the
// broker tests cannot provoke on purpose: redelivery after a crash, a claim held by another consumer.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newMessageId } from '@smgw/envelope';
import type { HandlerContext, Outcome } from '@smgw/mq';
import { createTestDatabase, type SmtpSink, type TestDatabase, waitFor } from '@smgw/testing';
import { DELIVER_OWNER_ALIVE_MS, expireParkedMessages, recordMessage, recordParkedAt } from '@smgw/trace';
import { pausedReaper } from '@smgw/trace/testing';
import { simpleParser } from 'mailparser';
import { createDeliverHandler } from '../src/deliver-envelope.ts';
import { claimRecipients } from '../src/delivery-records.ts';
import { DestinationSlots } from '../src/destination-slots.ts';
import { OWNER_TIMING } from '../src/owner-heartbeat.ts';
import { NOT_PLAIN_AGENCY_LOOKALIKES, sampleEnvelope, sampleMessage } from './fixtures.ts';
import { type HandlerWorld, startHandlerWorld, testLogger } from './harness.ts';

function context(overrides: Partial<HandlerContext> = {}): HandlerContext {
  return { attempt: 0, lastAttempt: false, log: testLogger, signal: new AbortController().signal, ...overrides };
}

async function streamText(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function envelopesOf(outcome: Outcome): Envelope[] {
  assert.equal(outcome.kind, 'next', `expected next, got ${JSON.stringify(outcome)}`);
  return outcome.kind === 'next' ? outcome.envelopes : [];
}

describe('deliver handler', () => {
  let db: TestDatabase;
  let world: HandlerWorld;
  let relay: SmtpSink;
  let published: Envelope[];
  let handle: ReturnType<typeof createDeliverHandler>;
  let deps: Parameters<typeof createDeliverHandler>[0];

  async function stored(
    overrides: Partial<Envelope>,
    message = sampleMessage(),
    options: { recorded: boolean } = { recorded: true },
  ): Promise<Envelope> {
    const id = overrides.id ?? newMessageId();
    const blob = await createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) }).put(
      Readable.from([message]),
      { messageId: id },
    );
    const envelope = sampleEnvelope({ blob, receivedAt: new Date().toISOString(), ...overrides, id });
    if (options.recorded) await recordMessage(db.pool, envelope);
    return envelope;
  }

  before(async () => {
    db = await createTestDatabase();
    world = await startHandlerWorld(db, (rcpt) =>
      rcpt.startsWith('perm')
        ? { code: 550, message: '5.1.1 unknown' }
        : rcpt.startsWith('never')
          ? { code: 450, message: '4.2.1 busy' }
          : undefined,
    );
    ({ relay, published, deps } = world);
    handle = createDeliverHandler(deps);
  });

  after(async () => {
    await world?.close();
    await db?.drop();
  });

  it('ends the journey and hands on the DSN in the same outcome', async () => {
    const envelope = await stored({ recipients: ['perm-1@behoerde.example'] });
    const [done, dsn, ...rest] = envelopesOf(await handle(envelope, context()));
    assert.equal(rest.length, 0);
    assert.deepEqual(done?.itinerary, []);
    assert.equal(dsn?.direction, 'generated');
    assert.equal(dsn?.mailFrom, '');
    assert.deepEqual(dsn?.recipients, [envelope.mailFrom]);
    assert.deepEqual(dsn?.itinerary, ['deliver']);
    assert.equal(dsn?.relatesTo, envelope.id);
  });

  it('records a message nobody recorded before (its rows gone or never written), then delivers it', async () => {
    const envelope = await stored({ recipients: ['unrecorded@behoerde.example'] }, sampleMessage(), {
      recorded: false,
    });
    const before = relay.messages.length;
    const [done] = envelopesOf(await handle(envelope, context()));
    assert.deepEqual(done?.itinerary, []);
    assert.equal(relay.messages.length, before + 1);
    const { rows } = await db.pool.query(
      `select r.state, (select count(*) from message_events e where e.message_id = r.message_id
                          and e.event = 'recipient.delivered')::int as delivered
         from message_recipients r where r.message_id = $1`,
      [envelope.id],
    );
    assert.deepEqual(rows, [{ state: 'delivered', delivered: 1 }]);
  });

  it('sends nothing when the stored message is cut short: the blob fails to read, the SMTP transaction is aborted', async () => {
    const body = Buffer.from(`${'Anlage zum Bescheid, Zeile fuer Zeile. '.repeat(20)}\r\n`.repeat(1000));
    const envelope = await stored({ recipients: ['cut@behoerde.example'] }, Buffer.concat([sampleMessage(), body]));
    // The final chunk is gone (as if a dump or a disk lost it): what is left authenticates, but is not the whole.
    await db.pool.query('delete from blob_chunks where blob_id = $1 and final', [envelope.blob.ref]);
    const outcome = await handle(envelope, context());
    assert.equal(outcome.kind, 'retry');
    assert.match(outcome.kind === 'retry' ? outcome.reason : '', /without its final chunk/);
    assert.equal(relay.messages.filter((m) => m.rcptTo.includes('cut@behoerde.example')).length, 0);
  });

  it('publishes the recorded DSN again on redelivery and makes no second one', async () => {
    const envelope = await stored({ recipients: ['perm-2@behoerde.example'] });
    const [, first] = envelopesOf(await handle(envelope, context()));
    const messagesBefore = relay.messages.length;
    const [, again, ...rest] = envelopesOf(await handle(envelope, context()));
    assert.equal(rest.length, 0);
    assert.equal(again?.id, first?.id, 'the same DSN, so deliver dedupes it downstream');
    assert.equal(again?.blob.sha256, first?.blob.sha256);
    assert.equal(relay.messages.length, messagesBefore, 'nothing was sent again');
    const { rows } = await db.pool.query('select count(*)::int as n from messages where relates_to = $1', [
      envelope.id,
    ]);
    assert.equal(rows[0].n, 1);
  });

  /** The relay answers `recipient` 451 until `up()`; `restore()` puts its earlier answers back. */
  function relayDownFor(recipient: string) {
    const earlier = relay.rejectRecipient;
    let down = true;
    relay.rejectRecipient = (rcpt, mailFrom) =>
      rcpt === recipient && down ? { code: 451, message: '4.3.0 try later' } : earlier?.(rcpt, mailFrom);
    return {
      up: () => {
        down = false;
      },
      restore: () => {
        relay.rejectRecipient = earlier;
      },
    };
  }

  it('never sends a recipient of a parked message the reaper gave up (sender told), when its envelope is moved back', async () => {
    const recipient = 'given-up@behoerde.example';
    const downRelay = relayDownFor(recipient);
    try {
      const envelope = await stored({ recipients: [recipient] });
      assert.equal((await handle(envelope, context())).kind, 'retry');
      // Parked (a dependency kept failing, say); SMGW_PARKED_ACTION=remove gives it up after the retention.
      await recordParkedAt(db.pool, 'deliver')(envelope, 'DELIVER_DEPENDENCY_FAILED', 'retries exhausted');
      const expired = await expireParkedMessages(db.pool, new Date(Date.now() + 60_000), 'reaper', new Date(), 1000);
      assert.ok(expired.includes(envelope.id));

      // An operator moves the parked envelope back to deliver's queue; the relay takes mail again.
      downRelay.up();
      const [done, ...dsns] = envelopesOf(await handle(envelope, context()));
      assert.deepEqual(done?.itinerary, []);
      assert.equal(dsns.length, 0, 'the sender was told once, by the reaper');
      assert.equal(relay.messages.filter((m) => m.rcptTo.includes(recipient)).length, 0);
      const { rows } = await db.pool.query(
        `select r.state, r.detail, d.state as delivery from message_recipients r
           join deliveries d using (message_id, recipient) where r.message_id = $1`,
        [envelope.id],
      );
      assert.deepEqual(rows, [{ state: 'bounced', detail: 'PARKED_EXPIRED', delivery: 'deferred' }]);
    } finally {
      downRelay.restore();
    }
  });

  it('waits for a reaper that is giving the message up at that moment, then sends nothing', async () => {
    const recipient = 'racing-reaper@behoerde.example';
    const downRelay = relayDownFor(recipient);
    try {
      const envelope = await stored({ recipients: [recipient] });
      assert.equal((await handle(envelope, context())).kind, 'retry');
      await recordParkedAt(db.pool, 'deliver')(envelope, 'DELIVER_DEPENDENCY_FAILED', 'retries exhausted');

      // The reaper has bounced the recipient and is writing the sender's DSN, not committed yet ...
      const reaper = await pausedReaper(db.pool);
      // ... when an operator moves the envelope back and the relay takes mail again.
      downRelay.up();
      let settled = false;
      const handled = handle(envelope, context()).finally(() => {
        settled = true;
      });
      const sent = () => relay.messages.some((m) => m.rcptTo.includes(recipient));
      try {
        // Until deliver waits on a lock the reaper holds (or, as it did before, has sent the message already).
        await waitFor('deliver waiting for the reaper, or done', async () => {
          if (settled || sent()) return true;
          const { rows } = await db.pool.query(
            `select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like 'with c%'`,
          );
          return rows.length > 0;
        });
      } finally {
        reaper.release();
      }
      assert.deepEqual(await reaper.done, [envelope.id]);
      const [done, ...dsns] = envelopesOf(await handled);
      assert.deepEqual(done?.itinerary, []);
      assert.equal(dsns.length, 0, 'the sender was told once, by the reaper');
      assert.equal(relay.messages.filter((m) => m.rcptTo.includes(recipient)).length, 0, 'sent after its DSN');
    } finally {
      downRelay.restore();
    }
  });

  it('keeps a reaper from giving up a parked recipient that a live deliver has claimed and is sending', async () => {
    const recipient = 'in-flight@behoerde.example';
    const envelope = await stored({ recipients: [recipient] });
    await recordParkedAt(db.pool, 'deliver')(envelope, 'DELIVER_DEPENDENCY_FAILED', 'retries exhausted');
    // Moved back: a deliver instance (heartbeat fresh) claims the recipient and is sending it.
    const instance = `test-${envelope.id}`;
    await db.pool.query('insert into deliver_instances (id, heartbeat_at) values ($1, now())', [instance]);
    const claim = await claimRecipients(db.pool, { id: envelope.id, blobRef: envelope.blob.ref }, [recipient], 60_000, {
      id: instance,
      deadAfterMs: OWNER_TIMING.deadAfterMs,
      idle: [],
    });
    assert.deepEqual(claim.claimed, [recipient]);

    const giveUp = () => expireParkedMessages(db.pool, new Date(Date.now() + 60_000), 'reaper', new Date(), 1000);
    assert.ok(!(await giveUp()).includes(envelope.id), 'given up while being sent');
    const state = async () =>
      (await db.pool.query('select state from message_recipients where message_id = $1', [envelope.id])).rows[0]?.state;
    assert.equal(await state(), 'pending');

    // That deliver died without a word: its claim is dead once its heartbeat is, and the message is given up.
    await db.pool.query(`update deliver_instances set heartbeat_at = now() - interval '1 minute' where id = $1`, [
      instance,
    ]);
    assert.ok((await giveUp()).includes(envelope.id));
    assert.equal(await state(), 'bounced');
  });

  it('lets the reaper pass over a message whose recipient someone holds, and give it up at a later sweep', async () => {
    const recipient = 'held@behoerde.example';
    const envelope = await stored({ recipients: [recipient] });
    await recordParkedAt(db.pool, 'deliver')(envelope, 'DELIVER_DEPENDENCY_FAILED', 'retries exhausted');
    const giveUp = () => expireParkedMessages(db.pool, new Date(Date.now() + 60_000), 'reaper', new Date(), 1000);
    // A claim or an arrival holds the recipient's trace row (as recipientGivenUpSql takes it) while the sweep comes.
    const holder = await db.pool.connect();
    try {
      await holder.query('begin');
      await holder.query('select 1 from message_recipients where message_id = $1 and recipient = $2 for key share', [
        envelope.id,
        recipient,
      ]);
      assert.ok(!(await giveUp()).includes(envelope.id), 'the reaper waited, or gave it up under a holder');
    } finally {
      await holder.query('rollback');
      holder.release();
    }
    assert.ok((await giveUp()).includes(envelope.id));
  });

  it("counts deliver's claims as live exactly as long as the reaper does", () => {
    assert.equal(OWNER_TIMING.deadAfterMs, DELIVER_OWNER_ALIVE_MS);
  });

  it('does not send a recipient another consumer is sending, and takes it over once that claim is stale', async () => {
    const envelope = await stored({ recipients: ['claimed@behoerde.example'] });
    await db.pool.query(
      `insert into deliveries (message_id, recipient, state, attempts) values ($1, 'claimed@behoerde.example', 'sending', 1)`,
      [envelope.id],
    );
    const outcome = await handle(envelope, context());
    assert.equal(outcome.kind, 'retry');
    assert.equal(outcome.kind === 'retry' && outcome.code, 'DELIVERY_DEFERRED');
    assert.equal(relay.messages.filter((m) => m.rcptTo.includes('claimed@behoerde.example')).length, 0);

    // That consumer died: its claim is older than the lease.
    await db.pool.query(`update deliveries set updated_at = now() - interval '2 minutes' where message_id = $1`, [
      envelope.id,
    ]);
    envelopesOf(await handle(envelope, context()));
    assert.equal(relay.messages.filter((m) => m.rcptTo.includes('claimed@behoerde.example')).length, 1);
  });

  it('sends an envelope handled twice at once in one process once, whichever claim reaches the database first', async () => {
    const { startOwnerHeartbeat } = await import('../src/owner-heartbeat.ts');
    const owner = await startOwnerHeartbeat(db.pool, testLogger, {
      heartbeatMs: 60_000,
      fenceAfterMs: 5_000,
      deadAfterMs: 10_000,
    });
    // The first handler's claim waits until the second handler has claimed (or is done): as when its query sat
    // behind others, so the second's claim reaches the database first.
    let firstClaimMayGo!: () => void;
    const gate = new Promise<void>((resolve) => {
      firstClaimMayGo = resolve;
    });
    let claims = 0;
    const pool = new Proxy(db.pool, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (property !== 'query') return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: Parameters<typeof target.query>) => {
          const statement = args[0] as unknown as { name?: string };
          const claim = statement?.name === 'deliver-claim' ? ++claims : 0;
          if (claim === 1) await gate;
          const result = await (target.query as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          if (claim === 2) firstClaimMayGo();
          return result;
        };
      },
    });
    const handleTwice = createDeliverHandler({ ...deps, pool, owner, sending: new Set() });
    try {
      const envelope = await stored({ recipients: ['zugleich@behoerde.example'] });
      const first = handleTwice(envelope, context());
      const second = await handleTwice(envelope, context());
      firstClaimMayGo();
      const outcomes = [await first, second];
      assert.equal(relay.messages.filter((m) => m.rcptTo.includes('zugleich@behoerde.example')).length, 1);
      assert.deepEqual(outcomes.map((o) => o.kind).sort(), ['next', 'retry']);
    } finally {
      firstClaimMayGo();
      await owner.close();
    }
  });

  it('takes over a claim whose owning instance stopped or whose heartbeat is stale, and leaves a live one alone', async () => {
    const { startOwnerHeartbeat } = await import('../src/owner-heartbeat.ts');
    const timing = { heartbeatMs: 60_000, fenceAfterMs: 5_000, deadAfterMs: 10_000 };
    const mine = await startOwnerHeartbeat(db.pool, testLogger, timing);
    const handleAs = createDeliverHandler({ ...deps, owner: mine, sending: new Set() });
    const claimedBy = async (recipient: string, instance: string) => {
      const envelope = await stored({ recipients: [recipient] });
      await db.pool.query(
        `insert into deliveries (message_id, recipient, state, attempts, owner_instance)
         values ($1, $2, 'sending', 1, $3)`,
        [envelope.id, recipient, instance],
      );
      return envelope;
    };
    const sentTo = (recipient: string) => relay.messages.filter((m) => m.rcptTo.includes(recipient)).length;
    try {
      // Another deliver instance claims a recipient; while its heartbeat is fresh, the claim is its own.
      const other = await startOwnerHeartbeat(db.pool, testLogger, timing);
      const orphan = await claimedBy('orphan@behoerde.example', other.id);
      assert.equal((await handleAs(orphan, context())).kind, 'retry', 'a live owner keeps its claim');
      await other.close();
      envelopesOf(await handleAs(orphan, context()));
      assert.equal(sentTo('orphan@behoerde.example'), 1);

      // An instance that died without closing: taken over once its heartbeat is older than deadAfterMs.
      const silent = await startOwnerHeartbeat(db.pool, testLogger, timing);
      const stale = await claimedBy('stale@behoerde.example', silent.id);
      assert.equal((await handleAs(stale, context())).kind, 'retry');
      await db.pool.query("update deliver_instances set heartbeat_at = now() - interval '11 seconds' where id = $1", [
        silent.id,
      ]);
      envelopesOf(await handleAs(stale, context()));
      assert.equal(sentTo('stale@behoerde.example'), 1);
      await silent.close();

      // Its own claim, left by an attempt that failed on the database (a restart), is taken again at once.
      const own = await claimedBy('own@behoerde.example', mine.id);
      envelopesOf(await handleAs(own, context()));
      assert.equal(sentTo('own@behoerde.example'), 1);
    } finally {
      await mine.close();
    }
  });

  it('claims and sends nothing while its own heartbeat cannot be renewed, and goes on once it can', async () => {
    const { startOwnerHeartbeat } = await import('../src/owner-heartbeat.ts');
    const owner = await startOwnerHeartbeat(db.pool, testLogger, {
      heartbeatMs: 20,
      fenceAfterMs: 200,
      deadAfterMs: 400,
    });
    const handleAs = createDeliverHandler({ ...deps, owner, sending: new Set() });
    const envelope = await stored({ recipients: ['fenced@behoerde.example'] });
    // The database does not answer the heartbeat (its row is locked by a transaction that does not end).
    const blocker = await db.pool.connect();
    try {
      await blocker.query('begin');
      await blocker.query('select 1 from deliver_instances where id = $1 for update', [owner.id]);
      await waitFor('the heartbeat to be overdue', () => !owner.alive());
      assert.equal(owner.fence().aborted, true, 'sends in flight are stopped');
      const outcome = await handleAs(envelope, context());
      assert.deepEqual(outcome.kind === 'retry' && outcome.code, 'DELIVER_OWNER_FENCED');
      const { rows } = await db.pool.query('select 1 from deliveries where message_id = $1', [envelope.id]);
      assert.equal(rows.length, 0, 'nothing claimed');
    } finally {
      await blocker.query('rollback');
      blocker.release();
    }
    await waitFor('the heartbeat to be renewed', () => owner.alive());
    assert.equal(owner.fence().aborted, false);
    envelopesOf(await handleAs(envelope, context()));
    await owner.close();
  });

  it('on the last attempt, a send cut short by its own fence or a shutdown is deferred (parked), never bounced', async () => {
    const fenced = new AbortController();
    fenced.abort(new Error('heartbeat overdue'));
    const owner = { id: 'fenced-instance', deadAfterMs: 20_000, alive: () => true, fence: () => fenced.signal };
    const handleAs = createDeliverHandler({ ...deps, owner, sending: new Set() });
    const stopping = new AbortController();
    stopping.abort();
    const cases: [string, typeof handle, HandlerContext][] = [
      ['fenced-last@behoerde.example', handleAs, context({ lastAttempt: true })],
      ['stopped-last@behoerde.example', handle, context({ lastAttempt: true, signal: stopping.signal })],
    ];
    for (const [recipient, handler, ctx] of cases) {
      const envelope = await stored({ recipients: [recipient] });
      const outcome = await handler(envelope, ctx);
      assert.deepEqual(outcome.kind === 'retry' && outcome.code, 'DELIVERY_DEFERRED', recipient);
      const { rows } = await db.pool.query('select state, dsn_message_id from deliveries where message_id = $1', [
        envelope.id,
      ]);
      assert.deepEqual(rows, [{ state: 'deferred', dsn_message_id: null }], 'no expiry, no DSN to the sender');
      assert.equal(relay.messages.filter((m) => m.rcptTo.includes(recipient)).length, 0);
    }
  });

  it('publishes a DSN itself when the outcome is a retry for other recipients', async () => {
    const envelope = await stored({ recipients: ['perm-3@behoerde.example', 'never-3@behoerde.example'] });
    published.length = 0;
    const outcome = await handle(envelope, context());
    assert.equal(outcome.kind, 'retry');
    assert.deepEqual(outcome.kind === 'retry' && outcome.envelope?.recipients, ['never-3@behoerde.example']);
    assert.equal(published.length, 1);
    assert.equal(published[0]?.relatesTo, envelope.id);
  });

  it('sends outbound mail encrypt gave up nowhere: every recipient bounced, a DSN (5.6.0) to the sender at once', async () => {
    const recipients = ['buerger@firma.example', 'kollege@behoerde.example'];
    const envelope = await stored({
      direction: 'outbound',
      mailFrom: 'sb@behoerde.example',
      recipients,
      verdicts: {
        crypto: {
          status: 'not-encryptable',
          code: 'ENCRYPT_HEADER_INVALID',
          detail: 'PGP_INVALID_HEADER: From must be non-empty printable ASCII, folded only with CRLF + space',
          at: new Date().toISOString(),
        },
      },
    });
    const before = relay.messages.length;
    const [done, dsn, ...rest] = envelopesOf(await handle(envelope, context()));
    assert.equal(rest.length, 0);
    assert.deepEqual(done?.itinerary, []);
    assert.equal(relay.messages.length, before, 'nothing sent, not even to the agency recipient');
    const { rows } = await db.pool.query<{ recipient: string; state: string; destination: string; code: string }>(
      `select d.recipient, d.state, d.destination, e.code from deliveries d
         join message_events e on e.message_id = d.message_id and e.recipient = d.recipient and e.stage = 'deliver'
        where d.message_id = $1 order by d.recipient`,
      [envelope.id],
    );
    assert.deepEqual(
      rows.map((r) => [r.recipient, r.state, r.destination, r.code]),
      [...recipients].sort().map((r) => [r, 'bounced', 'refused:not-encryptable', 'ENCRYPT_HEADER_INVALID']),
    );
    assert.deepEqual(
      [dsn?.direction, dsn?.recipients, dsn?.relatesTo],
      ['generated', ['sb@behoerde.example'], envelope.id],
    );
    const raw = await streamText(deps.blobStore.open(dsn?.blob.ref ?? ''));
    assert.equal(raw.match(/^Status: 5\.6\.0$/gm)?.length, 2);
    assert.equal(raw.match(/^Diagnostic-Code: X-SMGW; ENCRYPT_HEADER_INVALID/gm)?.length, 2);
    const text = (await simpleParser(raw)).text ?? '';
    assert.equal(
      text.match(/Der Kopfbereich der Nachricht \(Absender, Empfänger, Betreff\) kann so nicht/g)?.length,
      2,
    );
    assert.equal(text.match(/the message header \(sender, recipients, subject\) cannot be sent encrypted/g)?.length, 2);
    assert.ok(!raw.includes('printable ASCII'), "the encryptor's own words stay in the trace");
    assert.ok(raw.includes('Subject: Bescheid 2026/17'), 'the header block the agency sent is quoted');
    assert.ok(!raw.includes('anbei der Bescheid'), 'never the body');

    // Redelivered: nothing sent, the same DSN again, no second one.
    const [, again, ...more] = envelopesOf(await handle(envelope, context()));
    assert.equal(more.length, 0);
    assert.equal(again?.id, dsn?.id);
    assert.equal(relay.messages.length, before);
  });

  it('parks outbound mail whose not-encryptable verdict gives no reason it knows, as any other not encrypted', async () => {
    const envelope = await stored({
      direction: 'outbound',
      mailFrom: 'sb@behoerde.example',
      recipients: ['buerger@firma.example'],
      verdicts: { crypto: { status: 'not-encryptable', code: 'ENCRYPT_FAILED', at: new Date().toISOString() } },
    });
    const outcome = await handle(envelope, context());
    assert.equal(outcome.kind === 'reject' && outcome.code, 'OUTBOUND_NOT_ENCRYPTED');
    const { rows } = await db.pool.query('select count(*)::int as n from deliveries where message_id = $1', [
      envelope.id,
    ]);
    assert.equal(rows[0].n, 0);
  });

  it('refuses inbound mail addressed outside the agency domains', async () => {
    const envelope = await stored({ recipients: ['x@firma.example'] });
    const outcome = await handle(envelope, context());
    assert.deepEqual(outcome.kind === 'reject' && outcome.code, 'PLAINTEXT_TO_OUTSIDE');
  });
  it('defers the recipients of a domain that has its share of deliveries in progress, and sends the relay’s', async () => {
    // A tarpit MX holds each handler that sends to it for the whole attempt: past its share, its recipients wait
    // for the retry ladder instead of taking the handlers the agencies' relay and other domains need.
    const slots = new DestinationSlots(2);
    const limited = createDeliverHandler({ ...deps, destinationSlots: slots });
    assert.deepEqual([slots.take('mx:tarpit.example'), slots.take('mx:tarpit.example')], ['taken', 'taken']);
    const envelope = await stored({
      direction: 'generated',
      mailFrom: '',
      recipients: ['opfer@tarpit.example', 'amt@behoerde.example'],
    });
    const before = relay.messages.length;
    const outcome = await limited(envelope, context());
    assert.equal(outcome.kind, 'retry', JSON.stringify(outcome));
    assert.deepEqual(outcome.kind === 'retry' ? outcome.envelope?.recipients : [], ['opfer@tarpit.example']);
    assert.deepEqual(
      relay.messages.slice(before).flatMap((m) => m.rcptTo),
      ['amt@behoerde.example'],
    );
    const { rows } = await db.pool.query<{ state: string; destination: string; category: string }>(
      `select d.state, d.destination, e.data ->> 'category' as category from deliveries d
         join message_events e on e.message_id = d.message_id and e.recipient = d.recipient and e.stage = 'deliver'
        where d.message_id = $1 and d.recipient = 'opfer@tarpit.example'`,
      [envelope.id],
    );
    assert.deepEqual(rows, [{ state: 'deferred', destination: 'mx:tarpit.example', category: 'destination-busy' }]);
    // A slot given back lets the next delivery to that domain try (here: no DNS, so deferred as unreachable).
    slots.release('mx:tarpit.example');
    assert.equal(slots.take('mx:tarpit.example'), 'taken');
  });

  it('bounces a recipient that is not one plain address without sending it anywhere, and sends the others', async () => {
    const odd = NOT_PLAIN_AGENCY_LOOKALIKES;
    // generated mail: the guard lets it go anywhere, so only the router and the send stand between it and the relay
    const envelope = await stored({
      direction: 'generated',
      mailFrom: '',
      recipients: [...odd, 'plain@behoerde.example'],
    });
    const before = relay.messages.length;
    envelopesOf(await handle(envelope, context()));
    assert.deepEqual(
      relay.messages.slice(before).flatMap((m) => m.rcptTo),
      ['plain@behoerde.example'],
    );
    const { rows } = await db.pool.query<{ recipient: string; state: string; code: string; destination: string }>(
      `select d.recipient, d.state, d.destination, e.code from deliveries d
         join message_events e on e.message_id = d.message_id and e.recipient = d.recipient and e.stage = 'deliver'
        where d.message_id = $1 order by d.recipient`,
      [envelope.id],
    );
    assert.deepEqual(
      rows.filter((r) => odd.includes(r.recipient)).map((r) => [r.state, r.code, r.destination]),
      odd.map(() => ['bounced', 'DELIVERY_RECIPIENT_INVALID', 'refused:not-plain-address']),
    );
    assert.deepEqual(
      rows.filter((r) => !odd.includes(r.recipient)).map((r) => r.state),
      ['delivered'],
    );
  });

  it('tells a sender outside the agencies only the status: not the relay, its reply (internal names) or our error text', async () => {
    const internal = '5.1.1 <chef@behoerde.example>: unknown in virtual alias table of mx01.intern.behoerde.example';
    const previous = relay.rejectRecipient;
    relay.rejectRecipient = (rcpt) => (rcpt.startsWith('alias') ? { code: 550, message: internal } : undefined);
    try {
      const envelope = await stored({ mailFrom: 'fremder@extern.example', recipients: ['alias@behoerde.example'] });
      const [, dsn] = envelopesOf(await handle(envelope, context()));
      assert.deepEqual(dsn?.recipients, ['fremder@extern.example']);
      const dsnText = await streamText(deps.blobStore.open(dsn.blob.ref));
      assert.match(dsnText, /^Status: 5\.1\.1$/m);
      assert.doesNotMatch(dsnText, /mx01|chef@|virtual alias|Remote-MTA|Diagnostic-Code|127\.0\.0\.1/);

      // The relay unreachable until the retry period is over: our own error names its address.
      const down = await stored({ mailFrom: 'fremder@extern.example', recipients: ['eingang@behoerde.example'] });
      const unreachable = { ...deps, routing: { ...deps.routing, internalRelay: [{ host: '127.0.0.1', port: 9 }] } };
      const [, expired] = envelopesOf(
        await createDeliverHandler(unreachable)(down, context({ attempt: 9, lastAttempt: true })),
      );
      assert.ok(expired);
      const expiredText = await streamText(deps.blobStore.open(expired.blob.ref));
      assert.match(expiredText, /^Status: 4\.\d\.\d+$/m);
      assert.doesNotMatch(expiredText, /ECONNREFUSED|127\.0\.0\.1|Remote-MTA|Diagnostic-Code/);
    } finally {
      relay.rejectRecipient = previous;
    }
  });

  it('quotes to a sender outside the agencies only the fields that identify the message, not kilobytes of its text (bounce spam)', async () => {
    // A stranger's MAIL FROM may be anyone's: the header block it wrote would go to its victim in our name.
    const spam = Array.from({ length: 600 }, (_, i) => `X-Offer-${i}: Buy cheap pills at https://spam.example/${i}`);
    const message = Buffer.concat([Buffer.from(`${spam.join('\r\n')}\r\n`), sampleMessage('Gewinnspiel')]);
    const envelope = await stored(
      { mailFrom: 'opfer@anderswo.example', recipients: ['perm-spam@behoerde.example'] },
      message,
    );
    const [, dsn] = envelopesOf(await handle(envelope, context()));
    assert.ok(dsn);
    const dsnText = await streamText(deps.blobStore.open(dsn.blob.ref));
    assert.doesNotMatch(dsnText, /spam\.example|X-Offer/);
    assert.ok(dsnText.length < 12_000, `the DSN is ${dsnText.length} characters`);
    const parsed = await simpleParser(Buffer.from(dsnText));
    assert.equal(parsed.inReplyTo, '<original-1@behoerde.example>');
    assert.match(dsnText, /^Subject: Gewinnspiel$/m);
  });

  it('stores, traces and quotes in the DSN to an agency sender a remote reply cut to 512 characters, never the whole of it', async () => {
    const chatter = `5.1.1 unknown ${'blah '.repeat(2000)}`;
    const previous = relay.rejectRecipient;
    relay.rejectRecipient = (rcpt) => (rcpt.startsWith('chatty') ? { code: 550, message: chatter } : undefined);
    try {
      const envelope = await stored({
        direction: 'internal',
        mailFrom: 'sb@behoerde.example',
        recipients: ['chatty@behoerde.example'],
      });
      const [, dsn] = envelopesOf(await handle(envelope, context()));
      const { rows } = await db.pool.query<{ last_response: string; reason: string }>(
        `select d.last_response, e.reason from deliveries d
           join message_events e on e.message_id = d.message_id and e.recipient = d.recipient and e.stage = 'deliver'
          where d.message_id = $1`,
        [envelope.id],
      );
      for (const text of [rows[0]?.last_response, rows[0]?.reason]) {
        assert.match(text ?? '', /^550 5\.1\.1 unknown blah.*… \[cut: \d+ characters\]$/s);
        assert.ok((text?.length ?? 0) < 560);
      }
      assert.ok(dsn);
      const dsnText = await streamText(deps.blobStore.open(dsn.blob.ref));
      assert.match(dsnText, /Diagnostic-Code: smtp; 550 5\.1\.1 unknown blah/);
      assert.ok(dsnText.length < 20_000, 'the DSN does not carry the 10 KB reply');
    } finally {
      relay.rejectRecipient = previous;
    }
  });
});
