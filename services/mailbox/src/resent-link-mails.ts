// The link mail of an operator's resend (the admin API's POST /mailboxes/{address}/resend-activation). The admin
// service writes no mails and does not import this service: it replaces the token and records in the mailbox's
// audit trail that the link mail is due (@smgw/mailbox-store requestActivationResend). This sweep, run in the PIN
// mail sweep's tick before the PIN mails, sends it from this service's templates; the PIN mail follows as for
// every token, when its due time (SMGW_PIN_DELAY after the resend) has come. Published (confirmed) before it is
// marked, so a crash sends it again rather than never.
import { withTransaction } from '@smgw/db';
import { lockDueResentLinkMails, markResentLinkMailed } from '@smgw/mailbox-store';
import { rfc5322Date } from '@smgw/mime';
import { noticeEnvelope, portalLinks, publishNotices, recordNotice } from './notices.ts';
import type { PinSweepDeps } from './pin-mail-sweep.ts';

/** Sends up to `limit` due link mails of resends; returns how many. */
export async function sendDueResentLinkMails(deps: PinSweepDeps, limit = 20): Promise<number> {
  const now = (deps.now ?? (() => new Date()))();
  const links = portalLinks(deps.publicUrl);
  return withTransaction(deps.pool, async (db) => {
    const due = await lockDueResentLinkMails(db, deps.mailboxKeys, now, limit);
    for (const resend of due) {
      const notice = await noticeEnvelope(deps, {
        kind: 'activation-resent',
        to: resend.address,
        values: {
          activationUrl: links.activation(resend.secrets.link),
          expiresAt: rfc5322Date(resend.token.expiresAt),
        },
        // No message made this token: its mails get a trace of their own, the one its PIN mail uses too.
        traceId: resend.token.id.replaceAll('-', ''),
        now,
      });
      await recordNotice(deps.pool, notice, undefined, now);
      await publishNotices([notice]);
      await deps.publish(notice.envelope);
      await markResentLinkMailed(db, resend, now);
    }
    return due.length;
  });
}
