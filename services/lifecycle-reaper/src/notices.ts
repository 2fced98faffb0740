// The mails the reaper writes: the two inactivity warnings to a mailbox, to each sender of messages a deleted
// mailbox never read, and the DSN to the sender of a parked message given up (expiry-dsn.ts). German then English,
// from templates/<kind>.*; none carries anything of a message's content (only addresses, gateway message ids and
// dates; the DSN at most the header block of the message as the sender sent it). Written to the blob store, recorded in the trace as an
// outbox (@smgw/trace notice-outbox.ts) in the caller's transaction, published to deliver after the commit.
import { fileURLToPath } from 'node:url';
import type { BlobStore } from '@smgw/blob-store';
import type { Pool, PoolClient } from '@smgw/db';
import { type Envelope, generatedEnvelope, newMessageId } from '@smgw/envelope';
import { type BilingualTemplates, bilingualNoticeMail, type GeneratedMail, loadBilingualTemplates } from '@smgw/mime';
import type { Logger } from '@smgw/observability';
import { markNoticePublished, recordGeneratedMail, unpublishedNotices } from '@smgw/trace';

export const TEMPLATES_DIR = fileURLToPath(new URL('../templates/', import.meta.url));
/** The stage name in the trace of everything the reaper writes. */
export const REAPER_STAGE = 'lifecycle-reaper';

export const NOTICE_KINDS = [
  'inactivity-first',
  'inactivity-second',
  'mailbox-deleted-sender',
  'parked-expired-dsn',
] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];
export type ReaperTemplates = Record<NoticeKind, BilingualTemplates>;

export async function loadReaperTemplates(dir: string = TEMPLATES_DIR): Promise<ReaperTemplates> {
  const loaded = await Promise.all(NOTICE_KINDS.map((kind) => loadBilingualTemplates(dir, kind)));
  return Object.fromEntries(NOTICE_KINDS.map((kind, i) => [kind, loaded[i]])) as ReaperTemplates;
}

/** The portal pages the warnings link to. */
export function portalLinks(publicUrl: string) {
  const base = publicUrl.replace(/\/+$/, '');
  return { login: `${base}/anmelden`, reactivate: `${base}/reaktivieren` };
}

export interface NoticeDeps {
  blobStore: BlobStore;
  templates: ReaperTemplates;
  hostname: string;
}

export interface NoticeInput {
  kind: NoticeKind;
  to: string;
  values: Record<string, string>;
  traceId: string;
  relatesTo?: string | undefined;
  now: Date;
}

/** Writes the mail to the blob store; returns its envelope (direction generated, null sender). */
export async function writeNotice(deps: NoticeDeps, input: NoticeInput): Promise<Envelope> {
  const id = newMessageId(input.now.getTime());
  const mail = bilingualNoticeMail(deps.templates[input.kind], {
    to: input.to,
    values: input.values,
    hostname: deps.hostname,
    date: input.now,
    messageId: id,
    relatesTo: input.relatesTo,
  });
  return storeMail(deps, id, mail, input);
}

/** Writes a mail the reaper made (id: its gateway id) to the blob store; returns its envelope for deliver. */
export async function storeMail(
  deps: Pick<NoticeDeps, 'blobStore' | 'hostname'>,
  id: string,
  mail: GeneratedMail,
  input: Pick<NoticeInput, 'to' | 'traceId' | 'relatesTo' | 'now'>,
): Promise<Envelope> {
  const blob = await deps.blobStore.put(mail.createReadStream(), { messageId: id, maxBytes: 1024 * 1024 });
  return generatedEnvelope({
    id,
    traceId: input.traceId,
    relatesTo: input.relatesTo,
    recipients: [input.to],
    blob,
    hostname: deps.hostname,
    createdAt: input.now,
  });
}

/** The notice into the trace's outbox, in the caller's transaction. */
export async function recordNotice(
  db: Pool | PoolClient,
  envelope: Envelope,
  kind: NoticeKind,
  at: Date,
  data: Record<string, unknown>,
): Promise<void> {
  await recordGeneratedMail(db, envelope, { stage: REAPER_STAGE, kind, relatesTo: envelope.relatesTo, at, data });
}

export interface Publisher {
  /** Resolves when the broker confirmed the envelope (mq.publish); a dry run's does nothing. */
  publish(envelope: Envelope): Promise<void>;
}

/** Publishes committed notices and marks each published. A failure leaves it in the outbox for the next round. */
export async function publishNotices(
  pool: Pool,
  publisher: Publisher,
  envelopes: readonly Envelope[],
  now: Date,
  log: Logger,
): Promise<number> {
  let published = 0;
  for (const envelope of envelopes) {
    try {
      await publisher.publish(envelope);
      await markNoticePublished(pool, envelope.id, REAPER_STAGE, now);
      published++;
    } catch (err) {
      log.warn(
        { code: 'REAPER_NOTICE_NOT_PUBLISHED', messageId: envelope.id, err },
        'notice not published; it is sent again in the next round',
      );
    }
  }
  return published;
}

/** How far back the outbox is looked at: a notice older than this and still unpublished is left to an operator. */
const OUTBOX_LOOKBACK_MS = 7 * 86_400_000;

/** The notices of earlier rounds that were committed but never confirmed (a crash, the broker away): again. */
export async function republishNotices(
  pool: Pool,
  publisher: Publisher,
  hostname: string,
  now: Date,
  log: Logger,
): Promise<number> {
  const pending = await unpublishedNotices(pool, REAPER_STAGE, new Date(now.getTime() - OUTBOX_LOOKBACK_MS), 100);
  const envelopes = pending.map((m) =>
    generatedEnvelope({
      id: m.id,
      traceId: m.traceId,
      relatesTo: m.relatesTo,
      recipients: m.recipients,
      blob: m.blob,
      hostname,
      createdAt: m.receivedAt,
    }),
  );
  return publishNotices(pool, publisher, envelopes, now, log);
}
