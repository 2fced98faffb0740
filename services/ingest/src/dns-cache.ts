// Answers of the DNS questions SPF, DKIM and DMARC ask, kept for a short while (SMGW_DNS_CACHE_SECONDS): most mail
// from the internet comes from a few domains, and each question otherwise costs a round trip to the resolver for
// every message. node:dns does not say an answer's TTL for TXT records, so an answer is kept for the setting's time,
// never longer; keep it well below the TTLs of the domains you care about (30 s by default; 0: no cache).
// Kept: answers, and "no such name" / "no such record" (ENOTFOUND, ENODATA), which are answers too. Never kept:
// timeouts, SERVFAIL and every other failure, so a resolver that recovers is asked again at once.
import { LRUCache } from 'lru-cache';
import type { DnsLookup } from './mail-auth.ts';

/** DNS error codes that are the zone's answer, not a failure to get one. */
const NEGATIVE_ANSWERS = new Set(['ENOTFOUND', 'ENODATA']);

type Kept = { answer: unknown } | { code: string; message: string };

export interface DnsCacheOptions {
  ttlMs: number;
  /** Questions kept at most; the least recently asked go first. */
  maxEntries?: number;
  /**
   * Bytes of answers kept at most (as JSON), default 4 MiB; an answer over a sixteenth of it is not kept. A stranger
   * can make us ask for TXT records of many domains of theirs, each up to 64 KiB over TCP: without a byte bound,
   * 10,000 of them would hold 640 MB.
   */
  maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;

/** What an answer costs in memory, about: its JSON (a negative answer, its message). */
function sizeOf(kept: Kept): number {
  return 'answer' in kept ? JSON.stringify(kept.answer ?? null).length : kept.message.length + kept.code.length;
}

/** `lookup` with its answers kept for `ttlMs`; the same question asked while one is on its way shares it. */
export function withDnsCache(lookup: DnsLookup, options: DnsCacheOptions): DnsLookup {
  if (options.ttlMs <= 0) return lookup;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const kept = new LRUCache<string, Kept>({
    max: options.maxEntries ?? 10_000,
    ttl: options.ttlMs,
    maxSize: maxBytes,
    maxEntrySize: Math.floor(maxBytes / 16),
    // The key counts too: names are up to 253 bytes.
    sizeCalculation: (value, key) => sizeOf(value) + key.length + 64,
  });
  const asking = new Map<string, Promise<Kept>>();
  const ask = (key: string, name: string, type: string): Promise<Kept> => {
    let question = asking.get(key);
    if (!question) {
      question = lookup(name, type).then(
        (answer: unknown): Kept => {
          kept.set(key, { answer });
          return { answer };
        },
        (err: unknown): Kept => {
          const code = (err as { code?: unknown })?.code;
          if (typeof code !== 'string' || !NEGATIVE_ANSWERS.has(code)) throw err;
          const negative = { code, message: (err as Error).message };
          kept.set(key, negative);
          return negative;
        },
      );
      asking.set(key, question);
      question.finally(() => asking.delete(key)).catch(() => {});
    }
    return question;
  };
  return async (name, type) => {
    const key = `${type} ${name.toLowerCase()}`;
    const answer = kept.get(key) ?? (await ask(key, name, type));
    // Every caller gets its own copy: mailauth may change what it is given.
    if ('answer' in answer) return structuredClone(answer.answer) as never;
    throw negativeAnswer(answer.message, answer.code);
  };
}

/**
 * The error a kept "no such name / record" answer is thrown as, without a stack trace: a stack would say nothing
 * about the zone, and capturing one for each of the several negative answers a message meets (no DMARC record, no
 * DKIM key, …) was about 0.2 ms of ingest's CPU per message under load.
 */
function negativeAnswer(message: string, code: string): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return Object.assign(new Error(message), { code });
  } finally {
    Error.stackTraceLimit = limit;
  }
}
