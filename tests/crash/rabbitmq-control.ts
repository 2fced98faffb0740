import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { waitFor } from '@smgw/testing';

const run = promisify(execFile);

/**
 * A full broker restart: RabbitMQ is shut down (every connection drops, nothing is kept in memory) and started
 * again the way the machine starts it. Quorum queues come back from disk.
 */
export async function restartRabbitMq(): Promise<void> {
  await run('rabbitmqctl', ['shutdown'], { timeout: 120_000 }).catch(() => {});
  await run('rabbitmq-server', ['-detached'], { timeout: 120_000 });
  // -detached returns before the node has registered; await_startup fails until it has.
  await waitFor(
    'RabbitMQ to start',
    async () => {
      await run('rabbitmqctl', ['await_startup', '--timeout', '120'], { timeout: 150_000 });
      return true;
    },
    { timeoutMs: 180_000, intervalMs: 1000 },
  );
  // The management API (vhosts, queue depths) comes up with the broker's plugins.
  await waitFor(
    'the RabbitMQ management API',
    async () =>
      (
        await fetch('http://127.0.0.1:15672/api/overview', {
          headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
        }).catch(() => undefined)
      )?.ok,
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}
