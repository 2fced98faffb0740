// The views of messages opened in the last minute, so that the frame after its page, a reload, or a client opening
// the same big message again and again does not parse and sanitise it again (seconds of a worker for 4 MB of HTML).
// Keyed by mailbox and message row and read only after the row was found in the session's mailbox (pages/message.ts):
// a view is never served to another mailbox, nor after its message is gone. Bounded in bytes (oldest out first);
// deleting a message or a mailbox forgets its views at once, so no plaintext outlives them here.
import type { MessageView } from './message-view.ts';
import type { ViewOutcome } from './message-view-workers.ts';

/** What is kept: a view, whole or without its HTML, or that it was not parsed in its time ('waiting' is not kept). */
export type CachedViewOutcome = Exclude<ViewOutcome, { timedOut: 'waiting' }>;

export interface MessageViewCache {
  get(mailboxId: string, rowId: string): CachedViewOutcome | undefined;
  set(mailboxId: string, rowId: string, outcome: CachedViewOutcome): void;
  forgetMessages(mailboxId: string, rowIds: readonly string[]): void;
  forgetMailbox(mailboxId: string): void;
}

export interface MessageViewCacheOptions {
  /** How long a view is kept after it was made. */
  ttlMs: number;
  /** Estimated bytes of all kept views together; a view larger than a quarter of it is not kept. */
  maxBytes: number;
  now(): number;
}

export const MESSAGE_VIEW_CACHE_TTL_MS = 60_000;
export const MESSAGE_VIEW_CACHE_MAX_BYTES = 64 * 1024 * 1024;

interface Entry {
  outcome: CachedViewOutcome;
  bytes: number;
  expiresAt: number;
}

export function createMessageViewCache(options: MessageViewCacheOptions): MessageViewCache {
  // Map order is insertion order: the first entry is the oldest.
  const entries = new Map<string, Entry>();
  let total = 0;
  const keyOf = (mailboxId: string, rowId: string) => `${mailboxId}/${rowId}`;
  const remove = (key: string) => {
    const entry = entries.get(key);
    if (!entry) return;
    entries.delete(key);
    total -= entry.bytes;
  };

  return {
    get(mailboxId, rowId) {
      const key = keyOf(mailboxId, rowId);
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (entry.expiresAt <= options.now()) {
        remove(key);
        return undefined;
      }
      return entry.outcome;
    },
    set(mailboxId, rowId, outcome) {
      const key = keyOf(mailboxId, rowId);
      remove(key);
      const bytes = estimatedBytes(outcome);
      if (bytes > options.maxBytes / 4) return;
      const now = options.now();
      for (const [oldest, entry] of entries) {
        if (total + bytes <= options.maxBytes && entry.expiresAt > now) break;
        remove(oldest);
      }
      entries.set(key, { outcome, bytes, expiresAt: now + options.ttlMs });
      total += bytes;
    },
    forgetMessages(mailboxId, rowIds) {
      for (const rowId of rowIds) remove(keyOf(mailboxId, rowId));
    },
    forgetMailbox(mailboxId) {
      for (const key of [...entries.keys()]) if (key.startsWith(`${mailboxId}/`)) remove(key);
    },
  };
}

/** Two bytes a character of the long strings (text, HTML), and a little for the rest. */
function estimatedBytes(outcome: CachedViewOutcome): number {
  const view: MessageView | undefined = 'done' in outcome ? outcome.done : 'view' in outcome ? outcome.view : undefined;
  if (!view) return 256;
  return 4096 + 2 * ((view.text?.length ?? 0) + (view.html?.html.length ?? 0) + view.attachments.length * 256);
}
