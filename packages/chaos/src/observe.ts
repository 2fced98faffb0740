// What the world shows after (or during) a run, gathered for the checker: every message at the two sinks with the
// attempt it belongs to, the secrets and EICAR found in its bytes and whether it is wholly encrypted; the portal
// mailboxes and the quarantine per attempt; the recipient states of accepted messages found nowhere else; what is
// still queued or parked. Read through the packages that own the tables.
import { checkWholeMessageEncrypted } from '@smgw/crypto';
import { findMailbox, listMailboxMessages } from '@smgw/mailbox-store';
import { listQuarantine } from '@smgw/quarantine';
import { rabbitManagementApi, type SunkMessage, type TestGateway } from '@smgw/testing';
import { getTrace } from '@smgw/trace';
import type { LoadRecord } from './generator.ts';
import { type Destination, destinationOf, EICAR, type PlannedMessage, portalRecipientOf } from './workload.ts';

export interface Arrival {
  sink: 'relay' | 'smarthost';
  /** '' for the gateway's own mail (DSNs, virus notices, portal link and PIN mails). */
  mailFrom: string;
  /** From the Message-ID in the top header block; undefined for mail the generator did not write. */
  attemptId: string | undefined;
  /** Epoch milliseconds. */
  at: number;
  /** Attempts whose body secret is in these bytes in clear. */
  secrets: string[];
  eicar: boolean;
  /** One complete S/MIME or PGP/MIME structure and nothing else (checked for the smarthost only). */
  encrypted: boolean;
}

export interface Observations {
  arrivals: Arrival[];
  /** Epoch milliseconds of each copy in the attempt's own portal mailbox. */
  mailbox: Map<string, number[]>;
  /** Epoch milliseconds of each quarantine entry of the attempt's message. */
  quarantine: Map<string, number[]>;
  /** Recipient states of accepted attempts whose message was not found at its destination. */
  states: Map<string, string[]>;
  /** Envelopes still in the vhost's queues: work queues, retry (delay) queues, parked queues. */
  queued: { work: number; retry: number; parked: number };
}

const EICAR_BASE64 = Buffer.from(EICAR).toString('base64');

async function* once(raw: Buffer): AsyncIterable<Uint8Array> {
  yield raw;
}

/** The attempt id a sunk message was written for, from its top header block. */
function attemptOf(raw: Buffer, runId: string): string | undefined {
  const headEnd = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, headEnd < 0 ? Math.min(raw.length, 16384) : headEnd).toString('latin1');
  return new RegExp(`^Message-ID:\\s*<chaos-${runId}-(\\d+\\.\\d+)@chaos\\.test>`, 'mi').exec(head)?.[1];
}

const arrivalCache = new WeakMap<SunkMessage, Arrival>();

async function arrivalOf(m: SunkMessage, sink: Arrival['sink'], runId: string): Promise<Arrival> {
  const cached = arrivalCache.get(m);
  if (cached) return cached;
  const text = m.raw.toString('latin1');
  const secrets = [...text.matchAll(new RegExp(`SECRET-${runId}-(\\d+\\.\\d+)-`, 'g'))].map((x) => x[1] as string);
  const arrival: Arrival = {
    sink,
    mailFrom: m.mailFrom,
    attemptId: attemptOf(m.raw, runId),
    at: performance.timeOrigin + m.receivedAt,
    secrets: [...new Set(secrets)],
    eicar: text.includes(EICAR) || text.includes(EICAR_BASE64),
    encrypted: sink === 'smarthost' ? (await checkWholeMessageEncrypted(once(m.raw))).encrypted : false,
  };
  arrivalCache.set(m, arrival);
  return arrival;
}

interface QueueRow {
  name: string;
  messages?: number;
}

async function queuedIn(vhost: string): Promise<Observations['queued']> {
  const res = await rabbitManagementApi(`/queues/${encodeURIComponent(vhost)}`);
  if (!res.ok) throw new Error(`cannot list the queues of ${vhost}: HTTP ${res.status}`);
  const queued = { work: 0, retry: 0, parked: 0 };
  for (const q of (await res.json()) as QueueRow[]) {
    const n = q.messages ?? 0;
    if (q.name.endsWith('.parked')) queued.parked += n;
    else if (q.name.includes('.retry')) queued.retry += n;
    else queued.work += n;
  }
  return queued;
}

/** The attempt id in an envelope sender `chaos.<run>.<seq>.<try>@…`. */
function attemptOfSender(mailFrom: string, runId: string): string | undefined {
  return new RegExp(`^chaos\\.${runId}\\.(\\d+\\.\\d+)@`).exec(mailFrom)?.[1];
}

export async function observe(
  gateway: TestGateway,
  runId: string,
  planned: readonly PlannedMessage[],
  record: LoadRecord,
  options: { states: boolean },
): Promise<Observations> {
  const pool = gateway.db.pool;
  const arrivals = [
    ...(await Promise.all(gateway.relay.messages.map((m) => arrivalOf(m, 'relay', runId)))),
    ...(await Promise.all(gateway.smarthost.messages.map((m) => arrivalOf(m, 'smarthost', runId)))),
  ];

  // Portal mail: each attempt has a recipient (so a mailbox) of its own; its inbox holds the copies.
  const mailbox = new Map<string, number[]>();
  for (const a of record.attempts.values()) {
    if (planned[a.seq]?.direction !== 'outbound-portal') continue;
    const box = await findMailbox(pool, portalRecipientOf(runId, a.id));
    if (!box) continue;
    const copies = await listMailboxMessages(pool, box.id, 'inbox');
    if (copies.length > 0)
      mailbox.set(
        a.id,
        copies.map((c) => c.receivedAt.getTime()),
      );
  }

  // Quarantine entries, each traced back to its attempt by its envelope sender.
  const quarantine = new Map<string, number[]>();
  for (const entry of await listQuarantine(pool, { state: 'all', limit: 1_000_000 })) {
    const id = attemptOfSender(entry.mailFrom, runId);
    if (!id) continue;
    quarantine.set(id, [...(quarantine.get(id) ?? []), new Date(entry.quarantinedAt).getTime()]);
  }

  const atSink = new Set(arrivals.filter((a) => a.mailFrom !== '').map((a) => `${a.sink} ${a.attemptId}`));
  const found = (id: string, destination: Destination) =>
    destination === 'mailbox'
      ? mailbox.has(id)
      : destination === 'quarantine'
        ? quarantine.has(id)
        : atSink.has(`${destination} ${id}`);
  const states = new Map<string, string[]>();
  for (const a of options.states ? record.attempts.values() : []) {
    const m = planned[a.seq];
    if (a.reply !== '250' || !a.gatewayId || !m || found(a.id, destinationOf(m))) continue;
    const trace = await getTrace(pool, a.gatewayId);
    states.set(a.id, trace ? trace.recipients.map((r) => r.state) : ['unknown to the database']);
  }

  return { arrivals, mailbox, quarantine, states, queued: await queuedIn(gateway.vhost.name) };
}
