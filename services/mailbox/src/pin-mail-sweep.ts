// The recipient's PIN comes in a second mail, SMGW_PIN_DELAY after the activation link (a stolen inbox alone should
// not be enough at once; the sender has the PIN at once, to pass on by phone). The due time is a column of the
// token; this sweep sends what is due. Tokens are locked with SKIP LOCKED, so replicas share the work; the PIN mail
// is published (confirmed) before the token is marked, so a crash sends it again rather than never.
import type { BlobStore } from '@smgw/blob-store';
import { type Pool, withTransaction } from '@smgw/db';
import type { Envelope } from '@smgw/envelope';
import { lockDuePinMails, type MailboxKeyStore, markPinMailSent } from '@smgw/mailbox-store';
import { rfc5322Date } from '@smgw/mime';
import type { Logger } from '@smgw/observability';
import { type MailboxTemplates, noticeEnvelope, publishNotices, recordNotice } from './notices.ts';
import { sendDueResentLinkMails } from './resent-link-mails.ts';

export interface PinMailDeps {
  pool: Pool;
  blobStore: BlobStore;
  mailboxKeys: MailboxKeyStore;
  hostname: string;
  templates: MailboxTemplates;
  publish: (envelope: Envelope) => Promise<void>;
  onSent?: () => void;
  now?: () => Date;
}

/** The sweep also sends the link mails of operators' resends (resent-link-mails.ts): they link to the portal. */
export interface PinSweepDeps extends PinMailDeps {
  /** SMGW_PUBLIC_URL */
  publicUrl: string;
}

/** Sends up to `limit` due PIN mails; returns how many. */
export async function sendDuePinMails(deps: PinMailDeps, limit = 20): Promise<number> {
  const now = (deps.now ?? (() => new Date()))();
  return withTransaction(deps.pool, async (db) => {
    const due = await lockDuePinMails(db, deps.mailboxKeys, now, limit);
    for (const { token, address, secrets } of due) {
      const notice = await noticeEnvelope(deps, {
        kind: 'pin-mail',
        to: address,
        values: { pin: secrets.pin, expiresAt: rfc5322Date(token.expiresAt) },
        // A token of self-registration or re-activation has no message: its mails get a trace of their own.
        traceId: token.traceId ?? token.id.replaceAll('-', ''),
        relatesTo: token.messageId ?? undefined,
        now,
      });
      // Committed before publishing: deliver records against the message row.
      await recordNotice(deps.pool, notice, token.messageId ?? undefined, now);
      await publishNotices([notice]);
      await deps.publish(notice.envelope);
      await markPinMailSent(db, token.id, now);
      deps.onSent?.();
    }
    return due.length;
  });
}

/** How often the sweep looks: a quarter of the delay, between 250 ms and 30 s. */
export function pinSweepInterval(pinDelayMs: number): number {
  return Math.min(30_000, Math.max(250, Math.floor(pinDelayMs / 4)));
}

/** Runs the sweep every `intervalMs` (never two at once); stop() waits for a running one. */
export function startPinMailSweep(deps: PinSweepDeps, intervalMs: number, log: Logger): { stop(): Promise<void> } {
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
