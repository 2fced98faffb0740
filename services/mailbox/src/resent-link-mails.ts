// The link mail of an operator's resend (the admin API's POST /mailboxes/{address}/resend-activation). The admin
// service writes no mails and does not import this service: it replaces the token and records in the mailbox's
// audit trail that the link mail is due (@smgw/mailbox-store requestActivationResend). This sweep, run in the PIN
// mail sweep's tick before the PIN mails, sends it from this service's templates; the PIN mail follows as for
// every token, when its due time (SMGW_PIN_DELAY after the resend) has come. Published (confirmed) before it is
// marked, so a crash sends it again rather than never. One token per transaction, as the PIN mails: a token whose
// mailbox key is gone or does not open is abandoned (never tried again), one whose mail failed for now is left for
// the next tick and holds none of the others.
import { withTransaction } from '@smgw/db';
import { messageIdFor } from '@smgw/envelope';
import {
  abandonTokenMails,
  type DuePinMail,
  lockNextDueResentLinkMail,
  markResentLinkMailed,
} from '@smgw/mailbox-store';
import { rfc5322Date } from '@smgw/mime';
import { noticeEnvelope, portalLinks, publishNotices, recordNotice } from './notices.ts';
import {
  failureCode,
  type PinSweepDeps,
  TEMPORARY_FAILURES_PER_TICK,
  type TokenMailFailure,
} from './pin-mail-sweep.ts';

/**
 * Tries up to `limit` due link mails of resends, each in a transaction of its own; returns how many were sent. A
 * token that failed for now is not tried again in this call; the call ends after TEMPORARY_FAILURES_PER_TICK such.
 */
export async function sendDueResentLinkMails(deps: PinSweepDeps, limit = 20): Promise<number> {
  const now = (deps.now ?? (() => new Date()))();
  const tried: string[] = [];
  let sent = 0;
  let temporary = 0;
  while (tried.length < limit && temporary < TEMPORARY_FAILURES_PER_TICK) {
    const result = await withTransaction(deps.pool, async (db): Promise<'none' | 'sent' | TokenMailFailure> => {
      const next = await lockNextDueResentLinkMail(db, deps.mailboxKeys, now, tried);
      if (!next) return 'none';
      if (!next.ok) {
        tried.push(next.token.id);
        if (next.permanent) await abandonTokenMails(db, next, 'activation-resent', now);
        return linkMailFailure(next.token, next.permanent ? 'abandoned' : 'deferred', next.code, next.error);
      }
      tried.push(next.due.token.id);
      await db.query('savepoint link_mail');
      try {
        await sendResentLinkMail(deps, next.due, now);
        await markResentLinkMailed(db, next.due, now);
        return 'sent';
      } catch (err) {
        await db.query('rollback to savepoint link_mail');
        return linkMailFailure(next.due.token, 'deferred', failureCode(err, 'MAILBOX_LINK_MAIL_FAILED'), err);
      }
    });
    if (result === 'none') break;
    if (result === 'sent') {
      sent++;
      continue;
    }
    if (result.outcome === 'deferred') temporary++;
    deps.onFailed?.(result);
  }
  return sent;
}

function linkMailFailure(
  token: DuePinMail['token'],
  outcome: TokenMailFailure['outcome'],
  code: string,
  error: unknown,
): TokenMailFailure {
  return { mail: 'activation-resent', tokenId: token.id, mailboxId: token.mailboxId, outcome, code, error };
}

async function sendResentLinkMail(deps: PinSweepDeps, resend: DuePinMail, now: Date): Promise<void> {
  const notice = await noticeEnvelope(deps, {
    kind: 'activation-resent',
    to: resend.address,
    values: {
      activationUrl: portalLinks(deps.publicUrl).activation(resend.secrets.link),
      expiresAt: rfc5322Date(resend.token.expiresAt),
    },
    // No message made this token: its mails get a trace of their own, the one its PIN mail uses too.
    traceId: resend.token.id.replaceAll('-', ''),
    // The same id on every try: a try whose publish went but whose confirm was lost is not a second link mail.
    id: messageIdFor(`activation-resent\0${resend.token.id}`, resend.token.createdAt.getTime()),
    now,
  });
  await recordNotice(deps.pool, notice, undefined, now);
  await publishNotices([notice]);
  await deps.publish(notice.envelope);
}
