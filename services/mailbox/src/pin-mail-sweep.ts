// The recipient's PIN comes in a second mail, SMGW_PIN_DELAY after the activation link (a stolen inbox alone should
// not be enough at once; the sender has the PIN at once, to pass on by phone). The due time is a column of the
// token; this sweep sends what is due. Tokens are locked with SKIP LOCKED, so replicas share the work; the PIN mail
// is published (confirmed) before the token is marked, so a crash sends it again rather than never. Each token has a
// transaction of its own, so one that fails holds no other: a token whose mailbox key is gone or does not open is
// abandoned (audit mailbox.token-mails-abandoned with the code; never tried again), one whose mail could not go out
// for now (broker, blob store) is deferred by `retryDelayMs`, behind the tokens due before then.
import type { BlobStore } from '@smgw/blob-store';
import { type Pool, withTransaction } from '@smgw/db';
import { type Envelope, messageIdFor } from '@smgw/envelope';
import {
  abandonTokenMails,
  type DuePinMail,
  deferPinMail,
  lockNextDuePinMail,
  type MailboxKeyStore,
  markPinMailSent,
} from '@smgw/mailbox-store';
import { rfc5322Date } from '@smgw/mime';
import type { Logger } from '@smgw/observability';
import { type MailboxTemplates, noticeEnvelope, publishNotices, recordNotice } from './notices.ts';
import { sendDueResentLinkMails } from './resent-link-mails.ts';

/** A token whose mail did not go out: abandoned for good, or deferred (PIN mail) / left for the next tick (link mail). */
export interface TokenMailFailure {
  mail: 'pin-mail' | 'activation-resent';
  tokenId: string;
  mailboxId: string;
  outcome: 'abandoned' | 'deferred';
  /** MAILBOX_KEY_GONE, MAILBOX_KEY_DAMAGED, MAILBOX_TOKEN_SECRETS_DAMAGED, MAILBOX_KEY_STORE_FAILED, MQ_PUBLISH_*… */
  code: string;
  error: unknown;
}

export interface PinMailDeps {
  pool: Pool;
  blobStore: BlobStore;
  mailboxKeys: MailboxKeyStore;
  hostname: string;
  templates: MailboxTemplates;
  publish: (envelope: Envelope) => Promise<void>;
  onSent?: () => void;
  /** Each token whose mail did not go out (the service logs and counts them). */
  onFailed?: (failure: TokenMailFailure) => void;
  /** How long a PIN mail that failed for now waits before it is tried again (default 1 minute). */
  retryDelayMs?: number;
  now?: () => Date;
}

/** The sweep also sends the link mails of operators' resends (resent-link-mails.ts): they link to the portal. */
export interface PinSweepDeps extends PinMailDeps {
  /** SMGW_PUBLIC_URL */
  publicUrl: string;
}

const PIN_MAIL_RETRY_MS = 60_000;
/** Failures for now in one tick after which it ends (the broker or blob store is likely down for every token). */
export const TEMPORARY_FAILURES_PER_TICK = 3;

/** The code of an error that is not a token's own (the broker's MQ_PUBLISH_*, the blob store's …). */
export function failureCode(err: unknown, fallback: string): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(code) ? code : fallback;
}

/**
 * Tries up to `limit` due PIN mails, each in a transaction of its own; returns how many were sent. Ends early when
 * none is due any more or after TEMPORARY_FAILURES_PER_TICK failures for now.
 */
export async function sendDuePinMails(deps: PinMailDeps, limit = 20): Promise<number> {
  const now = (deps.now ?? (() => new Date()))();
  const retryAt = new Date(now.getTime() + (deps.retryDelayMs ?? PIN_MAIL_RETRY_MS));
  let sent = 0;
  let temporary = 0;
  for (let tried = 0; tried < limit && temporary < TEMPORARY_FAILURES_PER_TICK; tried++) {
    const result = await withTransaction(deps.pool, async (db): Promise<'none' | 'sent' | TokenMailFailure> => {
      const next = await lockNextDuePinMail(db, deps.mailboxKeys, now);
      if (!next) return 'none';
      if (!next.ok) {
        const failure = pinMailFailure(next.token, next.permanent ? 'abandoned' : 'deferred', next.code, next.error);
        if (next.permanent) await abandonTokenMails(db, next, 'pin-mail', now);
        else await deferPinMail(db, next.token.id, retryAt);
        return failure;
      }
      await db.query('savepoint pin_mail');
      try {
        await sendPinMail(deps, next.due, now);
        await markPinMailSent(db, next.due.token.id, now);
        return 'sent';
      } catch (err) {
        await db.query('rollback to savepoint pin_mail');
        await deferPinMail(db, next.due.token.id, retryAt);
        return pinMailFailure(next.due.token, 'deferred', failureCode(err, 'MAILBOX_PIN_MAIL_FAILED'), err);
      }
    });
    if (result === 'none') break;
    if (result === 'sent') {
      sent++;
      deps.onSent?.();
      continue;
    }
    if (result.outcome === 'deferred') temporary++;
    deps.onFailed?.(result);
  }
  return sent;
}

function pinMailFailure(
  token: DuePinMail['token'],
  outcome: TokenMailFailure['outcome'],
  code: string,
  error: unknown,
): TokenMailFailure {
  return { mail: 'pin-mail', tokenId: token.id, mailboxId: token.mailboxId, outcome, code, error };
}

/** Writes, records and publishes (confirmed) one PIN mail. */
async function sendPinMail(deps: PinMailDeps, { token, address, secrets }: DuePinMail, now: Date): Promise<void> {
  const notice = await noticeEnvelope(deps, {
    kind: 'pin-mail',
    to: address,
    values: { pin: secrets.pin, expiresAt: rfc5322Date(token.expiresAt) },
    // A token of self-registration or re-activation has no message: its mails get a trace of their own.
    traceId: token.traceId ?? token.id.replaceAll('-', ''),
    relatesTo: token.messageId ?? undefined,
    // The same id on every try: a try whose publish went but whose confirm was lost is not a second PIN mail.
    id: messageIdFor(`pin-mail\0${token.id}`, token.createdAt.getTime()),
    now,
  });
  // Committed before publishing: deliver records against the message row.
  await recordNotice(deps.pool, notice, token.messageId ?? undefined, now);
  await publishNotices([notice]);
  await deps.publish(notice.envelope);
}

/** How often the sweep looks: a quarter of the delay, between 250 ms and 30 s. */
export function pinSweepInterval(pinDelayMs: number): number {
  return Math.min(30_000, Math.max(250, Math.floor(pinDelayMs / 4)));
}

/** Runs the sweep every `intervalMs` (never two at once); stop() waits for a running one. */
export function startPinMailSweep(sweepDeps: PinSweepDeps, intervalMs: number, log: Logger): { stop(): Promise<void> } {
  const deps: PinSweepDeps = {
    ...sweepDeps,
    onFailed(failure) {
      const { error, ...fields } = failure;
      if (failure.outcome === 'abandoned') {
        log.error(
          { ...fields, code: 'MAILBOX_TOKEN_MAILS_ABANDONED', reason: failure.code, err: error },
          "a token's mails can never be sent (mailbox key gone or damaged); abandoned",
        );
      } else {
        log.warn(
          { ...fields, code: 'MAILBOX_TOKEN_MAIL_DEFERRED', reason: failure.code, err: error },
          "a token's mail did not go out; tried again later",
        );
      }
      sweepDeps.onFailed?.(failure);
    },
  };
  let running: Promise<void> | undefined;
  const tick = () => {
    if (running) return;
    // Link mails of resends first, so a PIN never arrives before its link; a failure there waits for the next tick.
    running = sendDueResentLinkMails(deps)
      .then(async (links) => {
        if (links > 0) log.info({ code: 'MAILBOX_RESENT_LINK_MAILS_SENT', sent: links }, 'resent link mails sent');
        const sent = await sendDuePinMails(deps);
        if (sent > 0) log.info({ code: 'MAILBOX_PIN_MAILS_SENT', sent }, 'PIN mails sent');
      })
      .catch((err: Error) => log.warn({ code: 'MAILBOX_PIN_SWEEP_FAILED', err }, 'PIN mail sweep failed; will retry'))
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
