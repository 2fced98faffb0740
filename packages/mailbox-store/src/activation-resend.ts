// An operator sends a mailbox a new activation link and PIN (the admin API's resend-activation). The admin service
// writes no mails: it replaces the token and records, in the audit trail, that the link mail is due; the mailbox
// service's PIN mail sweep sends that link mail (from its templates) and later, as for every token, the PIN mail.
// The audit row is the outbox: `mailbox.activation-resent` names the token; `mailbox.activation-link-mailed` marks
// the link mail sent. Deleting the mailbox deletes the token, so nothing is sent for a mailbox that is gone.
import type { PoolClient } from '@smgw/db';
import {
  type ActivationToken,
  DUE_TOKENS_FROM,
  type DuePinMail,
  type EnsureTokenInput,
  NOT_ABANDONED_TOKEN,
  type OpenedDueToken,
  openDueToken,
  openDueTokens,
  replaceActivationToken,
} from './activation-tokens.ts';
import { recordMailboxAudit } from './audit.ts';
import type { MailboxKeyStore } from './mailbox-key-store.ts';

export const ACTIVATION_RESENT_EVENT = 'mailbox.activation-resent';
export const ACTIVATION_LINK_MAILED_EVENT = 'mailbox.activation-link-mailed';

/**
 * Every earlier link and PIN of the mailbox stops working; a new token (purpose 'reactivation') is made whose link
 * mail is due now and whose PIN mail is due after `pinDelayMs`. In the caller's transaction. The secrets are not
 * returned: whoever asks for the resend (an operator) never sees them.
 */
export async function requestActivationResend(
  db: PoolClient,
  input: Omit<EnsureTokenInput, 'purpose' | 'messageId' | 'traceId'> & { actor: string },
): Promise<ActivationToken> {
  const { token } = await replaceActivationToken(db, { ...input, purpose: 'reactivation' });
  await recordMailboxAudit(db, {
    mailboxId: input.mailbox.id,
    address: input.mailbox.address,
    event: ACTIVATION_RESENT_EVENT,
    actor: input.actor,
    at: input.now,
    detail: { tokenId: token.id, linkMail: 'due', pinMailDueAt: token.pinMailDueAt.toISOString() },
  });
  return token;
}

const DUE_RESENT_LINK_MAILS_WHERE = `where t.purpose = 'reactivation' and t.used_at is null and t.revoked_at is null
    and t.expires_at > $1 and t.secrets_sealed is not null and ${NOT_ABANDONED_TOKEN}
    and exists (select 1 from mailbox_audit a
                 where a.mailbox_id = t.mailbox_id and a.event = '${ACTIVATION_RESENT_EVENT}' and a.detail->>'tokenId' = t.id)
    and not exists (select 1 from mailbox_audit a
                     where a.mailbox_id = t.mailbox_id and a.event = '${ACTIVATION_LINK_MAILED_EVENT}'
                       and a.detail->>'tokenId' = t.id)`;

/**
 * Live tokens of requestActivationResend whose link mail has not gone out, locked for the caller's transaction
 * (other replicas skip them); the caller sends each and marks it with markResentLinkMailed before committing.
 * Throws when any of them does not open: the sweep uses lockNextDueResentLinkMail, one token per transaction.
 */
export async function lockDueResentLinkMails(
  db: PoolClient,
  keys: MailboxKeyStore,
  now: Date,
  limit: number,
): Promise<DuePinMail[]> {
  const found = await db.query(
    `${DUE_TOKENS_FROM} ${DUE_RESENT_LINK_MAILS_WHERE}
      order by t.created_at limit $2
        for update of t skip locked`,
    [now, limit],
  );
  const due: typeof found.rows = [];
  for (const row of found.rows) if (await stillDue(db, row.id, now)) due.push(row);
  return openDueTokens(keys, due);
}

/**
 * Whether the locked token's link mail is still due, read again in a statement of its own: "mailed" is a row of
 * mailbox_audit, not of the locked token, so the locking statement's snapshot may predate another replica's commit
 * of it (the token row itself did not change, so PostgreSQL does not read it again). Without this second look both
 * replicas would send the link.
 */
async function stillDue(db: PoolClient, tokenId: string, now: Date): Promise<boolean> {
  const found = await db.query(`select 1 from mailbox_tokens t ${DUE_RESENT_LINK_MAILS_WHERE} and t.id = $2`, [
    now,
    tokenId,
  ]);
  return (found.rowCount ?? 0) > 0;
}

/**
 * The oldest resend whose link mail has not gone out (nor been abandoned), leaving out the tokens in `skip` (tried
 * already in this sweep), locked for the caller's transaction and opened; undefined when none.
 */
export async function lockNextDueResentLinkMail(
  db: PoolClient,
  keys: MailboxKeyStore,
  now: Date,
  skip: readonly string[] = [],
): Promise<OpenedDueToken | undefined> {
  const passed = [...skip];
  for (;;) {
    const found = await db.query(
      `${DUE_TOKENS_FROM} ${DUE_RESENT_LINK_MAILS_WHERE} and t.id <> all($2::text[])
        order by t.created_at limit 1
          for update of t skip locked`,
      [now, passed],
    );
    const row = found.rows[0];
    if (!row) return undefined;
    if (await stillDue(db, row.id, now)) return openDueToken(keys, row);
    passed.push(row.id); // mailed by another replica meanwhile
  }
}

/** The link mail of a resend went out (published): recorded, so it is not sent again. */
export async function markResentLinkMailed(
  db: PoolClient,
  due: Pick<DuePinMail, 'token' | 'address'>,
  at: Date,
): Promise<void> {
  await recordMailboxAudit(db, {
    mailboxId: due.token.mailboxId,
    address: due.address,
    event: ACTIVATION_LINK_MAILED_EVENT,
    actor: 'mailbox-stage',
    at,
    detail: { tokenId: due.token.id },
  });
}
