// Notices of changes (LISTEN/NOTIFY) against the real PostgreSQL: heard while listening, and a lost connection is
// told by `listening` and `generation` (a cache must not trust what it read before), then mended by itself.
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type ChangeListener, createPool, listenForChanges, type Pool } from '../src/index.ts';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/smgw';

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('listenForChanges', () => {
  let admin: Pool;
  const channel = `smgw_test_${process.pid}`;

  /** Sends a notice on the channel and waits until `changes` heard it. */
  async function noticeHeard(changes: ChangeListener, what: string): Promise<void> {
    const before = changes.generation;
    await admin.query(`select pg_notify($1, '')`, [channel]);
    await until(what, () => changes.generation > before);
  }

  before(() => {
    admin = createPool({ url, max: 1, applicationName: 'smgw-db-test-admin' });
  });
  after(async () => {
    await admin.end();
  });

  it('hears a notice, says it lost the connection, and listens again by itself', async () => {
    const errors: Error[] = [];
    const changes = listenForChanges({
      url,
      channel,
      applicationName: 'smgw-listener-test',
      retryMs: 50,
      onError: (err) => errors.push(err),
    });
    try {
      await until('listening', () => changes.listening);
      await noticeHeard(changes, 'the notice');

      // Nothing else moves it: a notice on another channel is not ours.
      const heard = changes.generation;
      await admin.query(`select pg_notify($1, '')`, [`${channel}_other`]);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(changes.generation, heard);

      // The listening session ends (a restart, a failover): not listening, a new generation, then back.
      await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1`, [
        'smgw-listener-test',
      ]);
      await until('the loss to be seen', () => !changes.listening);
      assert.ok(changes.generation > heard);
      assert.ok(errors.length >= 1);
      await until('listening again', () => changes.listening);
      await noticeHeard(changes, 'a notice after reconnecting');
    } finally {
      await changes.close();
    }
    assert.equal(changes.listening, false);
    const { rows } = await admin.query(`select count(*)::int as n from pg_stat_activity where application_name = $1`, [
      'smgw-listener-test',
    ]);
    assert.equal(rows[0].n, 0, 'closed: no session left');
  });

  it('keeps trying while the database cannot be reached, without throwing', async () => {
    const errors: Error[] = [];
    const changes = listenForChanges({
      url: 'postgres://postgres@127.0.0.1:1/smgw',
      channel,
      retryMs: 20,
      maxRetryMs: 40,
      onError: (err) => errors.push(err),
    });
    await until('two failed tries', () => errors.length >= 2);
    assert.equal(changes.listening, false);
    await changes.close();
    const tries = errors.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(errors.length, tries, 'no try after close');
  });

  it('counts a connection that stops answering without a word as lost, and listens again', async () => {
    // A proxy to PostgreSQL that can go silent: it stops passing bytes but closes nothing (a half-open connection).
    const database = new URL(url);
    let silent = false;
    const sockets: Socket[] = [];
    const proxy = createServer((client) => {
      const upstream = connect(Number(database.port || 5432), database.hostname);
      sockets.push(client, upstream);
      client.on('data', (data) => {
        if (!silent) upstream.write(data);
      });
      upstream.on('data', (data) => {
        if (!silent) client.write(data);
      });
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const port = (proxy.address() as { port: number }).port;
    const viaProxy = new URL(url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(port);
    const errors: Error[] = [];
    const changes = listenForChanges({
      url: viaProxy.toString(),
      channel,
      retryMs: 50,
      checkEveryMs: 100,
      checkTimeoutMs: 200,
      onError: (err) => errors.push(err),
    });
    try {
      await until('listening', () => changes.listening);
      silent = true;
      await until('the silence to be noticed', () => !changes.listening);
      assert.match(String(errors[0]?.message), /did not answer/);
      silent = false;
      await until('listening again', () => changes.listening);
      await noticeHeard(changes, 'a notice after reconnecting');
    } finally {
      await changes.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('refuses a channel that is not a plain identifier', () => {
    assert.throws(() => listenForChanges({ url, channel: 'x; drop table y' }), /bad channel/);
  });
});
