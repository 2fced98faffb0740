// The mailbox stage's work on one envelope: each recipient's copy goes into that recipient's own mailbox (created
// passive if there is none), encrypted under the mailbox's data key, committed in one transaction with the trace
// (recipient state `in_mailbox`, event `message.to-mailbox`) and the arrival record; then the notices go out. A
// message that does not fit the quota is not stored: the sender gets a DSN, the recipient a notice to make room.
//
// The pipeline's blob is left to retention (@smgw/blob-store purge-blobs): once every recipient is in_mailbox,
// bounced or delivered the message counts as finished and its blob is purged after SMGW_MESSAGE_RETENTION.
import type { BlobStore } from '@smgw/blob-store';
import type { Pool, PoolClient } from '@smgw/db';
import { type Envelope, failureDsnAsked } from '@smgw/envelope';
import {
  type ActivationSecrets,
  type ActivationToken,
  commitArrival,
  ensureActivationToken,
  ensureMailbox,
  findArrival,
  findMailboxById,
  type Mailbox,
  type MailboxKeyStore,
  MailboxStoreError,
  type MessageSummary,
  openMailboxKey,
  recordArrival,
  type SealedMailboxMessage,
  sealMailboxMessage,
} from '@smgw/mailbox-store';
import { oneLine, rfc5322Date } from '@smgw/mime';
import { type Handler, type HandlerContext, next, type Outcome, reject, retry } from '@smgw/mq';
import { givenUpRecipients, recordRecipientStates, type TraceEvent } from '@smgw/trace';
import { summarizeMessage } from './message-summary.ts';
import type { MailboxMetrics } from './metrics.ts';
import {
  discardNotices,
  type MailboxTemplates,
  megabytes,
  type Notice,
  noticeEnvelope,
  portalLinks,
  publishNotices,
  recordNotice,
} from './notices.ts';

export interface ArrivalDeps {
  pool: Pool;
  blobStore: BlobStore;
  /** The mailboxes' own keys (SMGW_KEY_STORE_DIR/mailboxes, sealed under the master key): seal and open data keys. */
  mailboxKeys: MailboxKeyStore;
  hostname: string;
  publicUrl: string;
  quotaBytes: number;
  pinDelayMs: number;
  linkLifetimeMs: number;
  templates: MailboxTemplates;
  metrics?: Pick<MailboxMetrics, 'arrivals'>;
  now?: () => Date;
}

export function createArrivalHandler(deps: ArrivalDeps): Handler {
  return (envelope, context) => arriveEnvelope(deps, envelope, context);
}

interface StoredMessage {
  raw: Buffer;
  summary: MessageSummary;
}

type RecipientResult =
  | { kind: 'done'; outcome: 'stored' | 'over_quota'; notices: Envelope[]; redelivered: boolean }
  /** The mailbox changed between the quota check and the transaction (filled up, emptied, deleted): try again. */
  | { kind: 'changed' }
  /** The reaper gave the recipient up while its copy was being prepared: nothing stored (arriveEnvelope). */
  | { kind: 'given-up' };

export async function arriveEnvelope(deps: ArrivalDeps, envelope: Envelope, context: HandlerContext): Promise<Outcome> {
  const notices: Envelope[] = [];
  let message: Promise<StoredMessage> | undefined;
  const readMessage = () => {
    message ??= deps.blobStore.readAll(envelope.blob.ref).then(async (raw) => ({
      raw,
      // What the folder list shows, made once (headers and structure only) and sealed with each copy.
      summary: await summarizeMessage(raw),
    }));
    return message;
  };
  // A recipient the trace has bounced (its sender told it failed: the reaper gave the parked message up, say) stays
  // given up when the envelope comes back, moved from the parked queue by hand: nothing stored, no notice.
  const givenUp = await givenUpRecipients(deps.pool, envelope.id, envelope.recipients);
  if (givenUp.length > 0) {
    context.log.warn({ code: 'MAILBOX_RECIPIENT_GIVEN_UP', recipients: givenUp }, 'given up before; not stored');
  }
  for (const recipient of envelope.recipients.filter((r) => !givenUp.includes(r))) {
    let result: RecipientResult;
    try {
      result = await arriveForRecipient(deps, envelope, recipient, readMessage);
    } catch (err) {
      if (err instanceof MailboxStoreError && err.code === 'MAILBOX_BAD_ADDRESS') {
        return reject(err.code, err.message);
      }
      throw err;
    }
    if (result.kind === 'changed') {
      return retry('MAILBOX_CHANGED', `the mailbox of a recipient changed while the message was being stored`);
    }
    if (result.kind === 'given-up') {
      context.log.warn(
        { code: 'MAILBOX_RECIPIENT_GIVEN_UP', recipients: [recipient] },
        'given up meanwhile; not stored',
      );
      continue;
    }
    notices.push(...result.notices);
    context.log.info(
      {
        code: result.outcome === 'stored' ? 'MAILBOX_STORED' : 'MAILBOX_QUOTA_EXCEEDED',
        notices: result.notices.map((n) => n.id),
        redelivered: result.redelivered,
      },
      result.outcome === 'stored' ? 'message stored in a mailbox' : 'mailbox full: message not stored',
    );
  }
  return next(...notices);
}

async function arriveForRecipient(
  deps: ArrivalDeps,
  envelope: Envelope,
  recipient: string,
  readMessage: () => Promise<StoredMessage>,
): Promise<RecipientResult> {
  const earlier = await findArrival(deps.pool, envelope.id, recipient);
  if (earlier) return { kind: 'done', outcome: earlier.outcome, notices: earlier.notices, redelivered: true };

  const now = (deps.now ?? (() => new Date()))();
  const { mailbox, created } = await ensureMailbox(deps.pool, recipient, deps.mailboxKeys);
  const size = envelope.blob.size;
  const fits = mailbox.usageBytes + size <= deps.quotaBytes;
  const outcome = fits ? 'stored' : 'over_quota';

  // Everything that needs no lock is done first: the token, the mails, and the message sealed under the mailbox's
  // key (the key file read and the whole message encrypted here, not while the mailbox row is locked).
  let made: Notice[];
  let sealed: SealedMailboxMessage | undefined;
  try {
    const activation =
      fits && mailbox.state === 'passive'
        ? await ensureActivationToken(deps.pool, {
            mailbox,
            keys: deps.mailboxKeys,
            now,
            lifetimeMs: deps.linkLifetimeMs,
            pinDelayMs: deps.pinDelayMs,
            messageId: envelope.id,
            traceId: envelope.traceId,
          })
        : undefined;
    made = fits
      ? await storedNotices(deps, envelope, mailbox, activation, now)
      : await overQuotaNotices(deps, envelope, recipient, mailbox, now);
    if (fits) sealed = await sealForMailbox(deps, mailbox, envelope, recipient, await readMessage(), now);
  } catch (err) {
    // Deleted meanwhile (its key gone, or its row when the token was written): again, for the mailbox there is now.
    if (isMailboxGone(err) && !(await findMailboxById(deps.pool, mailbox.id))) return { kind: 'changed' };
    throw err;
  }
  const notices = made.map((n) => n.envelope);

  const event: TraceEvent = sealed
    ? {
        stage: 'mailbox',
        event: 'message.to-mailbox',
        outcome: 'next',
        recipient,
        data: { mailboxId: mailbox.id, newMailbox: created, mailboxState: mailbox.state, size: sealed.size },
        at: now,
      }
    : {
        stage: 'mailbox',
        event: 'recipient.bounced',
        outcome: 'next',
        code: 'MAILBOX_QUOTA_EXCEEDED',
        // The usage read before the transaction (the one the mails quote); recordArrival checks it still does not fit.
        reason: `${size} bytes do not fit: ${mailbox.usageBytes} of ${deps.quotaBytes} used`,
        recipient,
        data: { mailboxId: mailbox.id, size, usageBytes: mailbox.usageBytes, quotaBytes: deps.quotaBytes },
        at: now,
      };
  const trace = {
    recipient,
    ...(sealed
      ? { state: 'in_mailbox' as const, detail: `mailbox ${mailbox.id}` }
      : { state: 'bounced' as const, detail: 'MAILBOX_QUOTA_EXCEEDED' }),
  };
  // The notices' blob rows commit with their message rows (recordNotice), in this transaction.
  const recorded = await inTransaction(deps.pool, async (tx) => {
    const { db } = tx;
    // Checked again here, holding the recipient's trace row until the commit (recipientGivenUpSql): a reaper giving
    // the message up right now is waited for, and one that comes later finds this arrival's event and leaves it.
    if ((await givenUpRecipients(db, envelope.id, [recipient])).length > 0) return { kind: 'given-up' } as const;
    await recordRecipientStates(db, envelope.id, [trace], [event]);
    for (const notice of made) await recordNotice(db, notice, envelope.id, now);
    // The mails were written for the mailbox as it was: if it filled, emptied, was activated, locked or deleted
    // since, nothing of this commits and the envelope goes again.
    const arrival = {
      messageId: envelope.id,
      recipient,
      mailboxId: mailbox.id,
      notices,
      state: mailbox.state,
      size,
      quotaBytes: deps.quotaBytes,
      message: sealed,
    };
    const result = await recordArrival(db, arrival, now);
    if (result.kind !== 'recorded') return result;
    if (sealed) {
      // Last, and with the commit in the same round trip: the mailbox row is locked only while the server commits.
      const committed = await commitArrival(db, { ...arrival, addedBytes: result.addedBytes });
      if (committed === 'changed') return { kind: 'changed' } as const;
    } else {
      await db.query('commit');
    }
    tx.committed = true;
    return result;
  }).catch(async (err: unknown) => {
    await discardNotices(made);
    throw err;
  });
  if (recorded.kind !== 'recorded') await discardNotices(made);
  else await publishNotices(made);
  if (recorded.kind === 'changed' || recorded.kind === 'given-up') return recorded;
  if (recorded.kind === 'redelivered') {
    // A concurrent delivery of the same envelope was first: publish its mails, not ours.
    const winner = await findArrival(deps.pool, envelope.id, recipient);
    return { kind: 'done', outcome: winner?.outcome ?? outcome, notices: winner?.notices ?? [], redelivered: true };
  }
  deps.metrics?.arrivals.inc({ outcome, new_mailbox: String(created) });
  return { kind: 'done', outcome, notices, redelivered: false };
}

interface Transaction {
  db: PoolClient;
  committed: boolean;
}

/**
 * Runs `work` in a transaction that `work` commits itself (commitArrival commits in the round trip that locks the
 * mailbox row); whatever it leaves uncommitted, returning or throwing, is rolled back.
 */
async function inTransaction<T>(pool: Pool, work: (tx: Transaction) => Promise<T>): Promise<T> {
  const tx: Transaction = { db: await pool.connect(), committed: false };
  try {
    await tx.db.query('begin');
    return await work(tx);
  } finally {
    if (!tx.committed) await tx.db.query('rollback').catch(() => {});
    tx.db.release();
  }
}

function isMailboxGone(err: unknown): boolean {
  if (err instanceof MailboxStoreError) return err.code === 'MAILBOX_KEY_GONE';
  return (err as { code?: string } | undefined)?.code === FOREIGN_KEY_VIOLATION;
}

const FOREIGN_KEY_VIOLATION = '23503';

/** The copy for the mailbox, encrypted under its data key (zeroed again right after). */
async function sealForMailbox(
  deps: ArrivalDeps,
  mailbox: Mailbox,
  envelope: Envelope,
  recipient: string,
  stored: StoredMessage,
  now: Date,
): Promise<SealedMailboxMessage> {
  const dataKey = await openMailboxKey(deps.mailboxKeys, mailbox);
  try {
    return sealMailboxMessage({
      mailboxId: mailbox.id,
      dataKey,
      folder: 'inbox',
      messageId: envelope.id,
      recipient,
      raw: stored.raw,
      receivedAt: now,
      summary: stored.summary,
    });
  } finally {
    dataKey.fill(0);
  }
}

/** Stored: the recipient is told (link and, for a passive mailbox, the sender gets the PIN); a locked one is not. */
async function storedNotices(
  deps: ArrivalDeps,
  envelope: Envelope,
  mailbox: Mailbox,
  activation: { token: ActivationToken; secrets: ActivationSecrets } | undefined,
  now: Date,
): Promise<Notice[]> {
  const links = portalLinks(deps.publicUrl);
  const common = { traceId: envelope.traceId, relatesTo: envelope.id, now };
  const mailFrom = envelope.mailFrom === '' ? '<>' : oneLine(envelope.mailFrom);
  if (mailbox.state === 'locked') return [];
  if (!activation) {
    return [
      await noticeEnvelope(deps, {
        ...common,
        kind: 'login-link',
        to: mailbox.address,
        values: { mailFrom, loginUrl: links.login },
      }),
    ];
  }
  const expiresAt = rfc5322Date(activation.token.expiresAt);
  const notices = [
    await noticeEnvelope(deps, {
      ...common,
      kind: 'activation-link',
      to: mailbox.address,
      values: { mailFrom, activationUrl: links.activation(activation.secrets.link), expiresAt },
    }),
  ];
  if (envelope.mailFrom !== '') {
    notices.push(
      await noticeEnvelope(deps, {
        ...common,
        kind: 'sender-pin',
        to: envelope.mailFrom,
        values: { recipient: mailbox.address, messageId: envelope.id, pin: activation.secrets.pin, expiresAt },
      }),
    );
  }
  return notices;
}

/**
 * Not stored: a DSN to the sender (none for a null sender, or when the sender asked for none for this recipient: NOTIFY
 * NEVER, or a list without FAILURE, RFC 3461 §4.1, as deliver and the reaper) and a notice to the recipient to make room.
 * The sender's NOTIFY is looked up by `recipient` as the envelope holds it (as RCPT TO gave it), not by the mailbox's
 * address: that one has its domain's A-labels, so an IDN recipient's NOTIFY=NEVER was not found under it.
 */
async function overQuotaNotices(
  deps: ArrivalDeps,
  envelope: Envelope,
  recipient: string,
  mailbox: Mailbox,
  now: Date,
): Promise<Notice[]> {
  const common = { traceId: envelope.traceId, relatesTo: envelope.id, now };
  const values = {
    mailFrom: envelope.mailFrom === '' ? '<>' : oneLine(envelope.mailFrom),
    recipient: mailbox.address,
    messageId: envelope.id,
    arrivalDate: rfc5322Date(new Date(envelope.receivedAt)),
    usedMb: megabytes(mailbox.usageBytes),
    quotaMb: megabytes(deps.quotaBytes),
    sizeMb: megabytes(envelope.blob.size),
    loginUrl: portalLinks(deps.publicUrl).login,
  };
  const notices = [await noticeEnvelope(deps, { ...common, kind: 'over-quota-notice', to: mailbox.address, values })];
  if (envelope.mailFrom !== '' && failureDsnAsked(envelope.dsn, recipient)) {
    notices.push(
      await noticeEnvelope(deps, {
        ...common,
        kind: 'over-quota-dsn',
        to: envelope.mailFrom,
        values,
        dsn: { arrivedAt: new Date(envelope.receivedAt), recipient: mailbox.address },
      }),
    );
  }
  return notices;
}
