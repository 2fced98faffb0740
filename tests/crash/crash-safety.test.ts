// Crash safety, scored the way RabbitMQ's Jepsen tests score a run: 500 messages go in over SMTP while ingest,
// scan and deliver are killed with SIGKILL and restarted and the broker itself is restarted. The client behaves like an MTA:
// a message that gets no 250 is sent again after a pause, as a new attempt with its own id. Every attempt that got
// a 250 must arrive exactly once; an attempt that did not get one may arrive ("recovered") or not.
// Runs alone (./smgw test runs tests/crash after everything else) because it restarts the shared broker.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ServiceProcess, startTestGateway, type TestGateway, waitFor } from '@smgw/testing';
import nodemailer from 'nodemailer';
import { restartRabbitMq } from './rabbitmq-control.ts';

const MESSAGES = Number(process.env.SMGW_CRASH_MESSAGES ?? 500);
const CONCURRENCY = 16;
const PREFETCH = 16;

interface Score {
  sent: number;
  acked: number;
  delivered: number;
  lost: string[];
  duplicated: string[];
  unexpected: string[];
  recovered: number;
}

describe('crash safety', { timeout: 20 * 60_000 }, () => {
  let gw: TestGateway;
  /** Attempt ids `<seq>.<try>`. */
  const acked = new Set<string>();
  const attempted = new Set<string>();
  const chaos: string[] = [];

  before(async () => {
    gw = await startTestGateway({
      services: ['ingest', 'encrypt', 'scan', 'deliver'],
      env: {
        SMGW_DELIVER_RETRY_LADDER: '500ms,1s,1s,2s,2s,5s,5s,10s,10s,30s',
        SMGW_STAGE_RETRY_LADDER: '500ms,1s,2s,5s,10s',
        SMGW_SMTP_MAX_CONNECTIONS_PER_CLIENT: '1000',
        SMGW_SMTP_COMMANDS_PER_MINUTE: '1000000',
        SMGW_PREFETCH: String(PREFETCH),
      },
    });
  });
  after(async () => {
    await gw?.close();
  });

  /** One SMTP transaction; true when it got a 250. */
  async function attempt(id: string, seq: number): Promise<boolean> {
    attempted.add(id);
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: gw.inboundPort,
      ignoreTLS: true,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
    });
    try {
      const info = await transport.sendMail({
        envelope: { from: 'jepsen@example.org', to: [`amt${seq % 7}@behoerde.example`] },
        raw: [
          'From: jepsen@example.org',
          `To: amt${seq % 7}@behoerde.example`,
          `Subject: crash run ${id}`,
          `Message-ID: <attempt-${id}@crash.test>`,
          `X-Attempt: ${id}`,
          '',
          `payload ${id} ${'x'.repeat(2000)}`,
          '',
        ].join('\r\n'),
      });
      if (!/^250 /.test(info.response)) return false;
      acked.add(id);
      return true;
    } catch {
      return false; // no 250: indeterminate, like any MTA the client tries again later
    } finally {
      transport.close();
    }
  }

  async function sendOne(seq: number): Promise<void> {
    for (let tryNo = 1; tryNo <= 200; tryNo++) {
      if (await attempt(`${seq}.${tryNo}`, seq)) return;
      await sleep(250); // the gateway is down or refusing (451): back off before the next attempt
    }
  }

  async function sendAll(): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < MESSAGES) await sendOne(next++);
      }),
    );
  }

  /** Kills and restarts while the load runs, triggered by how many messages have been accepted so far. */
  async function causeChaos(): Promise<void> {
    const at = (n: number) => waitFor(`${n} accepted messages`, () => acked.size >= n, { timeoutMs: 300_000 });
    const ingest = gw.services.ingest as ServiceProcess;
    const deliver = gw.services.deliver as ServiceProcess;
    const scan = gw.services.scan as ServiceProcess;
    const encrypt = gw.services.encrypt as ServiceProcess;
    await at(Math.floor(MESSAGES * 0.15));
    await ingest.crash();
    chaos.push(`kill -9 ingest at ${acked.size} acked`);
    await ingest.start();
    await at(Math.floor(MESSAGES * 0.25));
    chaos.push(`RabbitMQ restart at ${acked.size} acked`);
    await restartRabbitMq();
    await at(Math.floor(MESSAGES * 0.35));
    await encrypt.crash();
    chaos.push(`kill -9 encrypt at ${acked.size} acked`);
    await encrypt.start();
    await at(Math.floor(MESSAGES * 0.45));
    await deliver.crash();
    chaos.push(`kill -9 deliver at ${acked.size} acked`);
    await deliver.start();
    await at(Math.floor(MESSAGES * 0.55));
    await scan.crash();
    chaos.push(`kill -9 scan at ${acked.size} acked`);
    await scan.start();
    await at(Math.floor(MESSAGES * 0.65));
    await Promise.all([ingest.crash(), deliver.crash()]);
    chaos.push(`kill -9 ingest and deliver at ${acked.size} acked`);
    await Promise.all([ingest.start(), deliver.start()]);
    await at(Math.floor(MESSAGES * 0.8));
    await deliver.crash();
    chaos.push(`kill -9 deliver at ${acked.size} acked`);
    await deliver.start();
  }

  function score(): Score {
    const arrivals = new Map<string, number>();
    const unexpected: string[] = [];
    for (const m of gw.relay.messages) {
      const id = /^X-Attempt: (\d+\.\d+)\r?$/m.exec(m.raw.toString('latin1'))?.[1];
      if (id === undefined || !attempted.has(id)) {
        unexpected.push(id ?? m.raw.subarray(0, 80).toString());
        continue;
      }
      arrivals.set(id, (arrivals.get(id) ?? 0) + 1);
    }
    const lost = [...acked].filter((s) => !arrivals.has(s));
    const duplicated = [...arrivals].filter(([, n]) => n > 1).map(([s]) => s);
    const recovered = [...arrivals.keys()].filter((s) => !acked.has(s)).length;
    const delivered = [...acked].filter((s) => arrivals.get(s) === 1).length;
    return { sent: attempted.size, acked: acked.size, delivered, lost, duplicated, unexpected, recovered };
  }

  it('delivers every message that got a 250 exactly once through kill -9 of ingest and deliver and a broker restart', async () => {
    const load = sendAll();
    await causeChaos();
    await load;

    // Every accepted message arrives, then the queues go quiet (no late duplicates still on their way).
    await waitFor(
      'every accepted message at the relay',
      () => {
        const s = score();
        return s.lost.length === 0;
      },
      { timeoutMs: 10 * 60_000, intervalMs: 500 },
    ).catch(() => {});
    await waitFor('smgw.deliver to drain', async () => (await gw.vhost.queueDepth('smgw.deliver')) === 0, {
      timeoutMs: 120_000,
      intervalMs: 1000,
    }).catch(() => {});
    // A short quiet period so a late duplicate still in flight would be counted too.
    await sleep(3000);

    const s = score();
    const report = [
      'crash-safety score (Jepsen-style)',
      `  chaos:       ${chaos.join('; ')}`,
      `  messages:    ${MESSAGES}`,
      `  attempts:    ${s.sent}`,
      `  acked (250): ${s.acked}`,
      `  delivered:   ${s.delivered} (acked, arrived exactly once)`,
      `  lost:        ${s.lost.length}${s.lost.length ? ` ${JSON.stringify(s.lost.slice(0, 20))}` : ''}`,
      `  duplicated:  ${s.duplicated.length}${s.duplicated.length ? ` ${JSON.stringify(s.duplicated.slice(0, 20))}` : ''}`,
      `  unexpected:  ${s.unexpected.length}`,
      `  recovered:   ${s.recovered} (no 250 reached the client, but the message was durable and arrived)`,
    ].join('\n');
    process.stdout.write(`${report}\n`);

    assert.equal(s.acked, MESSAGES, `every message is accepted in the end:\n${report}`);
    assert.deepEqual(s.lost, [], `lost messages:\n${report}`);
    assert.deepEqual(s.unexpected, [], `unexpected messages:\n${report}`);
    // The one window that can duplicate: deliver killed after the relay's 250 and before it committed the
    // delivery record. It is bounded by what deliver had in flight when killed (prefetch) per deliver crash.
    const deliverCrashes = chaos.filter((c) => c.includes('deliver')).length + 1; // + the broker restart
    assert.ok(
      s.duplicated.length <= deliverCrashes * PREFETCH,
      `more duplicates than the crash window allows:\n${report}`,
    );
  });
});
