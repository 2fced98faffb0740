// The mails the portal's forms send (registration, re-activation, agency registration). Each caller holds a
// transaction open around sendPortalNotice, so what the mail is about (a token, a mailbox, a registration, the
// audit row) commits only after the broker confirmed the mail: if it refuses, nothing of it is kept.
import type { PoolClient } from '@smgw/db';
import { linkLifetimeOf, type Mailbox, recordMailboxAudit, replaceActivationToken } from '@smgw/mailbox-store';
import { rfc5322Date } from '@smgw/mime';
import { type Notice, type NoticeKind, noticeEnvelope, portalLinks, publishNotices, recordNotice } from '../notices.ts';
import type { PortalContext } from './context.ts';

/** Writes a notice mail with the portal's templates and hostname (not yet recorded nor published). */
export function portalNotice(ctx: PortalContext, input: Parameters<typeof noticeEnvelope>[1]): Promise<Notice> {
  const { deps, settings } = ctx;
  return noticeEnvelope({ blobStore: deps.blobStore, templates: deps.templates, hostname: settings.hostname }, input);
}

/** What a notice is recorded as in the mailbox's audit trail (by 'portal', naming the notice). */
export interface NoticeAudit {
  mailbox: Pick<Mailbox, 'id' | 'address'>;
  event: string;
}

/** Records the audit row (when given) in `db`, the notice's message row, and publishes the notice (confirmed). */
export async function sendPortalNotice(
  ctx: PortalContext,
  db: PoolClient,
  notice: Notice,
  now: Date,
  audit?: NoticeAudit,
): Promise<void> {
  if (audit) {
    await recordMailboxAudit(db, {
      mailboxId: audit.mailbox.id,
      address: audit.mailbox.address,
      event: audit.event,
      actor: 'portal',
      at: now,
      detail: { notice: notice.envelope.id },
    });
  }
  // The notice's message row is committed before publishing: deliver records against it.
  await recordNotice(ctx.deps.pool, notice, undefined, now);
  await publishNotices([notice]);
  await ctx.deps.publish(notice.envelope);
}

/** The link mail of each kind of token the portal makes. */
const LINK_MAIL_KINDS = {
  registration: 'registration-link',
  reactivation: 'reactivation-link',
} as const satisfies Record<string, NoticeKind>;

export interface ActivationLinkMail {
  mailbox: Mailbox;
  purpose: keyof typeof LINK_MAIL_KINDS;
  /** The audit event that names the link mail. */
  event: string;
  now: Date;
}

/**
 * Every earlier link and PIN of the mailbox stops working; a new token is made and its link mailed now (the PIN
 * mail follows from the PIN mail sweep, SMGW_PIN_DELAY later). In the caller's transaction.
 */
export async function mailNewActivationLink(ctx: PortalContext, db: PoolClient, mail: ActivationLinkMail) {
  const { deps, settings } = ctx;
  const { mailbox, now } = mail;
  const { token, secrets } = await replaceActivationToken(db, {
    mailbox,
    keys: deps.mailboxKeys,
    now,
    lifetimeMs: linkLifetimeOf(mailbox, {
      activationMs: settings.linkLifetimeMs,
      resetMs: settings.reactivationLinkLifetimeMs,
    }),
    pinDelayMs: settings.pinDelayMs,
    purpose: mail.purpose,
  });
  const notice = await portalNotice(ctx, {
    kind: LINK_MAIL_KINDS[mail.purpose],
    to: mailbox.address,
    values: {
      activationUrl: portalLinks(settings.publicUrl).activation(secrets.link),
      expiresAt: rfc5322Date(token.expiresAt),
    },
    // No message: the token's own trace, as its PIN mail has (pin-mail-sweep.ts).
    traceId: token.id.replaceAll('-', ''),
    now,
  });
  await sendPortalNotice(ctx, db, notice, now, { mailbox, event: mail.event });
}
