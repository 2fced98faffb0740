// New TLS sessions per client, per network and minute on both listeners, against the real PostgreSQL, RabbitMQ and
// Redis: a STARTTLS over the limit is answered 421 before any handshake (the server key signs nothing for it: the
// handshakes are counted in smtp-server's own log line of each one, "Connection upgraded to TLS"), other clients and
// the other port keep theirs, the next minute counts afresh, and a Redis that went away refuses, never lets through.
// Each test presents its clients from addresses of its own in 127.0.0.0/8 (Linux's loopback takes them all), outside
// this world's SMGW_SUBMISSION_NETWORKS. The windows are read by a test clock, so no minute turns in the middle.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@smgw/observability';
import { waitFor } from '@smgw/testing';
import type { RunningIngest } from '../src/service.ts';
import { startsTls } from '../src/smtp-listener.ts';
import { createTestWorld, type TestWorld } from './harness.ts';
import { SmtpTestClient } from './smtp-client.ts';

const MINUTE = 60_000;
const REFUSED = '421 4.7.0 Too many new TLS sessions from your address, try again later';
const REDIS_PORT = Number(new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379').port || 6379);

/** EHLO, STARTTLS and (after a 220) the handshake on a session of its own from `address`; the STARTTLS reply. */
async function startTlsFrom(port: number, address: string) {
  const { client, greeting } = await SmtpTestClient.open(port, address);
  assert.equal(greeting.code, 220);
  assert.equal((await client.command('EHLO client.example')).code, 250);
  const reply = await client.startTls();
  if (reply.code === 220) {
    assert.equal((await client.command('EHLO client.example')).code, 250, 'the session goes on inside TLS');
    await client.quit();
  } else {
    // Closed by the server after the 421: nothing more of this session.
    await client.closed;
  }
  return reply;
}

describe('new TLS sessions per client, per network and minute', () => {
  let world: TestWorld;
  let ingest: RunningIngest;
  let now = 1_000_000 * MINUTE;
  const logLines: Record<string, unknown>[] = [];
  /** Handshakes the server completed: smtp-server logs each one (tnx starttls). */
  const handshakes = () => logLines.filter((line) => line.tnx === 'starttls').length;
  const refusals = () => logLines.filter((line) => line.code === 'TLS_SESSION_RATE_EXCEEDED');

  before(async () => {
    world = await createTestWorld();
    const log = createLogger('ingest-test', 'info', { write: (line: string) => logLines.push(JSON.parse(line)) });
    ({ ingest } = await world.start(
      {
        SMGW_SUBMISSION_NETWORKS: '10.0.0.0/8',
        SMGW_SMTP_TLS_SESSIONS_PER_MINUTE: '3',
        SMGW_SMTP_TLS_SESSIONS_PER_MINUTE_PER_NETWORK: '5',
        SMGW_SUBMISSION_TLS_SESSIONS_PER_MINUTE: '2',
        SMGW_SUBMISSION_TLS_SESSIONS_PER_MINUTE_PER_NETWORK: '100',
      },
      log,
      { testOnlyClock: () => now },
    ));
  });
  after(() => world.close());

  it('answers the STARTTLS over the client limit 421 and closes, before any handshake; other clients and the submission port keep theirs', async () => {
    const before = handshakes();
    for (let i = 0; i < 3; i++) assert.equal((await startTlsFrom(ingest.inboundPort, '127.40.0.1')).code, 220);
    assert.equal(handshakes(), before + 3);

    for (let i = 0; i < 3; i++) {
      assert.equal((await startTlsFrom(ingest.inboundPort, '127.40.0.1')).text, REFUSED);
    }
    assert.equal(handshakes(), before + 3, 'no handshake for a refused STARTTLS');
    assert.deepEqual(
      refusals().map((line) => [line.listener, line.ip, line.limit, line.max]),
      Array(3).fill(['inbound', '127.40.0.1', 'client', 3]),
    );

    // A client of another network, and the same client on the submission port (a count and a limit of its own).
    assert.equal((await startTlsFrom(ingest.inboundPort, '127.41.0.1')).code, 220);
    assert.equal((await startTlsFrom(ingest.submissionPort, '127.40.0.1')).code, 220);
    assert.equal((await startTlsFrom(ingest.submissionPort, '127.40.0.1')).code, 220);
    assert.equal((await startTlsFrom(ingest.submissionPort, '127.40.0.1')).text, REFUSED);
    assert.equal(handshakes(), before + 6);

    const metrics = await (await fetch(`http://127.0.0.1:${ingest.healthPort}/metrics`)).text();
    assert.match(metrics, /smgw_ingest_tls_sessions_limited_total\{listener="inbound",limit="client"[^}]*\} 3/);
    assert.match(metrics, /smgw_ingest_tls_sessions_limited_total\{listener="submission",limit="client"[^}]*\} 1/);
  });

  it("refuses every client of a network over the network's limit, each under its own limit", async () => {
    now += MINUTE;
    const before = handshakes();
    for (const address of ['127.42.0.1', '127.42.0.1', '127.42.0.1', '127.42.0.2', '127.42.0.3']) {
      assert.equal((await startTlsFrom(ingest.inboundPort, address)).code, 220);
    }
    assert.equal((await startTlsFrom(ingest.inboundPort, '127.42.0.4')).text, REFUSED);
    assert.equal(refusals().at(-1)?.limit, 'network');
    assert.equal((await startTlsFrom(ingest.inboundPort, '127.43.0.4')).code, 220);
    assert.equal(handshakes(), before + 6);
  });

  it('takes new TLS sessions from a refused client again once its minute has passed', async () => {
    now += MINUTE;
    for (let i = 0; i < 3; i++) assert.equal((await startTlsFrom(ingest.inboundPort, '127.44.0.1')).code, 220);
    assert.equal((await startTlsFrom(ingest.inboundPort, '127.44.0.1')).text, REFUSED);
    now += MINUTE;
    assert.equal((await startTlsFrom(ingest.inboundPort, '127.44.0.1')).code, 220);
  });

  it('counts only a STARTTLS that starts a handshake (no argument), whatever its case', () => {
    assert.equal(startsTls(Buffer.from('STARTTLS')), true);
    assert.equal(startsTls(Buffer.from('starttls ')), true);
    assert.equal(startsTls(Buffer.from('STARTTLS now')), false);
    assert.equal(startsTls(Buffer.from('STARTTLS\tnow')), false);
    assert.equal(startsTls(Buffer.from(' STARTTLS')), false);
    assert.equal(startsTls(Buffer.from('NOOP')), false);
  });
});

describe('new TLS sessions when Redis goes away during a session', () => {
  let world: TestWorld;
  let ingest: RunningIngest;
  const links = new Set<net.Socket>();
  const logLines: Record<string, unknown>[] = [];
  // Redis reached through a proxy that the test cuts.
  const proxy = net.createServer((inbound) => {
    const outbound = net.connect(REDIS_PORT, '127.0.0.1');
    for (const socket of [inbound, outbound]) {
      links.add(socket);
      socket.on('error', () => {});
      socket.once('close', () => links.delete(socket));
    }
    inbound.pipe(outbound).pipe(inbound);
  });

  before(async () => {
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const { port } = proxy.address() as net.AddressInfo;
    world = await createTestWorld();
    const log = createLogger('ingest-test', 'info', { write: (line: string) => logLines.push(JSON.parse(line)) });
    ({ ingest } = await world.start(
      { SMGW_SUBMISSION_NETWORKS: '10.0.0.0/8', REDIS_URL: `redis://127.0.0.1:${port}` },
      log,
    ));
  });
  after(async () => {
    await world.close();
    proxy.close();
  });

  it('answers STARTTLS 421 4.3.0 and starts no handshake (never a session unchecked)', async () => {
    const { client } = await SmtpTestClient.open(ingest.inboundPort, '127.45.0.1');
    // EHLO takes a lease of command numbers, so STARTTLS is counted without Redis; its TLS session is not.
    assert.equal((await client.command('EHLO client.example')).code, 250);
    proxy.close();
    for (const socket of links) socket.destroy();
    await waitFor('ingest to see Redis gone', () => logLines.some((line) => line.code === 'REDIS_UNAVAILABLE'));
    assert.equal((await client.startTls()).text, '421 4.3.0 Temporary failure, please retry');
    await client.closed;
    assert.equal(logLines.filter((line) => line.tnx === 'starttls').length, 0);
  });
});
