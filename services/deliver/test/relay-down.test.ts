// The agencies' mail servers are down: deliver keeps the message and delivers it once one of them listens again.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort } from '@smgw/testing';
import { sampleMessage } from './fixtures.ts';
import {
  receivedFor,
  type SmtpSink,
  startSmtpSink,
  startWorld,
  submit,
  trace,
  type World,
  waitFor,
  waitForState,
} from './harness.ts';

describe('deliver with the relay down', () => {
  let world: World;
  let sink: SmtpSink | undefined;
  let laterPort: number;

  before(async () => {
    const deadPort = await freePort();
    laterPort = await freePort();
    world = await startWorld({
      // Two relays, tried in order: the first never answers, the second comes up during the test.
      SMGW_INTERNAL_RELAY: `127.0.0.1:${deadPort},127.0.0.1:${laterPort}`,
      SMGW_DELIVER_RETRY_LADDER: '200ms,500ms,1s,2s,5s',
    });
  });

  after(async () => {
    await world?.close();
    await sink?.close();
  });

  it('defers while no relay listens, then delivers when one does', async () => {
    const message = sampleMessage('Relais zurück');
    const envelope = await submit(world, message, { recipients: ['eingang@behoerde.example'] });
    const deferred = await waitFor('a deferral in the trace', async () =>
      (await trace(world, envelope.id)).events.find((e) => e.event === 'recipient.deferred'),
    );
    assert.equal(deferred.code, 'DELIVERY_DEFERRED');
    assert.equal((deferred.data as { category?: string }).category, 'network');

    sink = await startSmtpSink({ port: laterPort });
    await waitForState(world, envelope.id, 'eingang@behoerde.example', 'delivered');
    const received = receivedFor(sink, 'eingang@behoerde.example');
    assert.equal(received.length, 1);
    assert.ok(received[0]?.raw.equals(message));
  });
});
