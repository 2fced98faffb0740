// The bench's "floor" system: what the gateway's design costs per inbound message before the gateway does any of its
// own work. Two kinds of process (floor-stage.ts) on the run's own PostgreSQL, RabbitMQ and clamd: a receiver doing
// SMTP in, the clamd scan, the commit of the message's row and the confirmed publish before its 250; and relayers
// (as many as the gateway's deliver replicas) doing the consume, the claim, the relay and the outcome before the
// ack. Three statements per message, as the gateway's inbound path has, one publish and confirm, one queue hop. What
// the gateway spends beyond this system is its own code; what this system spends is the price of the design's
// promises (250 after commit and confirm, ack after the outcome is committed) with these libraries on this machine.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from '@smgw/testing';
import amqp from 'amqplib';
import pg from 'pg';
import { portOpen } from './smtp-tools.ts';

const STAGE = fileURLToPath(new URL('./floor-stage.ts', import.meta.url));
const SCHEMA = 'bench_floor';
const QUEUE = 'bench-floor';

export interface FloorOptions {
  /** DATABASE_URL, AMQP_URL and CLAMD_URL of the run's servers. */
  env: Record<string, string>;
  relayPort: number;
  relayers: number;
  /** Deliveries in flight per relayer (the gateway's SMGW_PREFETCH). */
  prefetch: number;
  /** Rows, claims and outcomes written in batches (floor-stage.ts, FLOOR_BATCH). */
  batch: boolean;
  /** Extra NODE_OPTIONS (the bench's --cpu-prof). */
  nodeOptions?: string;
}

export interface FloorInstance {
  port: number;
  /** Pids of the receiver and the relayers. */
  pids(): { receive: number[]; relay: number[] };
  stop(): Promise<void>;
}

export async function startFloor(o: FloorOptions): Promise<FloorInstance> {
  const db = new pg.Client({ connectionString: o.env.DATABASE_URL });
  await db.connect();
  await db.query(`create schema if not exists ${SCHEMA}`);
  await db.query(
    `create table if not exists ${SCHEMA}.messages (id uuid primary key, sender text not null,
       recipients text[] not null, state text not null)`,
  );
  await db.query(`create table if not exists ${SCHEMA}.bodies (id uuid primary key, body bytea not null)`);
  await db.end();
  const broker = await amqp.connect(o.env.AMQP_URL as string);
  const channel = await broker.createChannel();
  await channel.assertQueue(QUEUE, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await broker.close();

  const port = await freePort();
  const children: { role: 'receive' | 'relay'; child: ChildProcess }[] = [];
  const start = (role: 'receive' | 'relay') => {
    const child = spawn(process.execPath, [STAGE, role], {
      env: {
        ...process.env,
        ...o.env,
        FLOOR_PORT: String(port),
        FLOOR_RELAY_PORT: String(o.relayPort),
        FLOOR_QUEUE: QUEUE,
        FLOOR_SCHEMA: SCHEMA,
        FLOOR_PREFETCH: String(o.prefetch),
        FLOOR_BATCH: o.batch ? '1' : '0',
        ...(o.nodeOptions ? { NODE_OPTIONS: o.nodeOptions } : {}),
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push({ role, child });
  };
  start('receive');
  for (let i = 0; i < o.relayers; i++) start('relay');
  await waitFor('the floor receiver to listen', () => portOpen(port), { timeoutMs: 60_000, intervalMs: 100 });
  const pidsOf = (role: 'receive' | 'relay') =>
    children.filter((c) => c.role === role && c.child.pid !== undefined).map((c) => c.child.pid as number);
  return {
    port,
    pids: () => ({ receive: pidsOf('receive'), relay: pidsOf('relay') }),
    async stop() {
      await Promise.all(
        children.map(async ({ child }) => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM');
          await exited;
        }),
      );
    },
  };
}
