import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Direction, type Envelope, newMessageId, type Stage, workQueue } from '@smgw/envelope';
import { connectMq, type Mq, next } from '@smgw/mq';
import { createLogger } from '@smgw/observability';
import type { QuarantineEntry } from '@smgw/quarantine';
import { envelopeFixture, rabbitManagementApi, type TestDatabase, type TestVhost, waitFor } from '@smgw/testing';
import { getTrace, recordMessage, setRecipientState } from '@smgw/trace';
import { runCli } from '../src/cli.ts';
import { captureStderr, captureStdout, startTestAdmin, type TestAdmin } from './harness.ts';

const TOKEN = 'test-token-quarantine-0123456789';

type Entry = QuarantineEntry;

describe('quarantine in the admin API', () => {
  let db: TestDatabase;
  let vhost: TestVhost;
  let testAdmin: TestAdmin;
  let testMq: Mq;
  let base: string;
  /** Envelopes that arrived in the work queues this test consumes, by stage. */
  const arrived: Record<'encrypt' | 'deliver', Envelope[]> = { encrypt: [], deliver: [] };

  before(async () => {
    testAdmin = await startTestAdmin(TOKEN);
    ({ db, vhost, base } = testAdmin);
    testMq = await connectMq({ url: vhost.url, logger: createLogger('mq-test', 'silent'), connectionName: 'test' });
    await testMq.declareTopology({});
    for (const stage of ['encrypt', 'deliver'] as const) {
      await testMq.consume(
        stage,
        async (envelope) => {
          arrived[stage].push(envelope);
          return next();
        },
        { retryLadder: [], prefetch: 10 },
      );
    }
  });
  after(async () => {
    await testMq.close();
    await testAdmin.stop();
  });

  /** A message the scan stage quarantined, as the scan service leaves it: entry row, recipients quarantined. */
  async function quarantined(
    options: {
      direction?: Direction;
      itinerary?: Stage[];
      verdict?: 'infected' | 'suspicious';
      finding?: string;
      expiresAt?: Date;
    } = {},
  ): Promise<{ id: string; envelope: Envelope }> {
    const direction = options.direction ?? 'outbound';
    const envelope = envelopeFixture({
      direction,
      mailFrom: 'sachbearbeitung@behoerde.example',
      recipients: ['buerger@example.org', 'firma@example.com'],
      client: { listener: 'submission', ip: '10.0.0.5', helo: 'mail.behoerde.example', tls: true },
      blob: { ref: 'b'.repeat(64), sha256: 'b'.repeat(64), size: 4321 },
      itinerary: options.itinerary ?? ['scan', 'encrypt', 'deliver'],
      hop: 1,
      attempt: 2,
    });
    await recordMessage(db.pool, envelope);
    await setRecipientState(db.pool, envelope.id, envelope.recipients, 'quarantined', 'Eicar-Signature');
    const id = newMessageId();
    await db.pool.query(
      `insert into quarantine (id, message_id, blob_sha256, direction, verdict, finding, detail, envelope, expires_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        id,
        envelope.id,
        envelope.blob.sha256,
        direction,
        options.verdict ?? 'infected',
        options.finding ?? 'Eicar-Signature',
        'stream: Eicar-Signature FOUND',
        JSON.stringify(envelope),
        options.expiresAt ?? new Date(Date.now() + 30 * 86_400_000),
      ],
    );
    return { id, envelope };
  }

  const get = (path: string, token: string | null = TOKEN) =>
    fetch(base + path, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  const release = (id: string, options: { body?: unknown; operator?: string; token?: string | null } = {}) => {
    const headers: Record<string, string> = {};
    if (options.token !== null) headers.authorization = `Bearer ${options.token ?? TOKEN}`;
    if (options.operator !== undefined) headers['x-smgw-operator'] = options.operator;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    return fetch(`${base}/quarantine/${id}/release`, {
      method: 'POST',
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
  };

  async function errorCode(res: Response): Promise<string> {
    return ((await res.json()) as { error: { code: string } }).error.code;
  }

  async function row(id: string) {
    const result = await db.pool.query(
      'select released_at, released_by, release_reason from quarantine where id = $1',
      [id],
    );
    return result.rows[0] as { released_at: Date | null; released_by: string | null; release_reason: string | null };
  }

  async function recipientStates(messageId: string): Promise<string[]> {
    const trace = await getTrace(db.pool, messageId);
    return (trace?.recipients ?? []).map((r) => r.state);
  }

  it('lists open entries newest first with sender and recipients, never the content or the envelope', async () => {
    const older = await quarantined();
    const newer = await quarantined({ verdict: 'suspicious', finding: 'Heuristics.Encrypted.Zip' });
    const res = await get('/quarantine');
    assert.equal(res.status, 200);
    const page = (await res.json()) as { entries: Entry[]; nextBefore: string | null };
    const ids = page.entries.map((e) => e.id);
    assert.ok(ids.indexOf(newer.id) < ids.indexOf(older.id) && ids.indexOf(older.id) >= 0);
    const entry = page.entries.find((e) => e.id === newer.id);
    assert.ok(entry);
    assert.deepEqual(Object.keys(entry).sort(), [
      'detail',
      'direction',
      'expiresAt',
      'finding',
      'id',
      'mailFrom',
      'messageId',
      'quarantinedAt',
      'recipients',
      'releaseReason',
      'releasedAt',
      'releasedBy',
      'verdict',
    ]);
    assert.equal(entry.messageId, newer.envelope.id);
    assert.equal(entry.verdict, 'suspicious');
    assert.equal(entry.finding, 'Heuristics.Encrypted.Zip');
    assert.equal(entry.mailFrom, 'sachbearbeitung@behoerde.example');
    assert.deepEqual(entry.recipients, ['buerger@example.org', 'firma@example.com']);
    assert.equal(entry.releasedAt, null);
    assert.equal(page.nextBefore, null);
  });

  it('filters by state and direction and pages with limit and a before cursor', async () => {
    const inbound = [
      await quarantined({ direction: 'inbound', itinerary: ['scan', 'verify', 'deliver'] }),
      await quarantined({ direction: 'inbound', itinerary: ['scan', 'verify', 'deliver'] }),
      await quarantined({ direction: 'inbound', itinerary: ['scan', 'verify', 'deliver'] }),
    ];
    const portal = await quarantined({ direction: 'portal', itinerary: ['scan', 'deliver'] });
    await db.pool.query(`update quarantine set released_at = now(), released_by = 'someone' where id = $1`, [
      portal.id,
    ]);

    const first = (await (await get('/quarantine?direction=inbound&limit=2')).json()) as {
      entries: Entry[];
      nextBefore: string | null;
    };
    assert.deepEqual(
      first.entries.map((e) => e.id),
      [inbound[2]?.id, inbound[1]?.id],
    );
    assert.equal(first.nextBefore, inbound[1]?.id);
    const second = (await (await get(`/quarantine?direction=inbound&limit=2&before=${first.nextBefore}`)).json()) as {
      entries: Entry[];
      nextBefore: string | null;
    };
    assert.deepEqual(
      second.entries.map((e) => e.id),
      [inbound[0]?.id],
    );
    assert.equal(second.nextBefore, null);

    const open = (await (await get('/quarantine?direction=portal')).json()) as { entries: Entry[] };
    assert.equal(
      open.entries.some((e) => e.id === portal.id),
      false,
    );
    const released = (await (await get('/quarantine?state=released&direction=portal')).json()) as { entries: Entry[] };
    assert.deepEqual(
      released.entries.map((e) => [e.id, e.releasedBy]),
      [[portal.id, 'someone']],
    );
    const all = (await (await get('/quarantine?state=all&direction=portal')).json()) as { entries: Entry[] };
    assert.deepEqual(
      all.entries.map((e) => e.id),
      [portal.id],
    );

    for (const bad of ['limit=501', 'limit=0', 'state=deleted', 'direction=sideways', 'before=nope', 'colour=red']) {
      const res = await get(`/quarantine?${bad}`);
      assert.equal(res.status, 400, bad);
      assert.equal(await errorCode(res), 'BAD_REQUEST', bad);
    }
  });

  it('shows one entry, answers 404 QUARANTINE_NOT_FOUND for an unknown id and 400 for a malformed one', async () => {
    const { id, envelope } = await quarantined();
    const res = await get(`/quarantine/${id.toLowerCase()}`);
    assert.equal(res.status, 200);
    const entry = (await res.json()) as Entry;
    assert.equal(entry.id, id);
    assert.equal(entry.messageId, envelope.id);
    assert.equal(entry.detail, 'stream: Eicar-Signature FOUND');

    const unknown = await get(`/quarantine/${newMessageId()}`);
    assert.equal(unknown.status, 404);
    assert.equal(await errorCode(unknown), 'QUARANTINE_NOT_FOUND');
    const releaseUnknown = await release(newMessageId());
    assert.equal(releaseUnknown.status, 404);
    assert.equal(await errorCode(releaseUnknown), 'QUARANTINE_NOT_FOUND');

    const malformed = await get('/quarantine/not-an-id');
    assert.equal(malformed.status, 400);
    assert.equal(await errorCode(malformed), 'BAD_REQUEST');
  });

  it('refuses every quarantine call without the bearer token and releases nothing', async () => {
    const { id } = await quarantined();
    for (const res of [
      await get('/quarantine', null),
      await get(`/quarantine/${id}`, null),
      await release(id, { token: null }),
      await release(id, { token: 'wrong' }),
    ]) {
      assert.equal(res.status, 401);
      assert.equal(await errorCode(res), 'UNAUTHORIZED');
    }
    assert.equal((await row(id)).released_at, null);
  });

  it('releases a message: marks it, publishes the envelope advanced past scan to its next queue, records who and why', async () => {
    const { id, envelope } = await quarantined();
    const res = await release(id, { operator: 'j.schmidt@behoerde.example', body: { reason: 'false positive' } });
    assert.equal(res.status, 200);
    const answer = (await res.json()) as { entry: Entry; queuedFor: string };
    assert.equal(answer.queuedFor, 'encrypt');
    assert.equal(answer.entry.releasedBy, 'j.schmidt@behoerde.example');
    assert.equal(answer.entry.releaseReason, 'false positive');
    assert.ok(answer.entry.releasedAt);

    const published = await waitFor('the released envelope in smgw.encrypt', () =>
      arrived.encrypt.find((e) => e.id === envelope.id),
    );
    assert.deepEqual(published.itinerary, ['encrypt', 'deliver']);
    assert.equal(published.hop, envelope.hop + 1);
    assert.equal(published.attempt, 0);
    assert.equal(published.blob.sha256, envelope.blob.sha256);
    assert.deepEqual(published.recipients, envelope.recipients);
    assert.equal(published.verdicts.scan?.status, 'released');
    assert.equal(published.verdicts.scan?.detail, 'Eicar-Signature');
    assert.equal(published.verdicts.scan?.by, 'j.schmidt@behoerde.example');

    const stored = await row(id);
    assert.equal(stored.released_by, 'j.schmidt@behoerde.example');
    assert.equal(stored.release_reason, 'false positive');
    assert.deepEqual(await recipientStates(envelope.id), ['pending', 'pending']);
    const trace = await getTrace(db.pool, envelope.id);
    const event = trace?.events.find((e) => e.event === 'message.released');
    assert.ok(event);
    assert.equal(event.stage, 'admin');
    assert.equal(event.reason, 'false positive');
    assert.deepEqual(event.data, {
      quarantineId: id,
      operator: 'j.schmidt@behoerde.example',
      finding: 'Eicar-Signature',
      to: 'encrypt',
    });
  });

  it('names the shared token as operator when no X-SMGW-Operator header is given, and needs no body', async () => {
    const { id, envelope } = await quarantined({ direction: 'portal', itinerary: ['scan', 'deliver'] });
    const res = await release(id);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { entry: Entry }).entry.releasedBy, 'admin-token');
    const published = await waitFor('the released envelope in smgw.deliver', () =>
      arrived.deliver.find((e) => e.id === envelope.id),
    );
    assert.equal(published.verdicts.scan?.by, 'admin-token');
  });

  it('refuses a malformed operator name or body with 400 BAD_REQUEST and releases nothing', async () => {
    const { id } = await quarantined();
    const cases: [string, Parameters<typeof release>[1]][] = [
      ['a tab in the operator name', { operator: 'evil\tname' }],
      ['an operator name over 64 characters', { operator: 'x'.repeat(65) }],
      ['an operator name starting with a dash', { operator: '-leading-dash' }],
      ['a reason over 500 characters', { body: { reason: 'r'.repeat(501) } }],
      ['an unknown field', { body: { reason: 'ok', force: true } }],
      ['a reason that is not a string', { body: { reason: 42 } }],
      ['a reason with a line break', { body: { reason: 'ok\nreleased by: someone else' } }],
    ];
    for (const [what, options] of cases) {
      const res = await release(id, options);
      assert.equal(res.status, 400, what);
      assert.equal(await errorCode(res), 'BAD_REQUEST', what);
    }
    assert.equal((await row(id)).released_at, null);
  });

  it('answers a second release with 409 ALREADY_RELEASED', async () => {
    const { id } = await quarantined();
    assert.equal((await release(id, { operator: 'first' })).status, 200);
    const again = await release(id, { operator: 'second' });
    assert.equal(again.status, 409);
    assert.equal(await errorCode(again), 'ALREADY_RELEASED');
    assert.equal((await row(id)).released_by, 'first');
  });

  it('publishes once when several operators release the same message at the same time', async () => {
    const { id, envelope } = await quarantined();
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => release(id, { operator: `operator${i}` })));
    const statuses = answers.map((a) => a.status).sort();
    assert.deepEqual(statuses, [200, 409, 409, 409, 409, 409]);
    // Every answer came after its publish was confirmed; a marker published now queues behind anything they sent.
    const marker = { ...envelope, id: newMessageId(), itinerary: ['encrypt', 'deliver'] } satisfies Envelope;
    await testMq.publish(marker);
    await waitFor('the marker behind the releases', () => arrived.encrypt.some((e) => e.id === marker.id));
    assert.equal(arrived.encrypt.filter((e) => e.id === envelope.id).length, 1);
  });

  it('answers 503 QUEUE_UNAVAILABLE and changes nothing when the broker does not take the envelope', async () => {
    const { id, envelope } = await quarantined({ direction: 'inbound', itinerary: ['scan', 'verify', 'deliver'] });
    // The broker returns what it cannot route: with the verify queue gone, the confirmed publish fails.
    const verify = encodeURIComponent(workQueue('verify'));
    const deleted = await rabbitManagementApi(`/queues/${vhost.name}/${verify}`, 'DELETE');
    assert.ok(deleted.ok, `deleting ${workQueue('verify')}: HTTP ${deleted.status}`);

    const res = await release(id, { operator: 'ops', body: { reason: 'checked' } });
    assert.equal(res.status, 503);
    assert.equal(await errorCode(res), 'QUEUE_UNAVAILABLE');
    assert.equal((await row(id)).released_at, null);
    assert.deepEqual(await recipientStates(envelope.id), ['quarantined', 'quarantined']);
    const trace = await getTrace(db.pool, envelope.id);
    assert.equal(
      trace?.events.some((e) => e.event === 'message.released'),
      false,
    );

    // Once the queue is back, the same release goes through.
    await testMq.declareTopology({});
    const verified: Envelope[] = [];
    await testMq.consume(
      'verify',
      async (e) => {
        verified.push(e);
        return next();
      },
      { retryLadder: [], prefetch: 10 },
    );
    assert.equal((await release(id, { operator: 'ops' })).status, 200);
    await waitFor('the released envelope in smgw.verify', () => verified.some((e) => e.id === envelope.id));
  });

  it('answers 422 QUARANTINE_ENVELOPE_UNUSABLE for a stored envelope that is not at scan, and releases nothing', async () => {
    const { id } = await quarantined({ itinerary: ['encrypt', 'deliver'] });
    const res = await release(id);
    assert.equal(res.status, 422);
    assert.equal(await errorCode(res), 'QUARANTINE_ENVELOPE_UNUSABLE');
    assert.equal((await row(id)).released_at, null);
  });

  it('lists, shows and releases from the operator CLI', async () => {
    const { id, envelope } = await quarantined({ finding: 'Win.Test.EICAR_HDB-1' });
    const env = { SMGW_ADMIN_URL: base, SMGW_ADMIN_TOKEN: TOKEN };

    const list = await captureStdout(() => runCli(['quarantine', 'list'], env));
    assert.equal(list.code, 0);
    assert.match(list.out, new RegExp(`${id}.*infected.*open.*Win\\.Test\\.EICAR_HDB-1`));

    const show = await captureStdout(() => runCli(['quarantine', 'show', id], env));
    assert.equal(show.code, 0);
    assert.match(show.out, new RegExp(`message\\s+${envelope.id}`));
    assert.match(show.out, /verdict\s+infected: Win\.Test\.EICAR_HDB-1/);
    assert.match(show.out, /released\s+no/);

    const released = await captureStdout(() =>
      runCli(['quarantine', 'release', id, '--reason', 'sender confirmed the file', '--operator', 'cli-user'], env),
    );
    assert.equal(released.code, 0);
    assert.match(released.out, new RegExp(`released ${id} .* by cli-user: queued for encrypt`));
    assert.equal((await row(id)).release_reason, 'sender confirmed the file');
    await waitFor('the envelope the CLI released', () => arrived.encrypt.some((e) => e.id === envelope.id));

    const all = await captureStdout(() => runCli(['quarantine', 'list', '--all', '--json'], env));
    assert.equal(all.code, 0);
    const page = JSON.parse(all.out) as { entries: Entry[] };
    assert.equal(page.entries.find((e) => e.id === id)?.releasedBy, 'cli-user');

    const again = await captureStderr(() => runCli(['quarantine', 'release', id], env));
    assert.equal(again.code, 1);
    assert.match(again.out, /ALREADY_RELEASED/);
  });
});
