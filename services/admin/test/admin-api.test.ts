import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Envelope } from '@smgw/envelope';
import { envelopeFixture, type TestDatabase } from '@smgw/testing';
import { recordEvent, recordMessage, setRecipientState } from '@smgw/trace';
import { AUTH_FAILURE_WINDOW_MS, AUTH_FAILURES_PER_CLIENT, createAuthFailures } from '../src/auth-failures.ts';
import { runCli } from '../src/cli.ts';
import type { RunningAdmin } from '../src/service.ts';
import { captureStdout, startTestAdmin, type TestAdmin } from './harness.ts';

const TOKEN = 'test-token-0123456789';

describe('admin API', () => {
  let db: TestDatabase;
  let testAdmin: TestAdmin;
  let admin: RunningAdmin;
  let base: string;

  before(async () => {
    testAdmin = await startTestAdmin(TOKEN);
    ({ db, admin } = testAdmin);
    base = `http://127.0.0.1:${admin.port}`;
  });
  after(async () => {
    await testAdmin.stop();
  });

  const get = (path: string, token?: string) =>
    fetch(base + path, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  function envelope(): Envelope {
    return envelopeFixture({
      mailFrom: 'buerger@example.org',
      recipients: ['amt@behoerde.example', 'leitung@behoerde.example'],
      client: { listener: 'inbound', ip: '192.0.2.7', helo: 'mx.example.org', tls: true },
      blob: { ref: 'a'.repeat(64), sha256: 'a'.repeat(64), size: 1234 },
      itinerary: ['deliver'],
    });
  }

  it('refuses API calls without the bearer token, or with a wrong one', async () => {
    assert.equal((await get('/api/v1/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV')).status, 401);
    assert.equal((await get('/api/v1/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV', 'wrong')).status, 401);
  });

  it('keeps health endpoints open and reports the database and the broker as ready', async () => {
    assert.equal((await get('/healthz')).status, 200);
    const ready = await get('/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', checks: { db: true, amqp: true } });
    assert.match(await (await get('/metrics')).text(), /smgw_process_resident_memory_bytes/);
  });

  it('answers without CORS, with no-store and nosniff, and no TRACE or OPTIONS', async () => {
    const answers = [
      await get('/api/v1/agencies', TOKEN),
      await get('/api/v1/agencies'),
      await get('/api/v1/messages/not-an-id', TOKEN),
      await get('/healthz'),
      await fetch(`${base}/api/v1/agencies`, {
        method: 'OPTIONS',
        headers: { origin: 'https://elsewhere.example', 'access-control-request-method': 'POST' },
      }),
      await fetch(`${base}/api/v1/agencies`, {
        headers: { origin: 'https://elsewhere.example', authorization: `Bearer ${TOKEN}` },
      }),
    ];
    for (const answer of answers) {
      assert.equal(answer.headers.get('cache-control'), 'no-store', answer.url);
      assert.equal(answer.headers.get('x-content-type-options'), 'nosniff', answer.url);
      assert.deepEqual(
        [...answer.headers.keys()].filter((name) => name.startsWith('access-control-')),
        [],
      );
    }
    assert.equal(answers[4]?.status, 404, 'no preflight answered');
    const traced = await new Promise<number | undefined>((resolve, reject) => {
      const req = httpRequest(`${base}/api/v1/agencies`, { method: 'TRACE' }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(traced, 404);
  });

  it('answers 400 for a malformed id and 404 for an unknown one', async () => {
    const bad = await get('/api/v1/messages/not-an-id', TOKEN);
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'BAD_MESSAGE_ID');
    assert.equal((await get('/api/v1/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV', TOKEN)).status, 404);
  });

  it('shows every stage, outcome, time and reason per recipient', async () => {
    const env = envelope();
    await recordMessage(db.pool, env);
    await recordEvent(db.pool, env.id, { stage: 'ingest', event: 'message.received', outcome: 'next' });
    await recordEvent(db.pool, env.id, {
      stage: 'deliver',
      event: 'recipient.deferred',
      outcome: 'retry',
      code: 'DELIVERY_DEFERRED',
      reason: '451 4.3.0 try later',
      recipient: 'leitung@behoerde.example',
    });
    await setRecipientState(db.pool, env.id, ['amt@behoerde.example'], 'delivered', '250 ok');
    await setRecipientState(db.pool, env.id, ['leitung@behoerde.example'], 'deferred', '451 4.3.0 try later');

    const res = await get(`/api/v1/messages/${env.id}`, TOKEN);
    assert.equal(res.status, 200);
    const trace = (await res.json()) as {
      id: string;
      recipients: { address: string; state: string }[];
      events: { stage: string; event: string; code: string | null; reason: string | null }[];
    };
    assert.equal(trace.id, env.id);
    assert.deepEqual(
      trace.recipients.map((r) => [r.address, r.state]),
      [
        ['amt@behoerde.example', 'delivered'],
        ['leitung@behoerde.example', 'deferred'],
      ],
    );
    assert.deepEqual(
      trace.events.map((e) => [e.stage, e.event, e.code]),
      [
        ['ingest', 'message.received', null],
        ['deliver', 'recipient.deferred', 'DELIVERY_DEFERRED'],
      ],
    );

    // The operator CLI prints the same trace.
    const { code, out } = await captureStdout(() =>
      runCli(['trace', env.id], { SMGW_ADMIN_URL: `${base}/api/v1`, SMGW_ADMIN_TOKEN: TOKEN }),
    );
    assert.equal(code, 0);
    assert.match(out, new RegExp(`message\\s+${env.id}`));
    assert.match(out, /deferred\s+leitung@behoerde\.example/);
    assert.match(out, /DELIVERY_DEFERRED: 451 4\.3\.0 try later/);
  });
});

describe('wrong bearer tokens', () => {
  let testAdmin: TestAdmin;

  before(async () => {
    testAdmin = await startTestAdmin(TOKEN);
  });
  after(async () => {
    await testAdmin.stop();
  });

  /** GET /quarantine from the given loopback address (another client), with the given token. */
  function getFrom(
    localAddress: string,
    port: number,
    token: string,
  ): Promise<{ status: number; retryAfter?: string; code?: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path: '/api/v1/quarantine',
          localAddress,
          headers: { authorization: `Bearer ${token}` },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            text += chunk;
          });
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              retryAfter: res.headers['retry-after'],
              code: (JSON.parse(text) as { error?: { code: string } }).error?.code,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  it(`turns a client away for a while after ${AUTH_FAILURES_PER_CLIENT} wrong tokens, the right one included; not others`, async () => {
    const admin = await testAdmin.startAnother({});
    // Calls without a token guess nothing and are not counted.
    for (let i = 0; i < AUTH_FAILURES_PER_CLIENT; i++) {
      assert.equal((await fetch(`http://127.0.0.1:${admin.port}/api/v1/quarantine`)).status, 401);
    }
    for (let i = 0; i < AUTH_FAILURES_PER_CLIENT; i++) {
      assert.equal((await getFrom('127.0.0.1', admin.port, `guess-${i}`)).status, 401);
    }
    const turnedAway = await getFrom('127.0.0.1', admin.port, TOKEN);
    assert.equal(turnedAway.status, 429);
    assert.equal(turnedAway.code, 'AUTH_RATE_LIMITED');
    assert.ok(Number(turnedAway.retryAfter) > 0);
    assert.equal((await getFrom('127.0.0.2', admin.port, TOKEN)).status, 200);
  });

  it('forgets a client’s wrong tokens once it gave the right one', async () => {
    const admin = await testAdmin.startAnother({});
    for (let round = 0; round < 2; round++) {
      for (let i = 1; i < AUTH_FAILURES_PER_CLIENT; i++) {
        assert.equal((await getFrom('127.0.0.1', admin.port, `guess-${i}`)).status, 401);
      }
      assert.equal((await getFrom('127.0.0.1', admin.port, TOKEN)).status, 200);
    }
  });
});

describe('counting wrong tokens per client', () => {
  const start = Date.parse('2026-12-06T10:00:00Z');

  it('blocks for the rest of the window from the first failure, then counts afresh', () => {
    const failures = createAuthFailures();
    for (let i = 1; i < AUTH_FAILURES_PER_CLIENT; i++) assert.equal(failures.failed('192.0.2.1', start + i - 1), false);
    assert.equal(failures.blockedFor('192.0.2.1', start + 100), 0);
    assert.equal(failures.failed('192.0.2.1', start + 100), true);
    assert.equal(failures.blockedFor('192.0.2.1', start + 100), AUTH_FAILURE_WINDOW_MS - 100);
    assert.equal(failures.blockedFor('192.0.2.9', start + 100), 0);
    assert.equal(failures.blockedFor('192.0.2.1', start + AUTH_FAILURE_WINDOW_MS), 0);
    assert.equal(failures.failed('192.0.2.1', start + AUTH_FAILURE_WINDOW_MS), false);
  });

  it('keeps at most the given number of clients, forgetting the oldest first', () => {
    const failures = createAuthFailures({ maxClients: 2 });
    for (const client of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) {
      for (let i = 0; i < AUTH_FAILURES_PER_CLIENT; i++) failures.failed(client, start);
    }
    assert.equal(failures.blockedFor('192.0.2.1', start), 0);
    assert.ok(failures.blockedFor('192.0.2.2', start) > 0);
    assert.ok(failures.blockedFor('192.0.2.3', start) > 0);
  });
});
