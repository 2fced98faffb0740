// The broker drops our connection (as on a broker restart or a network cut): the client reconnects by itself,
// declares the topology again, restarts its consumers, and publishing works again.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { advance, workQueue } from '@smgw/envelope';
import { connectMq, type Mq, next } from '@smgw/mq';
import { createTestVhost, type TestVhost, waitFor } from '@smgw/testing';
import {
  hasEnvelopeId,
  managementApi,
  RawBroker,
  silentLogger,
  testEnvelope,
  uniqueConnectionName,
} from './fixtures.ts';

interface ConnectionInfo {
  name: string;
  client_properties?: { connection_name?: string };
}

/** The broker's name ("ip:port -> ip:port") of our client's connection, once the management API lists it. */
async function brokerConnection(vhost: string, connectionName: string, other = ''): Promise<string> {
  return waitFor(
    `a connection named ${connectionName}`,
    async () => {
      const res = await managementApi(`/vhosts/${encodeURIComponent(vhost)}/connections`);
      if (!res.ok) return undefined;
      const list = (await res.json()) as ConnectionInfo[];
      return list.find((c) => c.client_properties?.connection_name === connectionName && c.name !== other)?.name;
    },
    { timeoutMs: 20_000, intervalMs: 250 },
  );
}

/**
 * Closes our client's connection from the broker's side (management API), as an operator or a restart would, and
 * waits until the client is connected again (a new connection with the same client name) and ready.
 */
async function dropConnectionAndWaitForRecovery(vhost: string, connectionName: string, mq: Mq): Promise<void> {
  const dropped = await brokerConnection(vhost, connectionName);
  const res = await managementApi(`/connections/${encodeURIComponent(dropped)}`, 'DELETE');
  assert.ok(res.ok, `DELETE connection answered HTTP ${res.status}`);
  await brokerConnection(vhost, connectionName, dropped);
  await waitFor('the client to be ready again', () => mq.isReady(), { timeoutMs: 20_000 });
}

describe('connection loss', () => {
  let vhost: TestVhost;
  let mq: Mq;
  let raw: RawBroker;
  const connectionName = uniqueConnectionName('reconnect');

  before(async () => {
    vhost = await createTestVhost();
    mq = await connectMq({ url: vhost.url, logger: silentLogger, connectionName });
    await mq.declareTopology({ scan: [200] });
    raw = await RawBroker.open(vhost.url);
  });
  after(async () => {
    await mq.close();
    await raw.close();
    await vhost.drop();
  });

  it('reconnects after the broker closes the connection; the consumer resumes and publishing works again', async () => {
    const consumer = await mq.consume('scan', async (envelope) => next(advance(envelope, 'scan')), {
      retryLadder: [200],
      prefetch: 2,
    });
    try {
      const before = testEnvelope(['scan', 'deliver']);
      await mq.publish(before);
      await raw.take(workQueue('deliver'), hasEnvelopeId(before.id), 'the first envelope passed on');

      await dropConnectionAndWaitForRecovery(vhost.name, connectionName, mq);

      const afterwards = testEnvelope(['scan', 'deliver']);
      await mq.publish(afterwards);
      await raw.take(workQueue('deliver'), hasEnvelopeId(afterwards.id), 'the second envelope passed on');
      assert.equal(consumer.inFlight(), 0);
    } finally {
      await consumer.drain();
    }
  });

  it('declares the topology again on the new connection', async () => {
    // Queues are durable, so re-declaring shows only when one was lost meanwhile: delete one, drop, reconnect.
    await raw.channel.deleteQueue(workQueue('verify'));
    await dropConnectionAndWaitForRecovery(vhost.name, connectionName, mq);
    await raw.channel.checkQueue(workQueue('verify'));
    await mq.publish(testEnvelope(['verify']));
  });
});
