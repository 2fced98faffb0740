// Inactive portal mailboxes (issue 11): first warning, second warning, then deletion for good, each an audit event.
//
// A warning is claimed, audited and put into the trace's outbox in one transaction, and published after the commit
// (notices.ts). So a crash can neither lose a decided warning (the outbox sends it in the next round) nor make a
// second one (the claim is the table's primary key: one row per mailbox, kind and period; a re-sent envelope has the
// same message id, which deliver delivers once). Sending first and recording after would send twice after a crash;
// recording first without the outbox would count a warning that never went out, and delete without warning.
//
// A deletion removes the mailbox's rows (messages, tokens, warnings) and the certificates and OpenPGP keys its owner
// uploaded on the portal, and audits it (with their fingerprints), in one transaction that also puts one notice per
// sender of unread inbox messages into the outbox; after the commit the mailbox's key is destroyed in the key store
// (from then on no dump opens it) and the notices are published. A crash between commit and destroy leaves a key
// without a mailbox: the mailbox-keys sweep destroys it (collectOrphanMailboxKeys).
import type { BlobStore } from '@smgw/blob-store';
import { type Pool, withTransaction } from '@smgw/db';
import { type Envelope, newTraceId } from '@smgw/envelope';
import {
  claimInactivityWarning,
  deleteMailbox,
  type InactivitySchedule,
  type InactivityWarningKind,
  listDueInactivityWarnings,
  listMailboxesDueForDeletion,
  listUnreadInboxMessageIds,
  lockMailboxDueForDeletion,
  type MailboxKeyStore,
  recordMailboxAudit,
} from '@smgw/mailbox-store';
import type { Logger } from '@smgw/observability';
import { sendersOf } from '@smgw/trace';
import type { ReaperMetrics } from './metrics.ts';
import {
  type Publisher,
  portalLinks,
  publishNotices,
  type ReaperTemplates,
  recordNotice,
  writeNotice,
} from './notices.ts';

export interface InactivityDeps {
  pool: Pool;
  blobStore: BlobStore;
  mailboxKeys: MailboxKeyStore;
  publisher: Publisher;
  templates: ReaperTemplates;
  hostname: string;
  publicUrl: string;
  schedule: InactivitySchedule;
  log: Logger;
  metrics?: ReaperMetrics | undefined;
}

/** Mailboxes handled per batch. */
const BATCH = 50;
/** At most this many unread messages are listed in a sender's notice (the rest are counted). */
const LISTED_MESSAGES = 20;

/** A time as the mails show it: unambiguous in both languages. */
export function mailTime(at: Date): string {
  return `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** Sends the warnings of `kind` due at `now`; returns how many. */
export async function sendInactivityWarnings(
  deps: InactivityDeps,
  kind: InactivityWarningKind,
  now: Date,
): Promise<number> {
  const links = portalLinks(deps.publicUrl);
  let sent = 0;
  for (;;) {
    const due = await listDueInactivityWarnings(deps.pool, kind, deps.schedule, now, BATCH);
    const outbox: Envelope[] = [];
    for (const warning of due) {
      const envelope = await writeNotice(deps, {
        kind: `inactivity-${kind}`,
        to: warning.address,
        values: {
          address: warning.address,
          lastActivity: mailTime(warning.periodStart),
          deletionDate: mailTime(warning.deletionDueAt),
          loginUrl: links.login,
          reactivateUrl: links.reactivate,
        },
        traceId: newTraceId(),
        now,
      });
      const claimed = await withTransaction(deps.pool, async (db) => {
        const claim = { mailboxId: warning.mailboxId, kind, periodStart: warning.periodStart, sentAt: now };
        if (!(await claimInactivityWarning(db, { ...claim, deletionDueAt: warning.deletionDueAt }))) return false;
        await recordMailboxAudit(db, {
          mailboxId: warning.mailboxId,
          address: warning.address,
          event: 'mailbox.warned',
          actor: 'reaper',
          at: now,
          detail: {
            kind,
            periodStart: warning.periodStart.toISOString(),
            deletionDueAt: warning.deletionDueAt.toISOString(),
            noticeId: envelope.id,
          },
        });
        await recordNotice(db, envelope, `inactivity-${kind}`, now, { mailboxId: warning.mailboxId });
        return true;
      });
      // Not claimed: a login, a lock or another reaper came first; the mail's blob is collected as unreferenced.
      if (claimed) outbox.push(envelope);
    }
    await publishNotices(deps.pool, deps.publisher, outbox, now, deps.log);
    sent += outbox.length;
    deps.metrics?.warnings.inc({ kind }, outbox.length);
    for (const envelope of outbox) {
      deps.log.info({ code: 'REAPER_MAILBOX_WARNED', kind, messageId: envelope.id }, 'inactivity warning sent');
    }
    if (due.length < BATCH || outbox.length === 0) return sent;
  }
}

/** Deletes the mailboxes due at `now`; returns how many. */
export async function deleteInactiveMailboxes(deps: InactivityDeps, now: Date): Promise<number> {
  let deleted = 0;
  for (;;) {
    const due = await listMailboxesDueForDeletion(deps.pool, deps.schedule, now, BATCH);
    let deletedInBatch = 0;
    for (const mailboxId of due) {
      const outcome = await withTransaction(deps.pool, async (db) => {
        const mailbox = await lockMailboxDueForDeletion(db, mailboxId, deps.schedule, now);
        if (!mailbox) return undefined; // logged in meanwhile, or another reaper has it
        const unread = await sendersOf(db, await listUnreadInboxMessageIds(db, mailbox.id));
        const notices = await senderNotices(deps, mailbox.address, unread, now);
        const gone = await deleteMailbox(db, mailbox.id);
        if (!gone) return undefined;
        await recordMailboxAudit(db, {
          mailboxId: mailbox.id,
          address: mailbox.address,
          event: 'mailbox.deleted',
          actor: 'reaper',
          at: now,
          detail: {
            reason: 'inactivity',
            messages: gone.messages,
            bytes: gone.bytes,
            certificates: gone.certificates,
            pgpKeys: gone.pgpKeys,
            sendersTold: notices.length,
            notices: notices.map((n) => n.id),
          },
        });
        for (const notice of notices) {
          await recordNotice(db, notice, 'mailbox-deleted-sender', now, { mailboxId: mailbox.id });
        }
        return { ...gone, notices };
      });
      if (!outcome) continue;
      // Committed: now the key goes, and with it every copy of the mailbox's content anywhere.
      await deps.mailboxKeys.destroy(mailboxId);
      await publishNotices(deps.pool, deps.publisher, outcome.notices, now, deps.log);
      deleted++;
      deletedInBatch++;
      deps.metrics?.mailboxesDeleted.inc();
      deps.metrics?.reclaimedBytes.inc({ sweep: 'mailbox-deletions' }, outcome.bytes);
      deps.log.info(
        {
          code: 'REAPER_MAILBOX_DELETED',
          mailboxId,
          messages: outcome.messages,
          bytes: outcome.bytes,
          certificates: outcome.certificates,
          pgpKeys: outcome.pgpKeys,
          notices: outcome.notices.map((n) => n.id),
        },
        'inactive mailbox deleted for good',
      );
    }
    if (due.length < BATCH || deletedInBatch === 0) return deleted;
  }
}

/** One notice per sender address of the unread messages (the null sender is told nothing). */
async function senderNotices(
  deps: InactivityDeps,
  recipient: string,
  unread: { messageId: string; mailFrom: string; receivedAt: Date }[],
  now: Date,
): Promise<Envelope[]> {
  const bySender = new Map<string, { messageId: string; receivedAt: Date }[]>();
  for (const sent of unread) {
    if (sent.mailFrom === '') continue;
    const sender = sent.mailFrom.toLowerCase();
    bySender.set(sender, [...(bySender.get(sender) ?? []), sent]);
  }
  const notices: Envelope[] = [];
  for (const [sender, messages] of bySender) {
    const listed = messages.slice(0, LISTED_MESSAGES).map((m) => `  ${mailTime(m.receivedAt)}  ${m.messageId}`);
    if (messages.length > LISTED_MESSAGES) listed.push(`  (+ ${messages.length - LISTED_MESSAGES})`);
    notices.push(
      await writeNotice(deps, {
        kind: 'mailbox-deleted-sender',
        to: sender,
        values: { recipient, deletedAt: mailTime(now), messages: listed.join('\n') },
        traceId: newTraceId(),
        relatesTo: messages[0]?.messageId,
        now,
      }),
    );
  }
  return notices;
}
