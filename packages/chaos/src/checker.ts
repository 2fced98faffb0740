// The checker, scored the way RabbitMQ's Jepsen tests score a run: every attempt that got a 250 must reach the one
// place its content and direction send it to (the agencies' relay, the smarthost, the portal mailbox, the
// quarantine) exactly once, or come back as a bounce; an attempt without a 250 may arrive ("recovered") or not.
// Beside that: nothing at the smarthost in clear, nothing infected or unscanned delivered. A pure function of what
// the generator recorded and what observe() found, so its rules are tested on their own.
import type { Attempt, ReplyKind } from './generator.ts';
import type { NemesisEvent } from './nemeses.ts';
import type { Arrival, Observations } from './observe.ts';
import type { UnplannedExit } from './supervisor.ts';
import { type Destination, destinationOf, type PlannedMessage } from './workload.ts';

export interface Duplicate {
  attemptId: string;
  destination: Destination;
  copies: number;
  /** The fault that most likely caused it (the last one begun before the last copy), or 'unknown'. */
  cause: string;
}

export interface Verdict {
  messages: number;
  attempts: number;
  replies: Record<ReplyKind, number>;
  /** Refusals by reply code and enhanced status (`451 4.3.0`), timeouts and client errors by kind. */
  refusals: Record<string, number>;
  accepted: number;
  /** Messages that never got a 250 (the client gave up, or got a 5xx). */
  neverAccepted: number;
  /** Per destination: attempts accepted for it, and of those arrived exactly once. */
  byDestination: Record<Destination, { accepted: number; once: number }>;
  delivered: number;
  bounced: string[];
  lost: string[];
  duplicated: Duplicate[];
  recovered: string[];
  unexpected: string[];
  plaintextOutside: string[];
  infectedDelivered: string[];
  notices: { relay: number; smarthost: number };
  queued: Observations['queued'];
  nemeses: NemesisEvent[];
  /** Processes that exited without a nemesis stopping them (restarted, as Kubernetes would). */
  unplannedExits: UnplannedExit[];
  /** Every broken promise, one line each; empty means the run passed. */
  violations: string[];
}

const DESTINATIONS: readonly Destination[] = ['relay', 'smarthost', 'mailbox', 'quarantine'];

/** The stage whose crash can repeat a hand-over to each destination (its at-least-once window). */
const STAGE_OF: Record<Destination, string> = {
  relay: 'deliver',
  smarthost: 'deliver',
  mailbox: 'mailbox',
  quarantine: 'scan',
};

/** Faults that can repeat a hand-over to `destination`: that stage's process dying, or its database or broker. */
function canRepeat(n: NemesisEvent, destination: Destination): boolean {
  if (n.kind === 'postgres-restart' || n.kind === 'rabbitmq-restart') return true;
  return (n.kind === 'kill-9' || n.kind === 'sigterm') && n.target.startsWith(STAGE_OF[destination]);
}

function causeOf(times: number[], destination: Destination, nemeses: readonly NemesisEvent[]): string {
  const first = Math.min(...times);
  const last = Math.max(...times);
  // A copy is sent again after a fault that struck while (or shortly after) the first was on its way.
  const suspects = nemeses.filter((n) => n.startedAt <= last && n.endedAt >= first - 60_000);
  const latest = suspects.filter((n) => canRepeat(n, destination)).at(-1) ?? suspects.at(-1);
  return latest ? `${latest.kind} ${latest.target}` : 'unknown';
}

export function check(
  planned: readonly PlannedMessage[],
  attempts: readonly Attempt[],
  seen: Observations,
  nemeses: readonly NemesisEvent[],
  unplannedExits: readonly UnplannedExit[] = [],
): Verdict {
  const byId = new Map(attempts.map((a) => [a.id, a]));
  const replies: Record<ReplyKind, number> = { '250': 0, '4xx': 0, '5xx': 0, timeout: 0, error: 0 };
  for (const a of attempts) replies[a.reply]++;
  const refusals: Record<string, number> = {};
  for (const a of attempts) {
    if (a.reply === '250') continue;
    const code = /^(\d{3})(?:[ -](\d\.\d{1,3}\.\d{1,3}))?/.exec(a.text);
    const key = code ? `${code[1]}${code[2] ? ` ${code[2]}` : ''}` : a.reply;
    refusals[key] = (refusals[key] ?? 0) + 1;
  }

  const data = seen.arrivals.filter((a) => a.mailFrom !== '');
  const notices = seen.arrivals.filter((a) => a.mailFrom === '');
  /** Times of the copies of an attempt at its destination. */
  const copies = (id: string, destination: Destination): number[] => {
    if (destination === 'mailbox') return seen.mailbox.get(id) ?? [];
    if (destination === 'quarantine') return seen.quarantine.get(id) ?? [];
    return data.filter((a) => a.sink === destination && a.attemptId === id).map((a) => a.at);
  };

  const byDestination = Object.fromEntries(
    DESTINATIONS.map((d) => [d, { accepted: 0, once: 0 }]),
  ) as Verdict['byDestination'];
  const lost: string[] = [];
  const bounced: string[] = [];
  const duplicated: Duplicate[] = [];
  const recovered: string[] = [];
  const unexpected: string[] = [];
  const acceptedSeqs = new Set<number>();

  for (const a of attempts) {
    const m = planned[a.seq];
    if (!m) continue;
    const destination = destinationOf(m);
    const times = copies(a.id, destination);
    if (a.reply === '250') {
      acceptedSeqs.add(a.seq);
      byDestination[destination].accepted++;
      if (times.length === 1) byDestination[destination].once++;
      if (times.length === 0) {
        if (seen.states.get(a.id)?.includes('bounced')) bounced.push(a.id);
        else lost.push(a.id);
      }
    } else if (times.length > 0) {
      // A 5xx is a promise that the message was not taken; anything else without a 250 may have been.
      if (a.reply === '5xx') unexpected.push(`${a.id} answered 5xx but reached ${destination}`);
      else recovered.push(a.id);
    }
    if (times.length > 1) {
      duplicated.push({
        attemptId: a.id,
        destination,
        copies: times.length,
        cause: causeOf(times, destination, nemeses),
      });
    }
  }

  // Mail at a sink that the generator did not send there.
  for (const arrival of data) {
    const a = arrival.attemptId ? byId.get(arrival.attemptId) : undefined;
    const m = a ? planned[a.seq] : undefined;
    if (!a || !m) {
      unexpected.push(`${arrival.sink}: mail from ${arrival.mailFrom} that no attempt sent`);
    } else if (destinationOf(m) !== arrival.sink && destinationOf(m) !== 'quarantine') {
      unexpected.push(`${arrival.sink}: ${a.id} belongs to ${destinationOf(m)}`);
    }
  }

  const plaintextOutside = seen.arrivals
    .filter((a) => a.sink === 'smarthost' && ((a.mailFrom !== '' && !a.encrypted) || a.secrets.length > 0))
    .map((a: Arrival) =>
      a.secrets.length > 0
        ? `the body of ${a.secrets.join(', ')} in clear at the smarthost`
        : `${a.attemptId ?? a.mailFrom}: not wholly encrypted at the smarthost`,
    );
  const infectedDelivered = [
    ...data
      .filter((a) => {
        const m = a.attemptId ? planned[byId.get(a.attemptId)?.seq ?? -1] : undefined;
        return m !== undefined && m.content !== 'clean';
      })
      .map((a) => `${a.attemptId} (${planned[byId.get(a.attemptId ?? '')?.seq ?? -1]?.content}) reached the ${a.sink}`),
    ...seen.arrivals.filter((a) => a.eicar).map((a) => `EICAR in mail to the ${a.sink} from <${a.mailFrom}>`),
  ];

  const duplicatesWithoutFault = duplicated.filter((d) => d.cause === 'unknown');
  const violations = [
    ...lost.map(
      (id) =>
        `lost: ${id} got a 250 and never reached ${destinationOf(planned[byId.get(id)?.seq ?? -1] as PlannedMessage)}`,
    ),
    ...unexpected.map((u) => `unexpected: ${u}`),
    ...plaintextOutside.map((p) => `plaintext outside: ${p}`),
    ...infectedDelivered.map((i) => `infected or unscanned delivered: ${i}`),
    ...duplicatesWithoutFault.map(
      (d) => `duplicate without a fault to explain it: ${d.attemptId} (${d.copies} copies)`,
    ),
    ...nemeses.flatMap((n) => (n.violation ? [n.violation] : [])),
  ];

  return {
    messages: planned.length,
    attempts: attempts.length,
    replies,
    refusals,
    accepted: replies['250'],
    neverAccepted: planned.length - acceptedSeqs.size,
    byDestination,
    delivered: DESTINATIONS.reduce((sum, d) => sum + byDestination[d].once, 0),
    bounced,
    lost,
    duplicated,
    recovered,
    unexpected,
    plaintextOutside,
    infectedDelivered,
    notices: {
      relay: notices.filter((a) => a.sink === 'relay').length,
      smarthost: notices.filter((a) => a.sink === 'smarthost').length,
    },
    queued: seen.queued,
    nemeses: [...nemeses],
    unplannedExits: [...unplannedExits],
    violations,
  };
}

const list = (items: readonly string[], max = 10) =>
  items.length === 0 ? '' : ` ${items.slice(0, max).join(', ')}${items.length > max ? ', …' : ''}`;

/** The table printed at the end of a run. */
export function formatVerdict(v: Verdict, header: string): string {
  const d = v.byDestination;
  const dupCauses = new Map<string, number>();
  for (const x of v.duplicated) dupCauses.set(x.cause, (dupCauses.get(x.cause) ?? 0) + 1);
  return [
    header,
    `  nemeses:           ${v.nemeses.length}`,
    ...v.nemeses.map((n) => `    - ${n.kind.padEnd(17)} ${n.target} (at ${n.atAccepted} accepted)`),
    `  messages:          ${v.messages} (never accepted: ${v.neverAccepted})`,
    `  attempts:          ${v.attempts}  replies: ${Object.entries(v.replies)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
    `  refusals:          ${
      Object.entries(v.refusals)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, n]) => `${k} ×${n}`)
        .join(', ') || 'none'
    }`,
    `  accepted (250):    ${v.accepted}`,
    `  delivered:         ${v.delivered} (accepted, at their destination exactly once)`,
    `    relay (agencies) ${d.relay.once}/${d.relay.accepted}, smarthost (S/MIME) ${d.smarthost.once}/${d.smarthost.accepted}, portal mailbox ${d.mailbox.once}/${d.mailbox.accepted}, quarantine ${d.quarantine.once}/${d.quarantine.accepted}`,
    `  bounced:           ${v.bounced.length}${list(v.bounced)}`,
    `  lost:              ${v.lost.length}${list(v.lost)}`,
    `  duplicated:        ${v.duplicated.length}${[...dupCauses].map(([c, n]) => ` [${n} after ${c}]`).join('')}`,
    `  recovered:         ${v.recovered.length} (no 250 reached the client, but the message was durable and arrived)`,
    `  unexpected:        ${v.unexpected.length}${list(v.unexpected, 5)}`,
    `  plaintext outside: ${v.plaintextOutside.length}${list(v.plaintextOutside, 5)}`,
    `  infected delivered:${v.infectedDelivered.length}${list(v.infectedDelivered, 5)}`,
    `  gateway notices:   relay ${v.notices.relay}, smarthost ${v.notices.smarthost} (DSNs, virus notices, portal mails)`,
    `  unplanned exits:   ${v.unplannedExits.length}${list(
      v.unplannedExits.map((e) => `${e.process} (${e.exit}${e.lastCode ? `, ${e.lastCode}` : ''})`),
    )} (restarted, as Kubernetes would)`,
    `  still queued:      work ${v.queued.work}, retry ${v.queued.retry}, parked ${v.queued.parked}`,
    `  verdict:           ${v.violations.length === 0 ? 'PASS' : `FAIL (${v.violations.length} violations)`}`,
    ...v.violations.slice(0, 30).map((x) => `    ! ${x}`),
  ].join('\n');
}
