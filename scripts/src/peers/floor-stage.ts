// One process of the bench's "floor" system (see floor.ts): only the steps the gateway's design takes for every
// inbound message, with the same libraries and none of the gateway's other work (no DNS checks, no limits in Redis,
// no encryption at rest, no trace events, no envelope beyond the message's id).
//   node floor-stage.ts receive   SMTP in (smtp-server), a clamd scan of the whole message, the message's row with
//                                 its contents committed, its id published to a quorum queue and confirmed, then 250
//                                 (infected mail: its row kept as quarantined, nothing published)
//   node floor-stage.ts relay     consume (prefetch as deliver's), claim the row (returning the contents), relay over
//                                 a pooled SMTP connection (nodemailer), record the outcome, ack
// FLOOR_BATCH=1: each process writes in batches: the rows of every message that waits while a statement runs go in
// the next statement (a commit for many: group commit), the same for the relayers' claims and outcomes. No message
// waits for a batch to fill: a lone message is its own batch.
// Settings come from the environment: FLOOR_PORT, FLOOR_RELAY_PORT, FLOOR_QUEUE, FLOOR_SCHEMA, FLOOR_PREFETCH,
// FLOOR_BATCH, DATABASE_URL, AMQP_URL, CLAMD_URL.
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { createClamdPool } from '@smgw/clamd';
import { countBuffersInHeapLimit } from '@smgw/observability';
import amqp from 'amqplib';
import nodemailer from 'nodemailer';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
// The collector's setting of every gateway service (runService), so the floor compares like with like.
countBuffersInHeapLimit();
const role = process.argv[2];
const queue = env('FLOOR_QUEUE');
const messages = `${env('FLOOR_SCHEMA')}.messages`;
const bodies = `${env('FLOOR_SCHEMA')}.bodies`;
const MAX_BYTES = 50 * 1024 * 1024;
const BATCH = process.env.FLOOR_BATCH === '1';

/**
 * `run` for one item at a time, or (FLOOR_BATCH) for every item queued while the call before ran; `run` answers each
 * item in order. The gateway's groupCommits (@smgw/db) does the same for writes without an answer, and writes a
 * failed batch again item by item; the floor's claims need their answers, and the floor has no bad rows.
 */
function batched<T, R>(run: (items: T[]) => Promise<R[]>): (item: T) => Promise<R> {
  if (!BATCH) return async (item) => (await run([item]))[0] as R;
  let queued: { item: T; resolve: (result: R) => void; reject: (err: unknown) => void }[] = [];
  let running = false;
  const drain = async () => {
    running = true;
    while (queued.length > 0) {
      const batch = queued;
      queued = [];
      try {
        const results = await run(batch.map((b) => b.item));
        for (const [i, b] of batch.entries()) b.resolve(results[i] as R);
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    running = false;
  };
  return (item) =>
    new Promise<R>((resolve, reject) => {
      queued.push({ item, resolve, reject });
      if (!running) void drain();
    });
}

/** `(${first}, …), (…)`: n rows of `width` parameters, numbered from $1. */
const rowsOf = (n: number, columns: (p: (k: number) => string) => string, width: number) =>
  Array.from({ length: n }, (_, i) => `(${columns((k) => `$${i * width + k}`)})`).join(', ');

const pool = new pg.Pool({ connectionString: env('DATABASE_URL'), max: 20 });
const connection = await amqp.connect(env('AMQP_URL'));
const channel = await connection.createConfirmChannel();

if (role === 'receive') {
  const clamd = createClamdPool({ url: env('CLAMD_URL'), maxSessions: 20 });
  const publishConfirmed = (id: string) =>
    new Promise<void>((resolve, reject) => {
      channel.sendToQueue(queue, Buffer.from(id), { persistent: true, mandatory: true }, (err) =>
        err ? reject(err) : resolve(),
      );
    });
  // One round trip: the rows and their contents (a table of their own, as the gateway's blobs, so that the claim's
  // and the outcome's updates do not rewrite them), as a prepared statement (one per batch size).
  const record = batched(async (rows: { id: string; from: string; to: string[]; body: Buffer; state: string }[]) => {
    await pool.query({
      name: `floor-accept-${rows.length}`,
      text: `with body as (insert into ${bodies} (id, body) values ${rowsOf(rows.length, (p) => `${p(1)}, ${p(4)}`, 5)})
             insert into ${messages} (id, sender, recipients, state)
             values ${rowsOf(rows.length, (p) => `${p(1)}, ${p(2)}, ${p(3)}, ${p(5)}`, 5)}`,
      values: rows.flatMap((r) => [r.id, r.from, r.to, r.body, r.state]),
    });
    return rows.map(() => undefined);
  });
  const accept = async (body: Buffer, from: string, to: string[]): Promise<string> => {
    const verdict = await clamd.scanStream(() => Readable.from([body]), { deadlineMs: 60_000, maxBytes: MAX_BYTES });
    // Infected mail is kept and not relayed (as the gateway quarantines it and amavisd-new discards it): 250 all
    // the same.
    const state = verdict.kind === 'infected' ? 'quarantined' : 'queued';
    const id = randomUUID();
    await record({ id, from, to, body, state });
    if (state === 'queued') await publishConfirmed(id);
    return id;
  };
  const server = new SMTPServer({
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    size: MAX_BYTES,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        const to = session.envelope.rcptTo.map((r) => r.address);
        accept(Buffer.concat(chunks), from, to).then(
          (id) => callback(null, `queued as ${id}`),
          (err: Error) => callback(err),
        );
      });
    },
  });
  server.listen(Number(env('FLOOR_PORT')), '127.0.0.1');
} else if (role === 'relay') {
  const relayPort = Number(env('FLOOR_RELAY_PORT'));
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: relayPort,
    pool: true,
    maxConnections: 8,
    maxMessages: 100,
    ignoreTLS: true,
  });
  await channel.prefetch(Number(env('FLOOR_PREFETCH')));
  await channel.consume(queue, (delivery) => {
    if (!delivery) return;
    const id = delivery.content.toString();
    relay(id).then(
      () => channel.ack(delivery),
      (err: Error) => {
        process.stderr.write(`floor relay ${id}: ${err.message}\n`);
        channel.nack(delivery, false, true);
      },
    );
  });
  type Claimed = { id: string; sender: string; recipients: string[]; body: Buffer } | undefined;
  const claim = batched(async (ids: string[]): Promise<Claimed[]> => {
    const claimed = await pool.query<NonNullable<Claimed>>({
      name: 'floor-claim',
      text: `update ${messages} m set state = 'sending' from ${bodies} b
             where m.id = any($1::uuid[]) and b.id = m.id and m.state in ('queued', 'sending')
             returning m.id, m.sender, m.recipients, b.body`,
      values: [ids],
    });
    return ids.map((id) => claimed.rows.find((row) => row.id === id));
  });
  const markSent = batched(async (ids: string[]) => {
    await pool.query({
      name: 'floor-sent',
      text: `update ${messages} set state = 'sent' where id = any($1::uuid[])`,
      values: [ids],
    });
    return ids.map(() => undefined);
  });
  async function relay(id: string) {
    const row = await claim(id);
    if (!row) return;
    await transport.sendMail({ envelope: { from: row.sender, to: row.recipients }, raw: row.body });
    await markSent(id);
  }
} else {
  throw new Error(`floor-stage.ts receive|relay, not ${role}`);
}
process.once('SIGTERM', () => process.exit(0));
