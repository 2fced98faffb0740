// Small messages scanned by ingest itself (issue 12). A message of at most SMGW_INGEST_SCAN_MAX_BYTES is copied
// aside while it streams into the blob store and, once stored, sent from memory to clamd before the 250. An exact
// `stream: OK` lets its envelopes skip the scan stage: no queue hop, no blob read, the verdict scan would have written
// (plus `by: 'ingest'`). Ingest only ever clears: a finding, clamd down or slow, every session busy or a larger message
// leaves the envelope at `scan`, which decides as it always did (quarantine, notice, retry). So a clean message never
// waits long here, and nothing is refused or quarantined by ingest. A message that may carry a CMS SignedData
// (opaque-signed S/MIME, a .p7m) goes to the scan stage unscanned: clamd cannot look inside SignedData, and only the
// scan stage takes its content out to scan it; a clean `OK` here would let that content pass unscanned. A message that
// may carry a zip (a .docx too) goes there as well: clamd answers OK for a member it skipped over MaxFileSize, and only
// the scan stage counts what the members hold (services/scan/src/zip-members.ts).
import { Readable } from 'node:stream';
import { type ClamdPool, type ClamdWatchLog, createClamdPool, mayCarryZip, watchClamd } from '@smgw/clamd';
import { advance, type Envelope, splitAtOptionalStage, withVerdict } from '@smgw/envelope';
import { mayCarrySignedData } from '@smgw/signature-verify/signed-data-hint';
import { type TraceEvent, verificationRoutingEvents } from '@smgw/trace';

/**
 * Why ingest left a message to the scan stage (a metric label and the trace's `scanStage.reason`). `too-large` is
 * also a message of which no copy was kept because the copies of all messages had taken the budget; `signed-data`
 * a message that may carry SignedData, whose content only the scan stage scans; `zip` one that may carry a zip,
 * whose members only the scan stage counts against clamd's limits.
 */
export type LeftToScanStage = 'too-large' | 'signed-data' | 'zip' | 'busy' | 'clamd-down' | 'clamd-error' | 'finding';

export type IngestScan = { clean: true; engine: string; at: Date } | { clean: false; reason: LeftToScanStage };

export interface IngestScanner {
  /** Messages up to this size (as stored) are kept for a scan here; 0: none. */
  readonly maxBytes: number;
  /** What the kept copies of all messages being received may hold together. */
  readonly copyBudget: CopyBudget;
  /**
   * Scans `message` (its chunks as stored; undefined: it was larger than maxBytes). Never throws: whatever is not
   * clean is left to the scan stage.
   */
  scan(message: readonly Buffer[] | undefined): Promise<IngestScan>;
  /** Lets running scans finish, then ends the clamd sessions. */
  close(): Promise<void>;
}

export interface IngestScannerOptions {
  clamdUrl: string;
  maxBytes: number;
  /** Scans at once; a message beyond that waits for none and goes to the scan stage. */
  maxConcurrent?: number;
  /** Session, upload and verdict within this; a slower clamd is the scan stage's to wait for, not the SMTP client's. */
  deadlineMs?: number;
  /** Bytes the kept copies may hold together (default 64 MiB: 256 messages of 256 KiB). */
  copyBudgetBytes?: number;
  log: ClamdWatchLog;
  /** Counts each scan's result: `clean` or a LeftToScanStage. */
  onResult?: (result: 'clean' | LeftToScanStage) => void;
  now?: () => Date;
}

const DEFAULT_MAX_CONCURRENT = 32;
const DEFAULT_DEADLINE_MS = 5000;
const DEFAULT_COPY_BUDGET_BYTES = 64 * 1024 * 1024;
/** How often the watch PINGs clamd; while the last PING failed, no scan is tried here. */
const WATCH_INTERVAL_MS = 10_000;

export async function createIngestScanner(options: IngestScannerOptions): Promise<IngestScanner> {
  const maxConcurrent = options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT;
  const deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const now = options.now ?? (() => new Date());
  const target = { url: options.clamdUrl };
  const watch = watchClamd(target, options.log, () => {});
  // False from a failed PING or a failed scan until the next PING answers.
  let up = false;
  const refresh = async () => {
    up = await watch.check();
  };
  let pool: ClamdPool | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (options.maxBytes > 0) {
    await refresh();
    timer = setInterval(() => void refresh(), WATCH_INTERVAL_MS);
    timer.unref();
    pool = createClamdPool({ ...target, maxSessions: maxConcurrent });
  }
  let running = 0;
  const result = (scan: IngestScan): IngestScan => {
    options.onResult?.(scan.clean ? 'clean' : scan.reason);
    return scan;
  };
  return {
    maxBytes: options.maxBytes,
    copyBudget: createCopyBudget(options.copyBudgetBytes ?? DEFAULT_COPY_BUDGET_BYTES),
    async scan(message) {
      const size = message?.reduce((sum, chunk) => sum + chunk.byteLength, 0) ?? Number.POSITIVE_INFINITY;
      if (!pool || !message || size > options.maxBytes) return result({ clean: false, reason: 'too-large' });
      if (mayCarrySignedData(message)) return result({ clean: false, reason: 'signed-data' });
      if (mayCarryZip(message)) return result({ clean: false, reason: 'zip' });
      if (!up) return result({ clean: false, reason: 'clamd-down' });
      if (running >= maxConcurrent) return result({ clean: false, reason: 'busy' });
      running++;
      try {
        const verdict = await pool.scanStream(() => Readable.from(message, { objectMode: false }), {
          deadlineMs,
          maxBytes: options.maxBytes,
        });
        if (verdict.kind !== 'clean') return result({ clean: false, reason: 'finding' });
        return result({ clean: true, engine: watch.engine(), at: now() });
      } catch {
        // The scan stage meets the same error, counts and logs it, and retries. Here the next messages go straight to
        // it until clamd answers a PING again: a hung clamd holds one message per session for the deadline, not all.
        up = false;
        return result({ clean: false, reason: 'clamd-error' });
      } finally {
        running--;
      }
    },
    async close() {
      clearInterval(timer);
      await pool?.close();
    },
  };
}

/**
 * Bytes that the copies of all messages being received by one replica may hold together: beyond it a message is not
 * kept (the scan stage has it), so many slow senders of 256 KiB messages cost a bounded amount of memory.
 */
export interface CopyBudget {
  /** Takes `bytes` if they are left; false (nothing taken) if not. */
  take(bytes: number): boolean;
  give(bytes: number): void;
  /** Bytes taken now (a gauge, and tests). */
  held(): number;
}

export function createCopyBudget(totalBytes: number): CopyBudget {
  let held = 0;
  return {
    take(bytes) {
      if (held + bytes > totalBytes) return false;
      held += bytes;
      return true;
    },
    give(bytes) {
      held = Math.max(0, held - bytes);
    },
    held: () => held,
  };
}

export interface KeptMessage {
  /** The message's bytes, passed on unchanged. */
  source: AsyncGenerator<Uint8Array>;
  /** A copy of them when they came to at most maxBytes and the budget had room; else undefined. */
  kept(): Buffer[] | undefined;
  /** Drops the copy and gives its bytes back to the budget (again: nothing happens). */
  release(): void;
}

/**
 * The message's bytes passed on unchanged, and a copy of them kept while they come to at most `maxBytes` and the
 * budget has room (the copy is dropped at once when either runs out, so a large message costs nothing here).
 */
export function keptForScan(
  source: AsyncIterable<Uint8Array>,
  scanner: Pick<IngestScanner, 'maxBytes' | 'copyBudget'> | undefined,
): KeptMessage {
  const maxBytes = scanner?.maxBytes ?? 0;
  let chunks: Buffer[] | undefined = scanner && maxBytes > 0 ? [] : undefined;
  let size = 0;
  const release = () => {
    scanner?.copyBudget.give(size);
    size = 0;
    chunks = undefined;
  };
  async function* passing(): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      if (chunks !== undefined) {
        if (size + chunk.byteLength <= maxBytes && scanner?.copyBudget.take(chunk.byteLength)) {
          size += chunk.byteLength;
          // A copy: the chunk's memory is the producer's, which may reuse it once we ask for the next one.
          chunks.push(Buffer.from(chunk));
        } else release();
      }
      yield chunk;
    }
  }
  return { source: passing(), kept: () => chunks, release };
}

/** True when the envelope waits for the scan stage next (the one place a scan by ingest can help). */
export function atScanStage(envelope: Envelope): boolean {
  return envelope.itinerary[0] === 'scan';
}

/** An envelope at `scan` past it, with the verdict the scan stage writes for clean mail and `by: 'ingest'`. */
export function pastScan(envelope: Envelope, scan: { engine: string; at: Date }): Envelope {
  const clean = withVerdict(envelope, 'scan', {
    status: 'clean',
    at: scan.at.toISOString(),
    engine: scan.engine,
    by: 'ingest',
  });
  return advance(clean, 'scan');
}

/** What ingest's scan made of a message's envelopes. */
export interface ScanStageRoute {
  /** The envelopes to record: as built, or past scan. */
  recorded: Envelope[];
  /** The envelopes to publish: past scan and split at `verify` as the scan stage splits them, or as built. */
  published: Envelope[];
  /** The events the scan stage would have written. */
  events: TraceEvent[];
  /** For the trace's message.received: whether scan was skipped, or why not (undefined: nothing was at scan). */
  trace?: { skipped: boolean; reason?: LeftToScanStage | 'lookup-failed' };
}

export interface ScanStageDeps {
  scanner?: Pick<IngestScanner, 'scan'> | undefined;
  /** The recipients enabled for signature verification, for envelopes whose next stage after scan is `verify`. */
  verifyingSignatures?: ((recipients: readonly string[]) => Promise<Set<string>>) | undefined;
}

/**
 * Scans a message here when an envelope of it waits for the scan stage, and routes every such envelope past scan if
 * it is clean. A scan that is not clean, or a failed lookup of who verifies signatures, leaves them all at scan.
 */
export async function scanStageRoute(
  deps: ScanStageDeps,
  built: Envelope[],
  kept: Buffer[] | undefined,
  log: { warn(fields: Record<string, unknown>, message: string): void },
): Promise<ScanStageRoute> {
  const asBuilt = (trace?: ScanStageRoute['trace']): ScanStageRoute => ({
    recorded: built,
    published: built,
    events: [],
    ...(trace ? { trace } : {}),
  });
  if (!deps.scanner || !built.some(atScanStage)) return asBuilt();
  const scan = await deps.scanner.scan(kept);
  if (!scan.clean) return asBuilt({ skipped: false, reason: scan.reason });

  const recorded = built.map((e) => (atScanStage(e) ? pastScan(e, scan) : e));
  const toVerify = recorded.filter((e, i) => atScanStage(built[i] as Envelope) && e.itinerary[0] === 'verify');
  let verifying = new Set<string>();
  if (toVerify.length > 0) {
    try {
      if (!deps.verifyingSignatures) throw new Error('no key directory lookup configured');
      verifying = await deps.verifyingSignatures(toVerify.flatMap((e) => e.recipients));
    } catch (err) {
      log.warn({ code: 'INGEST_SCAN_ROUTE_FAILED', err }, 'cannot tell who verifies signatures; the scan stage routes');
      return asBuilt({ skipped: false, reason: 'lookup-failed' });
    }
  }
  const published: Envelope[] = [];
  const events: TraceEvent[] = [];
  for (const [i, envelope] of recorded.entries()) {
    if (!atScanStage(built[i] as Envelope)) {
      published.push(envelope);
      continue;
    }
    const groups = splitAtOptionalStage(envelope, (r) => verifying.has(r));
    published.push(...groups);
    events.push(...scannedByIngestEvents(envelope, groups, scan));
  }
  return { recorded, published, events, trace: { skipped: true } };
}

/**
 * The trace events the scan stage writes for a clean message, written by ingest: `message.scanned`, and where
 * verification is on for anyone, which group goes through it and which past it.
 */
export function scannedByIngestEvents(
  envelope: Envelope,
  groups: readonly Envelope[],
  scan: { engine: string; at: Date },
): TraceEvent[] {
  const scanned: TraceEvent = {
    stage: 'ingest',
    event: 'message.scanned',
    outcome: 'next',
    data: { direction: envelope.direction, result: 'clean', engine: scan.engine, by: 'ingest' },
    at: scan.at,
  };
  return [scanned, ...verificationRoutingEvents('ingest', groups, scan.at)];
}
