// The end of DATA: stream the message (with our Received header in front) into the blob store, record it, publish
// one envelope per direction, and only then say 250. Anything the client did wrong is a 5xx; anything that went
// wrong on our side (database, broker) is a 451 so the client keeps the message and tries again
// (ARCHITECTURE.md, durability rule 1). Plain mail from the internet skips the encrypt stage
// (inbound-crypto-route.ts); a small message that clamd finds clean here skips the scan stage (scan-at-ingest.ts).
import type { Readable } from 'node:stream';
import type { BlobStore, StagedBlob } from '@smgw/blob-store';
import { type Pool, withTransaction } from '@smgw/db';
import {
  type BlobRef,
  type ClientInfo,
  type DsnRequest,
  type Envelope,
  newEnvelope,
  newMessageId,
  newTraceId,
  parseEnvelope,
  skipStage,
  withVerdict,
} from '@smgw/envelope';
import { type Mq, surelyNotEnqueued } from '@smgw/mq';
import { type Logger, messageLogger } from '@smgw/observability';
import { type MessageRecord, recordEvent, recordEvents, recordMessage, type TraceEvent } from '@smgw/trace';
import { BareLineEndingError, NulByteError } from './bare-line-ending-guard.ts';
import { encryptHopReasons, type MessageHead, withMessageHead } from './inbound-crypto-route.ts';
import {
  MailAuthRefusal,
  type MailAuthResult,
  type MailAuthSettings,
  startMailAuthentication,
  withMailAuthentication,
} from './mail-auth.ts';
import { buildReceivedHeader, receivedProtocol } from './received-header.ts';
import { groupByDirection, type Listener } from './recipient-policy.ts';
import { type IngestScanner, keptForScan, type ScanStageRoute, scanStageRoute } from './scan-at-ingest.ts';
import type { ReplyCode } from './smtp-replies.ts';
import { SubmissionHeaderError, withCheckedSubmissionHeader } from './submission-header.ts';

export interface AcceptDeps {
  pool: Pool;
  blobStore: Pick<BlobStore, 'stage'>;
  mq: Pick<Mq, 'publish'>;
  log: Logger;
  /** SMGW_HOSTNAME, for the Received header. */
  hostname: string;
  internalDomains: string[];
  maxMessageBytes: number;
  /** SPF, DKIM and DMARC of MX mail (mail-auth.ts); undefined with SMGW_MAIL_AUTH=off. */
  mailAuth?: MailAuthSettings | undefined;
  /** Small messages scanned here, so clean ones skip the scan stage (scan-at-ingest.ts); undefined: all go there. */
  scanner?: Pick<IngestScanner, 'maxBytes' | 'copyBudget' | 'scan'> | undefined;
  /** The recipients enabled for signature verification (key directory): where a message past scan goes next. */
  verifyingSignatures?: ((recipients: readonly string[]) => Promise<Set<string>>) | undefined;
  /**
   * Records a message of one envelope (its rows, first events and blob rows), resolving once they are committed: the
   * service's group commit (recordMessages with groupCommits, many messages in flight in one statement); unset, a
   * statement of its own (recordMessage).
   */
  recordAccepted?: ((record: MessageRecord) => Promise<void>) | undefined;
}

export interface IncomingRecipient {
  address: string;
  /** RCPT TO NOTIFY values (upper case) and ORCPT, when the client sent them. */
  notify?: string[] | undefined;
  orcpt?: string | undefined;
}

export interface IncomingMessage {
  listener: Listener;
  /** MAIL FROM; '' for the null reverse-path. */
  mailFrom: string;
  recipients: IncomingRecipient[];
  /** MAIL FROM RET and ENVID, when the client sent them. */
  ret?: string | null | undefined;
  envid?: string | null | undefined;
  client: {
    ip: string;
    helo: string;
    ehlo: boolean;
    /** The authenticated submission account, if any. */
    user?: string | undefined;
    tls: boolean;
    /** e.g. "TLSv1.3:TLS_AES_256_GCM_SHA384" */
    tlsCipher?: string | undefined;
  };
  /** The message as the client sent it (dot-unstuffed), already passed through the BareLineEndingGuard. */
  body: Readable | AsyncIterable<Uint8Array>;
  /** True once the client sent more than SMGW_MAX_MESSAGE_BYTES (smtp-server counts while data arrives). */
  sizeExceeded: () => boolean;
  /** The bytes the client sent (smtp-server's count: what SIZE= declares and SMGW_MAX_MESSAGE_BYTES bounds). */
  clientBytes: () => number;
  /**
   * Submission: counts the message's bytes for its sender's hour (rate-limits.ts countSubmissionBytes). Asked once
   * the message is stored (its size is known only then) and before anything of it is recorded or queued: a message
   * that does not fit is refused (SUBMISSION_BYTE_LIMIT) and its staged blob discarded: nothing of it is recorded or
   * queued (without SMGW_BLOB_DIR the blob's row was committed while storing, and is collected as a blob no message
   * refers to, as after any refusal past the store), and the client keeps it. Unset (MX): nothing counted.
   */
  countBytes?: ((bytes: number) => Promise<{ allowed: boolean; max: number }>) | undefined;
  /**
   * Which From and Sender addresses this client may write (submission: its own; MX: any but agency addresses
   * outside SMGW_MX_AGENCY_SENDER_EXCEPTIONS). Every From and Sender address is checked against it, Bcc fields and
   * fields in our name are removed, and the first From address becomes the envelope's author (submission-header.ts).
   */
  mayUseAddress: (address: string) => boolean;
}

export type AcceptOutcome =
  | { kind: 'accepted'; messageId: string; traceId: string; blob: BlobRef; envelopes: Envelope[] }
  | {
      kind: 'refused';
      reply: ReplyCode;
      /** Stable code of what went wrong (logs, trace). */
      code: string;
      reason: string;
      messageId: string;
      traceId: string;
      /** The limit a SUBMISSION_BYTE_LIMIT reply names. */
      max?: number;
    };

/** The client sent more than SMGW_MAX_MESSAGE_BYTES. */
export class MessageTooBigError extends Error {
  readonly code = 'MESSAGE_TOO_BIG';
  constructor(limit: number) {
    super(`message exceeds ${limit} bytes`);
    this.name = 'MessageTooBigError';
  }
}

/** The Received header, then the client's bytes; stops with MessageTooBigError once smtp-server saw too many. */
async function* withReceivedHeader(
  header: string,
  body: Readable | AsyncIterable<Uint8Array>,
  sizeExceeded: () => boolean,
  limit: number,
): AsyncGenerator<Uint8Array> {
  yield Buffer.from(header, 'latin1');
  for await (const chunk of body) {
    if (sizeExceeded()) throw new MessageTooBigError(limit);
    yield chunk as Uint8Array;
  }
  if (sizeExceeded()) throw new MessageTooBigError(limit);
}

function causes(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = err; e !== undefined && e !== null && chain.length < 10; e = (e as { cause?: unknown }).cause) {
    chain.push(e);
  }
  return chain;
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Why storing the message failed, as the client's reply and our code. */
export function classifyStoreFailure(err: unknown): { reply: ReplyCode; code: string } {
  const chain = causes(err);
  if (chain.some((e) => e instanceof BareLineEndingError))
    return { reply: 'BARE_LINE_ENDING', code: 'BARE_LINE_ENDING' };
  if (chain.some((e) => e instanceof NulByteError)) return { reply: 'NUL_BYTE', code: 'NUL_BYTE' };
  const header = chain.find((e) => e instanceof SubmissionHeaderError);
  if (header) return { reply: header.code, code: header.code };
  const authRefusal = chain.find((e) => e instanceof MailAuthRefusal);
  if (authRefusal) {
    const { code } = authRefusal;
    return { reply: code === 'MAIL_AUTH_FAILED' ? 'TEMPORARY_FAILURE' : code, code };
  }
  if (chain.some((e) => e instanceof MessageTooBigError || codeOf(e) === 'BLOB_TOO_LARGE')) {
    return { reply: 'MESSAGE_TOO_BIG', code: 'MESSAGE_TOO_BIG' };
  }
  if (chain.some((e) => codeOf(e) === 'ECONNECTION'))
    return { reply: 'TEMPORARY_FAILURE', code: 'CLIENT_DISCONNECTED' };
  return { reply: 'TEMPORARY_FAILURE', code: codeOf(err) ?? 'BLOB_STORE_FAILED' };
}

/** DSN parameters of the recipients in one envelope (undefined when the client sent none). */
export function dsnFor(message: IncomingMessage, recipients: string[]): DsnRequest | undefined {
  const dsn: DsnRequest = {};
  if (message.ret === 'FULL' || message.ret === 'HDRS') dsn.ret = message.ret;
  if (message.envid) dsn.envid = message.envid;
  for (const r of message.recipients) {
    if (!recipients.includes(r.address)) continue;
    if (r.notify?.length) {
      dsn.notify ??= {};
      dsn.notify[r.address] = r.notify as NonNullable<DsnRequest['notify']>[string];
    }
    if (r.orcpt) {
      dsn.orcpt ??= {};
      dsn.orcpt[r.address] = r.orcpt;
    }
  }
  return Object.keys(dsn).length > 0 ? dsn : undefined;
}

/** The envelope of an accepted message, with the mail authentication verdict when there is one (deliver adds its field). */
function withAuthVerdict(auth: MailAuthResult | undefined, at: Date, message: Parameters<typeof newEnvelope>[0]) {
  const envelope = newEnvelope(message);
  if (!auth) return envelope;
  return withVerdict(envelope, 'auth', {
    status: auth.dmarc.includes('fail') ? 'fail' : (auth.dmarc[0] ?? 'none'),
    at: at.toISOString(),
    ...authSummary(auth),
    field: auth.field,
  });
}

function authSummary(auth: MailAuthResult): { spf: string; dkim: string[]; dmarc: string[] } {
  return { spf: auth.spf, dkim: auth.dkim, dmarc: auth.dmarc };
}

/**
 * An inbound envelope past the encrypt stage when there is nothing for it (`encryptReasons` empty), with the crypto
 * verdict encrypt would have written, `plain`, stamped by ingest. Other envelopes come back as they are.
 */
function routedPastEncrypt(envelope: Envelope, encryptReasons: readonly string[], at: Date): Envelope {
  if (envelope.direction !== 'inbound' || encryptReasons.length > 0) return envelope;
  return withVerdict(skipStage(envelope, 'encrypt'), 'crypto', { status: 'plain', at: at.toISOString(), by: 'ingest' });
}

/**
 * What the queues may hold of a refused message, for the trace and the reaper (refused-messages): `none` when every
 * envelope was surely refused, `unknown` when a confirm was lost (the channel closed: it may have been enqueued
 * after all), `some` when an envelope was confirmed (that part goes on, so the message is not abandoned).
 */
export function enqueuedAfterRefusal(results: PromiseSettledResult<unknown>[]): 'none' | 'unknown' | 'some' {
  if (results.some((r) => r.status === 'fulfilled')) return 'some';
  return results.every((r) => r.status === 'rejected' && surelyNotEnqueued(r.reason)) ? 'none' : 'unknown';
}

export async function acceptMessage(deps: AcceptDeps, message: IncomingMessage): Promise<AcceptOutcome> {
  const messageId = newMessageId();
  const traceId = newTraceId();
  const receivedAt = new Date();
  const log = messageLogger(deps.log, { id: messageId, traceId });
  const recipients = message.recipients.map((r) => r.address);
  const refused = (reply: ReplyCode, code: string, reason: string, max?: number): AcceptOutcome => ({
    kind: 'refused',
    reply,
    code,
    reason,
    messageId,
    traceId,
    ...(max !== undefined ? { max } : {}),
  });

  const header = buildReceivedHeader({
    helo: message.client.helo,
    clientIp: message.client.ip,
    byHostname: deps.hostname,
    protocol: receivedProtocol({
      ehlo: message.client.ehlo,
      tls: message.client.tls,
      authenticated: message.client.user !== undefined,
    }),
    tls: message.client.tlsCipher,
    messageId,
    forRecipient: recipients.length === 1 ? recipients[0] : undefined,
    date: receivedAt,
  });

  // From/Sender checked (submission: addresses the client may use; MX: no agency address but the exceptions), Bcc
  // removed; without a From field the author is the (checked) envelope sender. Fields only the gateway writes
  // (X-SMGW-*, Authentication-Results in our name) are removed too; their names (never values) go to the trace.
  let author: string | undefined;
  let removedBcc = 0;
  let removedFields: string[] = [];
  const body = withCheckedSubmissionHeader(
    message.body,
    message.mayUseAddress,
    (checked) => {
      author = checked.author ?? message.mailFrom;
      removedBcc = checked.removedBcc;
      removedFields = checked.removedGatewayFields;
    },
    { gatewayHostname: deps.hostname },
  );
  // Mail from the internet: SPF, DKIM and DMARC read along while it is stored; a DMARC reject stores nothing.
  let auth: MailAuthResult | undefined;
  const authenticated =
    message.listener === 'inbound' && deps.mailAuth
      ? withMailAuthentication(
          body,
          startMailAuthentication(deps.mailAuth, {
            ip: message.client.ip,
            helo: message.client.helo,
            mailFrom: message.mailFrom,
          }),
          (result) => {
            auth = result;
          },
        )
      : body;
  // Mail from the internet: its header block and the body's first 64 KiB read along, as stored, to tell whether
  // the encrypt stage has anything to do with it (inbound-crypto-route.ts).
  const stored = withReceivedHeader(header, authenticated, message.sizeExceeded, deps.maxMessageBytes);
  let head: MessageHead | undefined;
  const storedAndRead =
    message.listener === 'inbound'
      ? withMessageHead(stored, (seen) => {
          head = seen;
        })
      : stored;
  // A small message is copied aside as stored, for a scan here once it is stored (scan-at-ingest.ts).
  const keptMessage = keptForScan(storedAndRead, deps.scanner);
  // Staged: the blob's row commits with the message's rows, in one statement, and only then is its file put in place.
  let staged: StagedBlob;
  try {
    staged = await deps.blobStore.stage(keptMessage.source, {
      messageId,
      maxBytes: deps.maxMessageBytes + Buffer.byteLength(header, 'latin1'),
    });
  } catch (err) {
    const { reply, code } = classifyStoreFailure(err);
    const level = reply === 'TEMPORARY_FAILURE' && code !== 'CLIENT_DISCONNECTED' ? 'error' : 'info';
    log[level](
      { code, err, listener: message.listener, ip: message.client.ip, ...(auth ? { auth: authSummary(auth) } : {}) },
      'message not stored',
    );
    keptMessage.release();
    return refused(reply, code, (err as Error).message);
  }
  const blob = staged.ref;
  // Counted here, not while the bytes arrive (a Redis call per chunk) nor by SIZE= (a claim): the real size, one
  // round trip per message, before the work of the scan, the records and the queues. A message our side fails to
  // take after this (451: database, blob file, broker) stays counted, as its message and recipients do.
  if (message.countBytes) {
    const bytes = message.clientBytes();
    let budget: { allowed: boolean; max: number };
    try {
      budget = await message.countBytes(bytes);
    } catch (err) {
      log.warn({ code: 'REDIS_UNAVAILABLE', err }, 'cannot count the message bytes; answering 421');
      keptMessage.release();
      await staged.discard();
      return refused('REDIS_UNAVAILABLE', 'REDIS_UNAVAILABLE', (err as Error).message);
    }
    if (!budget.allowed) {
      // A warning naming the sender: a stolen account shows itself here.
      log.warn(
        {
          code: 'SUBMISSION_BYTE_LIMIT',
          user: message.client.user,
          ip: message.client.ip,
          size: bytes,
          max: budget.max,
        },
        'refused: SUBMISSION_BYTE_LIMIT',
      );
      keptMessage.release();
      await staged.discard();
      return refused('SUBMISSION_BYTE_LIMIT', 'SUBMISSION_BYTE_LIMIT', `over ${budget.max} bytes an hour`, budget.max);
    }
  }

  const client: ClientInfo = {
    listener: message.listener,
    ip: message.client.ip,
    helo: message.client.helo,
    tls: message.client.tls,
    ...(message.client.user !== undefined ? { user: message.client.user } : {}),
  };
  // Why inbound mail goes through encrypt (names, never content); empty: it is plain and skips it.
  const encryptReasons = message.listener === 'inbound' ? encryptHopReasons(head) : [];
  const built: Envelope[] = groupByDirection(message.listener, recipients, deps.internalDomains).map((group) =>
    routedPastEncrypt(
      withAuthVerdict(auth, receivedAt, {
        id: messageId,
        traceId,
        receivedAt,
        direction: group.direction,
        mailFrom: message.mailFrom,
        recipients: group.recipients,
        client,
        blob,
        dsn: dsnFor(message, group.recipients),
        author,
      }),
      encryptReasons,
      receivedAt,
    ),
  );
  // Clean mail at the scan stage goes past it; a failed scan or lookup only leaves it there (scan decides).
  let scanStage: ScanStageRoute;
  try {
    scanStage = await scanStageRoute(deps, built, keptMessage.kept(), log);
  } finally {
    // The copy is done with: its bytes go back to the budget of all sessions.
    keptMessage.release();
  }
  const envelopes = scanStage.recorded;
  const published = scanStage.published;
  for (const envelope of published) {
    const checked = parseEnvelope(envelope);
    if (!checked.ok) {
      log.error({ code: 'ENVELOPE_INVALID', detail: checked.error }, 'envelope for an accepted message is invalid');
      await staged.discard();
      return refused('TEMPORARY_FAILURE', 'ENVELOPE_INVALID', checked.error);
    }
  }

  if (removedFields.length > 0) {
    log.warn({ code: 'INGEST_GATEWAY_FIELDS_REMOVED', fields: removedFields }, 'removed header fields in our name');
  }

  // The messages row and its recipients first: a stage may take the envelope the moment it is published. One
  // envelope (the usual case) is one statement; several (recipients in more than one direction) one transaction.
  const received: TraceEvent = {
    stage: 'ingest',
    event: 'message.received',
    outcome: 'next',
    data: {
      listener: message.listener,
      size: blob.size,
      blob: blob.ref,
      envelopes: published.map((e) => ({
        direction: e.direction,
        recipients: e.recipients.length,
        itinerary: e.itinerary,
      })),
      // Mail from the internet: whether it skipped encrypt (plain) or why it goes there (itinerary.ts).
      ...(message.listener === 'inbound'
        ? { encryptStage: { skipped: encryptReasons.length === 0, reasons: encryptReasons } }
        : {}),
      // Whether ingest scanned it clean (the scan stage is skipped), or why the scan stage has it.
      ...(scanStage.trace ? { scanStage: scanStage.trace } : {}),
      ...(removedFields.length > 0 ? { removedGatewayFields: removedFields } : {}),
      ...(removedBcc > 0 ? { removedBcc } : {}),
      ...(auth ? { auth: authSummary(auth) } : {}),
    },
  };
  // The blob's rows (with SMGW_BLOB_DIR) commit with them.
  const blobRows = staged.rows;
  try {
    const [first, ...more] = envelopes;
    if (first && more.length === 0) {
      const record = { envelope: first, events: [received, ...scanStage.events], alongside: blobRows };
      await (deps.recordAccepted
        ? deps.recordAccepted(record)
        : recordMessage(deps.pool, first, record.events, blobRows));
    } else {
      await withTransaction(deps.pool, async (db) => {
        for (const envelope of envelopes) await recordMessage(db, envelope);
        await recordEvents(db, messageId, [received, ...scanStage.events], blobRows);
      });
    }
  } catch (err) {
    log.error({ code: 'TRACE_WRITE_FAILED', err }, 'cannot record the message; answering 451');
    await staged.discard();
    return refused('TEMPORARY_FAILURE', 'TRACE_WRITE_FAILED', (err as Error).message);
  }
  // The blob's file in place before any envelope names it to a stage.
  try {
    await staged.publish();
  } catch (err) {
    log.error({ code: 'BLOB_STORE_FAILED', err }, 'cannot put the message file in place; answering 451');
    await staged.discard();
    await recordEvent(deps.pool, messageId, {
      stage: 'ingest',
      event: 'message.refused',
      outcome: 'retry',
      code: 'BLOB_STORE_FAILED',
      reason: `${(err as Error).message}; answered 451 to the client`,
      data: { publishedDirections: [], enqueued: 'none' },
    }).catch((e: unknown) => log.error({ code: 'TRACE_WRITE_FAILED', err: e }, 'cannot record message.refused'));
    return refused('TEMPORARY_FAILURE', 'BLOB_STORE_FAILED', (err as Error).message);
  }

  // Every envelope must be confirmed; wait for all of them so the log says exactly which ones went.
  const results = await Promise.allSettled(published.map((envelope) => deps.mq.publish(envelope)));
  const failures = results.flatMap((result, i) =>
    result.status === 'rejected' ? [{ direction: published[i]?.direction, err: result.reason as unknown }] : [],
  );
  if (failures.length > 0) {
    const first = failures[0]?.err;
    const code = codeOf(first) ?? 'MQ_PUBLISH_FAILED';
    const confirmed = published.filter((_, i) => results[i]?.status === 'fulfilled').map((e) => e.direction);
    log.error(
      { code, err: first, refusedDirections: failures.map((f) => f.direction), publishedDirections: confirmed },
      confirmed.length > 0
        ? 'broker refused an envelope after confirming another; answering 451 (the retry may duplicate the confirmed part)'
        : 'broker refused the envelope; answering 451',
    );
    await recordEvent(deps.pool, messageId, {
      stage: 'ingest',
      event: 'message.refused',
      outcome: 'retry',
      code,
      reason: `${(first as Error)?.message ?? String(first)}; answered 451 to the client`,
      data: { publishedDirections: confirmed, enqueued: enqueuedAfterRefusal(results) },
    }).catch((err: unknown) => log.error({ code: 'TRACE_WRITE_FAILED', err }, 'cannot record message.refused'));
    return refused('TEMPORARY_FAILURE', code, (first as Error)?.message ?? String(first));
  }

  log.info(
    {
      listener: message.listener,
      size: blob.size,
      envelopes: published.map((e) => ({
        direction: e.direction,
        recipients: e.recipients.length,
        itinerary: e.itinerary,
      })),
    },
    'message accepted',
  );
  return { kind: 'accepted', messageId, traceId, blob, envelopes: published };
}
