// The topology in code and the definitions file in deploy/ describe the same queues, and declaring is idempotent.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { EXCHANGE, workQueue } from '@smgw/envelope';
import { connectMq, exportDefinitions, type Mq, MqError, topologyFor } from '@smgw/mq';
import { createTestVhost, type TestVhost } from '@smgw/testing';
import { defaultRetryLadders } from '../src/default-ladders.ts';
import { managementApi, RawBroker, silentLogger, testEnvelope, uniqueConnectionName } from './fixtures.ts';

const LADDERS = { scan: [200, 1000], deliver: [300_000, 600_000, 600_000], mailbox: [90_000] };

interface ListedQueue {
  name: string;
  durable: boolean;
  auto_delete: boolean;
  type: string;
  arguments: Record<string, unknown>;
}

interface ListedBinding {
  source: string;
  destination: string;
  destination_type: string;
  routing_key: string;
}

async function listJson<T>(path: string): Promise<T> {
  const res = await managementApi(path);
  assert.ok(res.ok, `GET ${path} answered HTTP ${res.status}`);
  return (await res.json()) as T;
}

describe('topology', () => {
  const vhosts: TestVhost[] = [];
  const clients: Mq[] = [];

  async function freshClient(): Promise<{ vhost: TestVhost; mq: Mq }> {
    const vhost = await createTestVhost();
    vhosts.push(vhost);
    const mq = await connectMq({ url: vhost.url, logger: silentLogger, connectionName: uniqueConnectionName('topo') });
    clients.push(mq);
    return { vhost, mq };
  }

  let declared: { vhost: TestVhost; mq: Mq };

  before(async () => {
    declared = await freshClient();
  });
  after(async () => {
    for (const mq of clients) await mq.close();
    for (const vhost of vhosts) await vhost.drop();
  });

  it('declares every queue, and declaring it twice (as every replica does) is harmless', async () => {
    await declared.mq.declareTopology(LADDERS);
    await declared.mq.declareTopology(LADDERS);
    const raw = await RawBroker.open(declared.vhost.url);
    try {
      for (const queue of topologyFor(LADDERS).queues) await raw.channel.checkQueue(queue.name);
    } finally {
      await raw.close();
    }
    await declared.mq.publish(testEnvelope(['scan']));
  });

  it('exports definitions with exactly the queues, arguments and bindings the broker got from declareTopology', async () => {
    const exported = exportDefinitions(LADDERS);
    const queues = await listJson<ListedQueue[]>(`/queues/${encodeURIComponent(declared.vhost.name)}`);
    const listed = queues
      .map((q) => ({ name: q.name, durable: q.durable, auto_delete: q.auto_delete, arguments: q.arguments }))
      .sort((a, b) => a.name.localeCompare(b.name));
    const expected = exported.queues
      .map((q) => ({ name: q.name, durable: q.durable, auto_delete: q.auto_delete, arguments: q.arguments }))
      .sort((a, b) => a.name.localeCompare(b.name));
    assert.deepEqual(listed, expected);
    assert.ok(queues.every((q) => q.type === 'quorum'));

    const bindings = await listJson<ListedBinding[]>(`/bindings/${encodeURIComponent(declared.vhost.name)}`);
    const listedBindings = bindings
      .filter((b) => b.source === EXCHANGE)
      .map((b) => `${b.destination_type}:${b.destination}<-${b.routing_key}`)
      .sort();
    const expectedBindings = exported.bindings
      .map((b) => `${b.destination_type}:${b.destination}<-${b.routing_key}`)
      .sort();
    assert.deepEqual(listedBindings, expectedBindings);
  });

  it('lets services declare their topology on a broker loaded from the exported definitions', async () => {
    const { vhost, mq } = await freshClient();
    const imported = await managementApi(
      `/definitions/${encodeURIComponent(vhost.name)}`,
      'POST',
      exportDefinitions(LADDERS),
    );
    assert.ok(imported.ok, `definitions import answered HTTP ${imported.status}: ${await imported.text()}`);
    const queues = await listJson<ListedQueue[]>(`/queues/${encodeURIComponent(vhost.name)}`);
    assert.deepEqual(
      queues.map((q) => q.name).sort(),
      topologyFor(LADDERS)
        .queues.map((q) => q.name)
        .sort(),
    );
    // a single differing argument would make the broker refuse this with PRECONDITION_FAILED
    await mq.declareTopology(LADDERS);
    await mq.publish(testEnvelope(['deliver']));
  });

  it('fails with MQ_TOPOLOGY_FAILED when a queue exists with other arguments', async () => {
    const { vhost, mq } = await freshClient();
    const raw = await RawBroker.open(vhost.url);
    try {
      await raw.channel.assertQueue(workQueue('scan'), { durable: true }); // a classic queue
    } finally {
      await raw.close();
    }
    await assert.rejects(mq.declareTopology(LADDERS), (err: unknown) => {
      assert.ok(err instanceof MqError);
      assert.equal(err.code, 'MQ_TOPOLOGY_FAILED');
      assert.match(err.message, /PRECONDITION_FAILED/);
      return true;
    });
    assert.equal(mq.isReady(), false);
  });

  it('keeps deploy/rabbitmq/definitions.json in step with the code (regenerate with export-definitions.ts)', () => {
    const file = new URL('../../../deploy/rabbitmq/definitions.json', import.meta.url);
    const committed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    assert.deepEqual(committed, exportDefinitions(defaultRetryLadders()));
  });

  it('refuses a retry ladder a queue TTL cannot hold', async () => {
    await assert.rejects(
      declared.mq.declareTopology({ scan: [0] }),
      (err: unknown) => err instanceof MqError && err.code === 'MQ_INVALID_OPTIONS',
    );
    await assert.rejects(
      declared.mq.declareTopology({ scan: [1.5] }),
      (err: unknown) => err instanceof MqError && err.code === 'MQ_INVALID_OPTIONS',
    );
  });
});
