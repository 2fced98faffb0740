// What happened to mailboxes, kept after a mailbox is deleted (mailbox_audit has no foreign key): activation,
// lock-outs, operator actions, inactivity warnings, deletion. Never message content or secrets in `detail`.
import type { Pool, PoolClient } from '@smgw/db';

type Queryable = Pool | PoolClient;

export interface MailboxAuditEvent {
  mailboxId: string;
  address: string;
  /** e.g. mailbox.activated, mailbox.reactivation-requested, mailbox.locked, mailbox.warned, mailbox.deleted */
  event: string;
  /** 'portal', 'mailbox-stage', 'reaper', 'admin:<who>' */
  actor: string;
  at: Date;
  detail?: Record<string, unknown>;
}

export async function recordMailboxAudit(db: Queryable, entry: MailboxAuditEvent): Promise<void> {
  await db.query(
    'insert into mailbox_audit (mailbox_id, address, event, actor, at, detail) values ($1, $2, $3, $4, $5, $6)',
    [entry.mailboxId, entry.address, entry.event, entry.actor, entry.at, JSON.stringify(entry.detail ?? {})],
  );
}

function toAuditEvent(row: Record<string, unknown>): MailboxAuditEvent {
  return {
    mailboxId: row.mailbox_id as string,
    address: row.address as string,
    event: row.event as string,
    actor: row.actor as string,
    at: row.at as Date,
    detail: row.detail as Record<string, unknown>,
  };
}

/** An address's audit trail, oldest first (also of mailboxes it had before and that were deleted). */
export async function listMailboxAudit(db: Queryable, address: string, limit = 200): Promise<MailboxAuditEvent[]> {
  const found = await db.query('select * from mailbox_audit where address = $1 order by at, id limit $2', [
    address,
    limit,
  ]);
  return found.rows.map(toAuditEvent);
}

/** An address's latest audit events, newest first (the admin API's view of a mailbox). */
export async function listRecentMailboxAudit(db: Queryable, address: string, limit = 50): Promise<MailboxAuditEvent[]> {
  const found = await db.query('select * from mailbox_audit where address = $1 order by at desc, id desc limit $2', [
    address,
    limit,
  ]);
  return found.rows.map(toAuditEvent);
}
