// The deliver handler: guard, claim, send per destination, record, and decide the outcome (STYLE.md: it never
// acks; the mq package turns the outcome into publish/ack/delay/park).
import { type BlobStore, type FoundBlob, readingOnce } from '@smgw/blob-store';
import type { DkimSigning } from '@smgw/config';
import type { Pool } from '@smgw/db';
import {
  advance,
  type Envelope,
  forRecipients,
  generatedEnvelope,
  leavesClosedNetwork,
  newMessageId,
} from '@smgw/envelope';
import { identifyingFields, readHeaderBlock } from '@smgw/mime';
import { type Handler, type HandlerContext, next, type Outcome, reject, retry } from '@smgw/mq';
import type { Counter } from '@smgw/observability';
import { recordMessage } from '@smgw/trace';
import { authenticationResultsField, withPrefix } from './authentication-results.ts';
import {
  type ClaimResult,
  claimRecipients,
  loadGeneratedEnvelope,
  type OutcomesInput,
  type RecipientOutcome,
  recordOutcomes,
} from './delivery-records.ts';
import { type DestinationSlots, noSlotAnswer } from './destination-slots.ts';
import { DkimSignError, dkimSignatureFor } from './dkim-signature.ts';
import {
  buildDsn,
  type DsnDisclosure,
  type DsnTemplates,
  dsnDisclosure,
  dsnParametersFor,
  dsnWanted,
  type FailedRecipient,
  statusOnlyFailure,
} from './dsn.ts';
import { checkOutboundBytes, checkOutboundGuard } from './outbound-guard.ts';
import { type DeliverOwner, OwnerFencedError } from './owner-heartbeat.ts';
import {
  groupByDestination,
  type RecipientGroup,
  type RefusedRecipient,
  type RoutingTable,
} from './route-recipients.ts';
import { type RecipientAnswer, refusedAnswer, sendToDestination } from './send-to-destination.ts';
import { type SuspendedDestinations, suspendedAnswer } from './suspended-destinations.ts';
import type { Transports } from './transports.ts';

export interface DeliverDeps {
  pool: Pool;
  blobStore: BlobStore;
  transports: Transports;
  routing: RoutingTable;
  /** SMGW_HOSTNAME: Reporting-MTA of DSNs. */
  hostname: string;
  maxMessageBytes: number;
  /** Upper bound of one SMTP transaction; a server trickling its replies is given up on after it. */
  attemptTimeoutMs: number;
  /** How long a `sending` claim without a known owner keeps a duplicate envelope away; longer than any attempt. */
  claimLeaseMs: number;
  /** This process's instance for its claims (owner-heartbeat.ts); a dead owner's claims are taken over. */
  owner?: Pick<DeliverOwner, 'id' | 'deadAfterMs' | 'alive' | 'fence'> | undefined;
  /** `${message id} ${recipient}` this process is sending now (its own claims that are not idle). */
  sending?: Set<string> | undefined;
  templates: DsnTemplates;
  /** Signs the gateway's own mail (direction generated); undefined: sent unsigned. */
  dkim?: DkimSigning | undefined;
  /**
   * Records one destination's results (createOutcomeRecorder: group-committed with other envelopes' results); unset,
   * a statement of its own (recordOutcomes).
   */
  recordOutcomes?: ((input: OutcomesInput) => Promise<{ dsnRecorded: boolean }>) | undefined;
  /** Publishes (confirmed) DSN envelopes when the outcome is a retry, which cannot carry them. */
  publish: (envelope: Envelope) => Promise<void>;
  recipientsTotal?: Counter<'result'> | undefined;
  /** Recipients deferred without a connection (a busy or suspended MX), by category: a tarpit shows here. */
  notTriedTotal?: Counter<'category'> | undefined;
  /** Deliveries at once per MX destination and to all of them (destination-slots.ts); none: not limited. */
  destinationSlots?: DestinationSlots | undefined;
  /** MX destinations that lately gave no answer (suspended-destinations.ts); none: always connected to. */
  suspendedDestinations?: SuspendedDestinations | undefined;
  now?: () => Date;
}

/** Outbound messages up to this size are read once per delivery (readingOnce); larger ones are streamed twice. */
const READ_ONCE_MAX_BYTES = 1024 * 1024;

/** PostgreSQL's SQLSTATE for a row that references one that does not exist. */
const FOREIGN_KEY_VIOLATION = '23503';

export function createDeliverHandler(deps: DeliverDeps): Handler {
  return async (envelope, context) => {
    try {
      // Outbound mail is read whole for the check and again to be sent: a small one is read (and decrypted) once,
      // and its claim need not bring the blob's row along.
      const readOnce = leavesClosedNetwork(envelope) && envelope.blob.size <= READ_ONCE_MAX_BYTES;
      const blobStore = readOnce ? readingOnce(deps.blobStore, envelope.blob, READ_ONCE_MAX_BYTES) : deps.blobStore;
      const refusal =
        checkOutboundGuard(envelope, deps.routing.internalDomains) ??
        (await checkOutboundBytes(envelope, () => blobStore.open(envelope.blob.ref)));
      if (refusal?.bounceAs) {
        context.log.warn({ code: refusal.code, reason: refusal.reason }, 'the message can never be sent: bounced');
        return await deliverEnvelope({ ...deps, blobStore }, envelope, context, {
          readOnce,
          refused: refusal.bounceAs,
        });
      }
      if (refusal) {
        context.log.warn({ code: refusal.code, reason: refusal.reason }, 'refused to send the message');
        return reject(refusal.code, refusal.reason);
      }
      return await deliverEnvelope({ ...deps, blobStore }, envelope, context, { readOnce });
    } catch (err) {
      // Database or blob store unreachable (or the signer failed): nothing was decided that is not recorded; try the
      // envelope again.
      const code =
        err instanceof DkimSignError || err instanceof OwnerFencedError ? err.code : 'DELIVER_DEPENDENCY_FAILED';
      context.log.error({ err, code }, 'delivery could not run');
      return retry(code, (err as Error).message);
    }
  };
}

/**
 * Claims, sends per destination, records, and decides the outcome. With `refused`, the outbound guard's bounceAs,
 * every recipient goes that way instead of to a destination: bounced without sending, the DSN as for any bounce.
 */
async function deliverEnvelope(
  deps: DeliverDeps,
  envelope: Envelope,
  context: HandlerContext,
  how: {
    /** The stage's blob store reads this envelope's blob once (readingOnce): the claim need not bring its row. */
    readOnce: boolean;
    refused?: RefusedRecipient | undefined;
  },
): Promise<Outcome> {
  const { refused } = how;
  // Signed before anything is claimed: a signer failure leaves no recipient `sending`.
  const prefix = await messagePrefix(deps, envelope, context);
  const owner = deps.owner;
  // A process that cannot renew its heartbeat may already have lost its claims to another: it claims nothing.
  if (owner && !owner.alive()) throw new OwnerFencedError(owner.deadAfterMs);
  const sending = deps.sending ?? new Set<string>();
  const key = (recipient: string) => `${envelope.id} ${recipient}`;
  // Reserved here before the claim, synchronously: a duplicate envelope handled at the same time in this process
  // then sees them as busy instead of taking the same claim again as "its own and idle".
  const unique = [...new Set(envelope.recipients)];
  const reserved = unique.filter((r) => !sending.has(key(r)));
  for (const r of reserved) sending.add(key(r));
  // Only the reserved ones are claimed; one another handler here holds is busy, whatever the database says. Claimed
  // anyway, its row could be inserted before that handler's claim reached the database, which would then take the
  // row over as its own idle claim: both would send.
  const heldHere = unique.filter((r) => !reserved.includes(r));
  try {
    const claimAll = () =>
      claimRecipients(
        deps.pool,
        { id: envelope.id, blobRef: how.readOnce ? undefined : envelope.blob.ref },
        reserved,
        deps.claimLeaseMs,
        owner && { id: owner.id, deadAfterMs: owner.deadAfterMs, idle: reserved },
      );
    // The message's rows normally exist (whoever made the envelope recorded it); when they do not (a parked
    // envelope moved back after retention removed them, say), they are written and the claim is tried once more.
    const claim: ClaimResult =
      reserved.length === 0
        ? { claimed: [], done: [], busy: [], dsnMessageIds: [] }
        : await claimAll().catch(async (err: unknown) => {
            if ((err as { code?: unknown }).code !== FOREIGN_KEY_VIOLATION) throw err;
            await recordMessage(deps.pool, envelope);
            return claimAll();
          });
    claim.busy.push(...heldHere);
    return await deliverClaimed(deps, envelope, context, claim, prefix, refused);
  } finally {
    for (const r of reserved) sending.delete(key(r));
  }
}

async function deliverClaimed(
  deps: DeliverDeps,
  envelope: Envelope,
  context: HandlerContext,
  claim: Awaited<ReturnType<typeof claimRecipients>>,
  prefix: Buffer,
  refused: RefusedRecipient | undefined,
): Promise<Outcome> {
  if (claim.done.length > 0)
    context.log.info({ recipients: claim.done }, 'already delivered or bounced; not sent again');
  if (claim.busy.length > 0) context.log.info({ recipients: claim.busy }, 'another consumer is sending these now');

  const disclosure = dsnDisclosure(envelope, deps.routing.internalDomains);
  const quote = disclosure.quote;
  const quoted: QuotedOriginal = {
    disclosure,
    headers: once(async () => {
      if (!quote) return undefined;
      const block = await readHeaderBlock(deps.blobStore.open(quote.ref));
      return disclosure.identifyingOnly ? identifyingFields(block) : block;
    }),
  };
  const groups: RecipientGroup[] = !refused
    ? groupByDestination(claim.claimed, deps.routing)
    : claim.claimed.length > 0
      ? [{ destination: refused, recipients: claim.claimed }]
      : [];
  // Every destination finishes (and records) before the outcome, even when another one failed.
  const settled = await Promise.allSettled(
    groups.map((g) => deliverGroup(deps, envelope, g, context, quoted, prefix, claim.blob)),
  );
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  const results = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));

  const dsns = results.flatMap((r) => (r.dsn ? [r.dsn] : []));
  for (const id of claim.dsnMessageIds) {
    const again = await loadGeneratedEnvelope(deps.pool, id);
    if (again) dsns.push(again);
  }
  const outstanding = [...results.flatMap((r) => r.deferred), ...claim.busy];
  if (outstanding.length > 0) {
    for (const dsn of dsns) await deps.publish(dsn);
    const reasons = results.flatMap((r) => r.deferredReasons);
    const reason = reasons.length > 0 ? reasons.join('; ') : 'being sent by another consumer';
    return retry('DELIVERY_DEFERRED', reason, forRecipients(envelope, outstanding));
  }
  return next(advance(envelope, 'deliver'), ...dsns);
}

/** What DSNs about this envelope may quote of it (dsnDisclosure), its header block read once. */
interface QuotedOriginal {
  disclosure: DsnDisclosure;
  headers: () => Promise<Buffer | undefined>;
}

interface GroupResult {
  deferred: string[];
  deferredReasons: string[];
  dsn?: Envelope | undefined;
}

async function deliverGroup(
  deps: DeliverDeps,
  envelope: Envelope,
  group: RecipientGroup,
  context: HandlerContext,
  quoted: QuotedOriginal,
  prefix: Buffer,
  /** The blob's row, read with the claim. */
  blob: FoundBlob | undefined,
): Promise<GroupResult> {
  const fence = deps.owner?.fence();
  // Reaching the attempt's bound means the next hop stalled: told apart from this process cutting the send short.
  const attemptBound = AbortSignal.timeout(deps.attemptTimeoutMs);
  const signal = AbortSignal.any([context.signal, attemptBound, ...(fence ? [fence] : [])]);
  const cutShortHere = () => context.signal.aborted || fence?.aborted === true;
  const destination = group.destination;
  // A domain's MX (not the relay or the smarthost) is not connected to while it is suspended, and gets at most its
  // share of this process's handlers at once, and all MX together what is not kept for the relay and the smarthost.
  const slots = destination.kind === 'mx' ? deps.destinationSlots : undefined;
  const suspended = destination.kind === 'mx' ? deps.suspendedDestinations : undefined;
  const send = async () => {
    if (destination.kind === 'refused') return group.recipients.map((r) => refusedAnswer(r, destination));
    const notTried = (answers: RecipientAnswer[]) => {
      for (const a of answers) deps.notTriedTotal?.inc({ category: a.classification.category });
      return answers;
    };
    const suspension = suspended?.suspensionOf(destination.key);
    if (suspension) return notTried(group.recipients.map((r) => suspendedAnswer(r, destination.key, suspension)));
    const taken = slots?.take(destination.key) ?? 'taken';
    if (slots && taken !== 'taken') return notTried(group.recipients.map((r) => noSlotAnswer(r, taken, slots)));
    try {
      const sent = await deps.transports.use(destination, (transport) =>
        sendToDestination(transport, {
          raw: withPrefix(prefix, deps.blobStore.open(envelope.blob.ref, blob)),
          from: envelope.mailFrom,
          to: group.recipients,
          size: envelope.blob.size + prefix.length,
          dsn: dsnParametersFor(envelope, group.recipients, deps.routing.internalDomains),
          signal,
        }),
      );
      // A send cut short by this process says nothing about the next hop.
      if (!cutShortHere()) suspended?.learn(destination.key, sent, attemptBound.aborted);
      return sent;
    } finally {
      slots?.release(destination.key);
    }
  };
  // Recipients that are not one plain address go nowhere: bounced (DELIVERY_RECIPIENT_INVALID), never sent.
  const answers = await send();
  const now = deps.now?.() ?? new Date();
  // Cut short by this process (shutdown, or its heartbeat overdue so another deliver may take over): not the next
  // hop's failure, so even on the last attempt it is deferred (the envelope is parked), never expired and bounced.
  const interrupted = cutShortHere();
  const outcomes: RecipientOutcome[] = [];
  const failures: FailedRecipient[] = [];
  const result: GroupResult = { deferred: [], deferredReasons: [] };
  for (const a of answers) {
    const { result: kind, category, status, code: bounceCode = 'DELIVERY_BOUNCED' } = a.classification;
    const said = a.reply ?? a.error ?? category;
    const data = { category, status, remoteMta: a.remoteMta, attempt: context.attempt };
    const failure = { recipient: a.recipient, status, remoteMta: a.remoteMta, reply: a.reply, error: a.error };
    if (kind === 'delivered') {
      outcomes.push({ recipient: a.recipient, state: 'delivered', reason: said, data });
    } else if (kind === 'bounced') {
      outcomes.push({ recipient: a.recipient, state: 'bounced', code: bounceCode, reason: said, data });
      failures.push({ ...failure, reason: a.classification.dsnReason ?? 'rejected', lastAttemptAt: now });
    } else if (context.lastAttempt && !interrupted) {
      const reason = `retry period expired; last: ${said}`;
      outcomes.push({ recipient: a.recipient, state: 'bounced', code: 'DELIVERY_EXPIRED', reason, data });
      failures.push({ ...failure, reason: 'expired', lastAttemptAt: now });
    } else {
      outcomes.push({ recipient: a.recipient, state: 'deferred', code: 'DELIVERY_DEFERRED', reason: said, data });
      result.deferred.push(a.recipient);
      result.deferredReasons.push(`${a.recipient}: ${said}`);
    }
  }
  const wanted = failures.filter((f) => dsnWanted(envelope, f.recipient));
  if (wanted.length > 0) result.dsn = await makeDsn(deps, envelope, wanted, quoted, now);
  const input: OutcomesInput = {
    envelope,
    destination: group.destination.key,
    outcomes,
    dsn: result.dsn ? { envelope: result.dsn, recipients: wanted.map((f) => f.recipient) } : undefined,
    owner: deps.owner?.id,
  };
  const recorded = await (deps.recordOutcomes ? deps.recordOutcomes(input) : recordOutcomes(deps.pool, input));
  // Another deliver told the sender already (its blob is collected as unreferenced).
  if (result.dsn && !recorded.dsnRecorded) {
    context.log.info({ dsnMessageId: result.dsn.id }, 'DSN not sent: the recipients were finished by another deliver');
    result.dsn = undefined;
  }
  for (const o of outcomes) {
    deps.recipientsTotal?.inc({ result: o.state });
    const line = { recipient: o.recipient, destination: group.destination.key, code: o.code, reply: o.reason };
    if (o.state === 'delivered') context.log.info(line, 'recipient delivered');
    else context.log.warn(line, o.state === 'deferred' ? 'recipient deferred' : 'recipient bounced');
  }
  if (result.dsn) context.log.info({ dsnMessageId: result.dsn.id, recipients: wanted.length }, 'DSN made');
  return result;
}

/**
 * What goes in front of the stored message as it is sent: the DKIM-Signature of the gateway's own mail, then the
 * Authentication-Results of inbound mail (each empty where it does not apply).
 */
async function messagePrefix(deps: DeliverDeps, envelope: Envelope, context: HandlerContext): Promise<Buffer> {
  const authResults = authenticationResultsField(envelope);
  const dkim = await dkimSignatureFor(
    envelope,
    deps.dkim,
    () => deps.blobStore.open(envelope.blob.ref),
    deps.now?.() ?? new Date(),
  );
  if (dkim.signed) return Buffer.concat([dkim.field, authResults]);
  if (dkim.code)
    context.log.warn({ code: dkim.code, reason: dkim.reason }, 'generated mail sent without DKIM signature');
  return authResults;
}

/** Builds the DSN, stores it as a blob and returns its envelope (recorded by the caller with the bounce). */
async function makeDsn(
  deps: DeliverDeps,
  original: Envelope,
  failures: FailedRecipient[],
  quoted: QuotedOriginal,
  now: Date,
): Promise<Envelope> {
  const id = newMessageId(now.getTime());
  const { quote, fullContent, statusOnly } = quoted.disclosure;
  const dsn = buildDsn({
    original,
    failures: statusOnly ? failures.map(statusOnlyFailure) : failures,
    reportingMta: deps.hostname,
    dsnMessageId: id,
    now,
    originalHeaders: await quoted.headers(),
    fullOriginal: fullContent && quote ? deps.blobStore.open(quote.ref) : undefined,
    templates: deps.templates,
  });
  const blob = await deps.blobStore.put(dsn.createReadStream(), {
    messageId: id,
    maxBytes: deps.maxMessageBytes + 1024 * 1024,
  });
  return generatedEnvelope({
    id,
    traceId: original.traceId,
    relatesTo: original.id,
    recipients: [original.mailFrom],
    blob,
    hostname: deps.hostname,
    createdAt: now,
  });
}

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => {
    made ??= make();
    return made;
  };
}
