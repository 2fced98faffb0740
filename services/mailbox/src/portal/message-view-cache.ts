// The views of messages opened in the last minute (and the reply form's quotes of them), so that the frame after its page, a reload, or a client opening
// the same big message again and again does not parse and sanitise it again (seconds of a worker for 4 MB of HTML).
// Keyed by mailbox and message row and read only after the row was found in the session's mailbox (pages/message.ts):
// a view is never served to another mailbox, nor after its message is gone. Bounded in bytes (oldest out first);
// deleting a message or a mailbox, or logging out, forgets its views and quotes at once, so no plaintext outlives them.
// A view still in its worker then (seconds; by the clock up to the wait plus the CPU limit's backstop) is not kept
// when it comes back: `set` takes the stamp read before the work began, and refuses it once the mailbox was forgotten
// since.
import type { MessageView } from './message-view.ts';
import type { JobOutcome, ViewOutcome } from './message-view-workers.ts';
import type { QuoteSource } from './reply-context.ts';

/** What is kept: a view, whole or without its HTML, or that it was not parsed in its time ('waiting' is not kept). */
export type CachedViewOutcome = Exclude<ViewOutcome, { timedOut: 'waiting' }>;
/** A reply's quote (quoted text, sender, date), nothing to quote, or that it was not parsed in its time. */
export type CachedQuoteOutcome = Exclude<JobOutcome<QuoteSource | undefined>, { timedOut: 'waiting' }>;

/** What is kept of a message, by kind. */
export interface CachedOutcomes {
  view: CachedViewOutcome;
  quote: CachedQuoteOutcome;
}
const KINDS = ['view', 'quote'] as const satisfies readonly (keyof CachedOutcomes)[];

export interface MessageViewCache {
  get<K extends keyof CachedOutcomes>(kind: K, mailboxId: string, rowId: string): CachedOutcomes[K] | undefined;
  /** Read before a view is made; `set` takes it, so a view made across a forget of its mailbox is not kept. */
  stamp(): number;
  /** Keeps `outcome`, unless its mailbox (or this message) was forgotten after `since` (a `stamp()`). */
  set<K extends keyof CachedOutcomes>(
    kind: K,
    mailboxId: string,
    rowId: string,
    outcome: CachedOutcomes[K],
    since: number,
  ): void;
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
/**
 * Mailboxes whose last forget is remembered (for views in their workers meanwhile), oldest out first: ~100 bytes each.
 * Only this many forgets within one view's time (20 s by default) could let such a view be kept again.
 */
export const FORGOTTEN_MAILBOXES_KEPT = 10_000;

interface Entry {
  outcome: CachedOutcomes[keyof CachedOutcomes];
  bytes: number;
  expiresAt: number;
}

export function createMessageViewCache(options: MessageViewCacheOptions): MessageViewCache {
  // Map order is insertion order: the first entry is the oldest.
  const entries = new Map<string, Entry>();
  let total = 0;
  // Each forget takes the next number; a mailbox's last one is kept (re-inserted: the first entry is the oldest).
  let forgets = 0;
  const forgottenAt = new Map<string, number>();
  const markForgotten = (mailboxId: string) => {
    forgottenAt.delete(mailboxId);
    forgottenAt.set(mailboxId, ++forgets);
    if (forgottenAt.size > FORGOTTEN_MAILBOXES_KEPT) {
      const [oldest] = forgottenAt.keys();
      if (oldest !== undefined) forgottenAt.delete(oldest);
    }
  };
  const keyOf = (kind: keyof CachedOutcomes, mailboxId: string, rowId: string) => `${mailboxId}/${rowId}/${kind}`;
  const remove = (key: string) => {
    const entry = entries.get(key);
    if (!entry) return;
    entries.delete(key);
    total -= entry.bytes;
  };

  return {
    get<K extends keyof CachedOutcomes>(kind: K, mailboxId: string, rowId: string) {
      const key = keyOf(kind, mailboxId, rowId);
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (entry.expiresAt <= options.now()) {
        remove(key);
        return undefined;
      }
      // Stored under this kind's key by `set` only.
      return entry.outcome as CachedOutcomes[K];
    },
    stamp: () => forgets,
    set(kind, mailboxId, rowId, outcome, since) {
      if ((forgottenAt.get(mailboxId) ?? 0) > since) return;
      const key = keyOf(kind, mailboxId, rowId);
      remove(key);
      const bytes = estimatedBytes(kind, outcome);
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
      markForgotten(mailboxId);
      for (const rowId of rowIds) for (const kind of KINDS) remove(keyOf(kind, mailboxId, rowId));
    },
    forgetMailbox(mailboxId) {
      markForgotten(mailboxId);
      for (const key of [...entries.keys()]) if (key.startsWith(`${mailboxId}/`)) remove(key);
    },
  };
}

/** Two bytes a character of the long strings (text, HTML, quote), and a little for the rest. */
function estimatedBytes<K extends keyof CachedOutcomes>(kind: K, outcome: CachedOutcomes[K]): number {
  if (kind === 'quote') {
    const quote = outcome as CachedQuoteOutcome;
    return 256 + ('done' in quote ? 2 * (quote.done?.text.length ?? 0) : 0);
  }
  const shown = outcome as CachedViewOutcome;
  const view: MessageView | undefined = 'done' in shown ? shown.done : 'view' in shown ? shown.view : undefined;
  if (!view) return 256;
  return 4096 + 2 * ((view.text?.length ?? 0) + (view.html?.html.length ?? 0) + view.attachments.length * 256);
}
