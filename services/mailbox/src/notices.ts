// The mails the mailbox stage writes: to the recipient (activation link, login link, the delayed PIN, "mailbox
// full") and to the sender (the PIN to pass on by phone, the DSN "mailbox full"). Plain text, German then English,
// from template files (templates/<kind>.*). None carries anything of the message's content: not its subject, not
// its headers, only the envelope's addresses and the gateway's message id.
import { fileURLToPath } from 'node:url';
import { type BlobStore, SMALL_BLOB_BYTES, type StagedBlob } from '@smgw/blob-store';
import type { Pool, PoolClient } from '@smgw/db';
import { type Envelope, generatedEnvelope, newMessageId } from '@smgw/envelope';
import {
  type BilingualTemplates,
  bilingualNoticeMail,
  bilingualText,
  deliveryReportMail,
  type GeneratedMail,
  loadBilingualTemplates,
  renderTemplate,
} from '@smgw/mime';
import { recordGeneratedMail } from '@smgw/trace';

export const TEMPLATES_DIR = fileURLToPath(new URL('../templates/', import.meta.url));

export const NOTICE_KINDS = [
  'activation-link',
  'login-link',
  'pin-mail',
  'sender-pin',
  'over-quota-dsn',
  'over-quota-notice',
  'reactivation-link',
  /** An operator's resend: a new link (earlier ones revoked); the PIN follows in pin-mail. */
  'activation-resent',
  /** Self-registration of a new address: its link (the PIN follows in pin-mail). */
  'registration-link',
  /** Self-registration of an address that has a mailbox: log in or ask for a new link. */
  'registration-existing',
  /** The agency registration form's information mail to the contact: next steps and a checklist. */
  'agency-registration-received',
] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

export type MailboxTemplates = Record<NoticeKind, BilingualTemplates>;

export async function loadMailboxTemplates(dir: string = TEMPLATES_DIR): Promise<MailboxTemplates> {
  const loaded = await Promise.all(NOTICE_KINDS.map((kind) => loadBilingualTemplates(dir, kind)));
  return Object.fromEntries(NOTICE_KINDS.map((kind, i) => [kind, loaded[i]])) as MailboxTemplates;
}

/** The portal's pages the mails link to (the pages themselves come with the portal). */
export function portalLinks(publicUrl: string) {
  const base = publicUrl.replace(/\/+$/, '');
  return {
    activation: (token: string) => `${base}/aktivieren/${token}`,
    login: `${base}/anmelden`,
    reactivation: `${base}/reaktivieren`,
    agencyRegistration: `${base}/behoerde-registrieren`,
  };
}

export interface NoticeInput {
  kind: NoticeKind;
  to: string;
  /** Placeholders of the templates; `hostname` is added. */
  values: Record<string, string>;
  hostname: string;
  now: Date;
  /** Gateway id of the mail itself. */
  id: string;
  /** The message the mail is about (trace and X-SMGW-Related-Message-Id); none for registration and re-activation. */
  relatesTo?: string | undefined;
  /** For the DSN: the original's arrival and the recipient it failed for. */
  dsn?: { arrivedAt: Date; recipient: string };
}

export function buildNoticeMail(templates: MailboxTemplates, input: NoticeInput): GeneratedMail {
  const template = templates[input.kind];
  const notice = {
    to: input.to,
    values: input.values,
    hostname: input.hostname,
    date: input.now,
    messageId: input.id,
    relatesTo: input.relatesTo,
  };
  if (!input.dsn) return bilingualNoticeMail(template, notice);
  const values = { ...input.values, hostname: input.hostname };
  const text = bilingualText(
    renderTemplate(template.de, values),
    renderTemplate(template.en, values),
    template.separator,
  );
  // RFC 3464, without quoting the original: a full mailbox is 5.2.2 (RFC 3463).
  return deliveryReportMail({
    headers: {
      fromName: template.from,
      hostname: input.hostname,
      to: input.to,
      subject: renderTemplate(template.subject, values),
      date: input.now,
      messageId: input.id,
      extra: input.relatesTo ? [['X-SMGW-Related-Message-Id', input.relatesTo]] : [],
    },
    text,
    status: {
      reportingMta: input.hostname,
      messageId: input.relatesTo ?? input.id,
      arrivedAt: input.dsn.arrivedAt,
      recipients: [
        {
          recipient: input.dsn.recipient,
          status: '5.2.2',
          diagnostic: { type: 'X-SMGW', text: 'MAILBOX_QUOTA_EXCEEDED' },
        },
      ],
    },
  });
}

export interface NoticeDeps {
  blobStore: BlobStore;
  templates: MailboxTemplates;
  hostname: string;
}

/** A generated mail and what kind it is (for the trace). */
export interface Notice {
  kind: NoticeKind;
  envelope: Envelope;
  /** The mail's content, staged: its rows commit with the notice's own (recordNotice), then publishNotices. */
  blob: StagedBlob;
}

/**
 * Writes the mail (staged, see below) and returns its envelope for deliver (direction generated, null sender).
 *
 * A notice is at most SMALL_BLOB_BYTES (the templates make a few KB; a template grown past it fails here, loudly), so
 * with SMGW_BLOB_DIR too its content stays in the database and commits with the notice's message row, in the
 * caller's transaction: no commit of its own, and no file to put in place after that commit. The mailbox's arrival
 * record names its notices, and a redelivery publishes them again: a file that a crash between commit and rename
 * never put in place would be a notice lost.
 */
export async function noticeEnvelope(
  deps: NoticeDeps,
  input: Omit<NoticeInput, 'id' | 'hostname'> & {
    traceId: string;
    /** The notice's id when it must be the same each time it is made (messageIdFor); else a new one. */
    id?: string | undefined;
  },
): Promise<Notice> {
  const id = input.id ?? newMessageId(input.now.getTime());
  const mail = buildNoticeMail(deps.templates, { ...input, id, hostname: deps.hostname });
  const blob = await deps.blobStore.stage(mail.createReadStream(), { messageId: id, maxBytes: SMALL_BLOB_BYTES });
  const envelope = generatedEnvelope({
    id,
    traceId: input.traceId,
    relatesTo: input.relatesTo,
    recipients: [input.to],
    blob: blob.ref,
    hostname: deps.hostname,
    createdAt: input.now,
  });
  return { kind: input.kind, envelope, blob };
}

/**
 * The notice's own message row, its blob's rows and a `notice.generated` event, in the caller's transaction, before
 * it is published; once that commits, publishNotices.
 */
export async function recordNotice(
  db: PoolClient | Pool,
  notice: Notice,
  relatesTo: string | undefined,
  at: Date,
): Promise<void> {
  await recordGeneratedMail(
    db,
    notice.envelope,
    { stage: 'mailbox', kind: notice.kind, relatesTo, at },
    notice.blob.rows,
  );
}

/** After recordNotice's transaction committed: the notices' contents readable (nothing to do for rows alone). */
export async function publishNotices(notices: readonly Notice[]): Promise<void> {
  for (const notice of notices) await notice.blob.publish();
}

/** When recordNotice's transaction did not commit: nothing of the notices is left (nothing to do for rows alone). */
export async function discardNotices(notices: readonly Notice[]): Promise<void> {
  await Promise.all(notices.map((notice) => notice.blob.discard()));
}

/** Bytes as megabytes with one decimal, for the quota texts. */
export function megabytes(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}
