// The scan stage's work on one envelope: stream the blob to clamd, and the content inside every CMS SignedData it
// carries (what a mail client shows of an opaque-signed message or a .p7m, and clamd cannot open); then pass it on
// (clean), quarantine it and notify (infected / suspicious), or retry (clamd down, slow or talking nonsense: never
// pass unscanned).
import { pipeline, Readable, Transform } from 'node:stream';
import type { BlobStore } from '@smgw/blob-store';
import { ClamdError, type ScanVerdict, zipHint } from '@smgw/clamd';
import type { Pool } from '@smgw/db';
import {
  advance,
  type Envelope,
  generatedEnvelope,
  newMessageId,
  splitAtOptionalStage,
  withVerdict,
} from '@smgw/envelope';
import { addressesVerifyingSignatures } from '@smgw/key-directory';
import { type Handler, type HandlerContext, next, type Outcome, retry } from '@smgw/mq';
import type { Counter } from '@smgw/observability';
import { inboundNoticeClientsSince } from '@smgw/quarantine';
import { type SignedContent, type SignedContentLimits, signedContentsOf, signedDataHint } from '@smgw/signature-verify';
import { recordEvent, recordEvents, type TraceEvent, verificationRoutingEvents } from '@smgw/trace';
import { createGate, type Gate } from './gate.ts';
import {
  buildNotice,
  INBOUND_NOTICES_PER_HOUR,
  INBOUND_NOTICES_PER_HOUR_TOTAL,
  inboundNoticeAllowance,
  type NoticeTemplates,
  noticeGroups,
} from './notice.ts';
import { type MadeNotices, quarantineMessage } from './quarantine.ts';
import {
  classifyFinding,
  quarantines,
  type ScanPolicy,
  SIGNED_DATA_FINDINGS,
  STREAM_LIMIT_FINDING,
} from './scan-policy.ts';
import { type ArchiveLimits, type ArchiveSource, archiveFindingOf, archiveLimitsFor } from './zip-members.ts';

export interface ScanDeps {
  pool: Pool;
  blobStore: BlobStore;
  /**
   * Streams a message to clamd (deadline and size limit bound in); rejects with ClamdError. Gets a function that
   * opens the message, so that a scan on a clamd session that turns out closed can read it again.
   */
  scan: (open: () => Readable) => Promise<ScanVerdict>;
  /** Engine name for the verdict, e.g. "clamd ClamAV 1.4.3/27000/…". */
  engine: () => string;
  policy: ScanPolicy;
  quarantineRetentionMs: number;
  inboundNoticeTo: string | undefined;
  /** Notices about inbound mail per address, hour and sender network (default INBOUND_NOTICES_PER_HOUR). */
  inboundNoticesPerHour?: number;
  /** Notices about inbound mail per address and hour over all networks (default INBOUND_NOTICES_PER_HOUR_TOTAL). */
  inboundNoticesPerHourTotal?: number;
  hostname: string;
  maxNoticeBytes?: number;
  /** How deep, how many and how much of SignedData is taken apart (default: @smgw/signature-verify's). */
  signedContentLimits?: SignedContentLimits;
  /**
   * clamd's MaxFileSize, MaxScanSize, MaxRecursion and MaxFiles, against which the members of every zip are counted
   * (default: those of a 50 MiB message limit, archiveLimitsFor(51 MiB)).
   */
  archiveLimits?: ArchiveLimits;
  /** Messages held whole at once to take their SignedData apart (default: WHOLE_MESSAGES_AT_ONCE per handler). */
  wholeMessages?: Gate;
  templates: NoticeTemplates;
  metrics: {
    clamdErrors: Counter<'code'>;
    findings: Counter<'verdict' | 'category'>;
  };
  now?: () => Date;
}

/**
 * Messages a scan handler holds whole at once (the rest of its prefetch waits for a place): each may hold up to about
 * three times SMGW_MAX_MESSAGE_BYTES (the message and what is taken out of its SignedData), and a zip member that is
 * a zip itself per level (at most clamd's MaxFileSize each, all of them within its MaxScanSize).
 */
export const WHOLE_MESSAGES_AT_ONCE = 2;

export function createScanHandler(deps: ScanDeps): Handler {
  const withGate = { ...deps, wholeMessages: deps.wholeMessages ?? createGate(WHOLE_MESSAGES_AT_ONCE) };
  return (envelope, context) => scanEnvelope(withGate, envelope, context);
}

/** What the scans of one message found: its verdict, and where a finding was when not in the message as received. */
interface MessageScan {
  verdict: ScanVerdict;
  /**
   * Quarantine detail for a finding inside SignedData (its MIME path) or in a zip's members, undefined for the
   * message as received.
   */
  where?: string;
  /** Contents taken out of SignedData and scanned. */
  signedContents: number;
}

export async function scanEnvelope(deps: ScanDeps, envelope: Envelope, context: HandlerContext): Promise<Outcome> {
  const now = deps.now ?? (() => new Date());
  let scan: MessageScan;
  try {
    scan = await scanMessage(deps, envelope);
  } catch (err) {
    const code = err instanceof ClamdError ? err.code : 'SCAN_FAILED';
    if (err instanceof ClamdError && err.code !== 'CLAMD_SOURCE_FAILED') deps.metrics.clamdErrors.inc({ code });
    context.log.warn({ code, err, attempt: context.attempt }, 'not scanned; will retry');
    return retry(code, (err as Error).message);
  }
  const { verdict } = scan;

  const at = now();
  if (verdict.kind === 'clean') {
    const scanned: TraceEvent = {
      stage: 'scan',
      event: 'message.scanned',
      outcome: 'next',
      data: {
        direction: envelope.direction,
        result: 'clean',
        engine: deps.engine(),
        ...(scan.signedContents > 0 ? { signedContents: scan.signedContents } : {}),
      },
      at,
    };
    const clean = withVerdict(envelope, 'scan', { status: 'clean', at: at.toISOString(), engine: deps.engine() });
    return onward(deps, advance(clean, 'scan'), scanned, at);
  }

  const finding = classifyFinding(verdict.signature);
  deps.metrics.findings.inc({ verdict: finding.verdict, category: finding.category });
  if (!quarantines(finding, envelope.direction, deps.policy)) {
    // An operator let this kind of suspicious content pass for this direction: noted in verdict and trace.
    await recordEvent(deps.pool, envelope.id, {
      stage: 'scan',
      event: 'message.scanned',
      outcome: 'next',
      code: 'SCAN_SUSPICIOUS_ALLOWED',
      reason: verdict.signature,
      data: { direction: envelope.direction, result: 'allowed', category: finding.category, engine: deps.engine() },
      at,
    });
    const allowed = withVerdict(envelope, 'scan', {
      status: 'allowed',
      at: at.toISOString(),
      engine: deps.engine(),
      detail: `${finding.category} allowed by policy: ${verdict.signature}`,
    });
    return onward(deps, advance(allowed, 'scan'), undefined, at);
  }

  const expiresAt = new Date(at.getTime() + deps.quarantineRetentionMs);
  const result = await quarantineMessage(deps.pool, {
    envelope,
    verdict: finding.verdict,
    finding: verdict.signature,
    category: finding.category,
    detail: scan.where ? `${scan.where}; clamd (${deps.engine()})` : `clamd (${deps.engine()})`,
    now: at,
    expiresAt,
    makeNotices: () => makeNotices(deps, envelope, finding.verdict, verdict.signature, at, expiresAt),
  });
  context.log.info(
    {
      code: finding.verdict === 'infected' ? 'SCAN_INFECTED' : 'SCAN_SUSPICIOUS',
      finding: verdict.signature,
      ...(scan.where ? { where: scan.where } : {}),
      quarantineId: result.quarantineId,
      noticeMessageIds: result.notices.map((notice) => notice.id),
      ...(result.withheld.length > 0 ? { noticesWithheld: result.withheld } : {}),
      redelivered: !result.created,
    },
    'message quarantined',
  );
  // The message ends here; only the notices (if anyone is to be told) travel on.
  return next(...result.notices);
}

/**
 * Scans the message as received and, when it may carry SignedData (told from the bytes on their way to clamd), the
 * content inside each SignedData on its own. The first finding that quarantines decides; else the first finding
 * (let pass by policy); else clean. SignedData that could not be taken apart is a finding of its own
 * (SIGNED_DATA_FINDINGS): never clean. When the message may carry a zip, the members of every zip in it (and in the
 * contents of its SignedData) are counted against clamd's limits: what clamd skipped is a finding too. Rejects with
 * what clamd rejected with (the caller retries).
 */
async function scanMessage(deps: ScanDeps, envelope: Envelope): Promise<MessageScan> {
  const signed = signedDataHint();
  const zip = zipHint();
  const received = await scanStream(deps, () => watchedFor([signed, zip], deps.blobStore.open(envelope.blob.ref)));
  if ((!signed.seen && !zip.seen) || quarantinesFor(deps, envelope, received)) {
    return { verdict: received, signedContents: 0 };
  }

  const whole = deps.wholeMessages ?? createGate(WHOLE_MESSAGES_AT_ONCE);
  return whole.run(async () => {
    const message = await deps.blobStore.readAll(envelope.blob.ref);
    const inside = signed.seen
      ? await scanSignedContents(deps, envelope, received, message)
      : { scan: { verdict: received, signedContents: 0 }, contents: [] };
    if (quarantinesFor(deps, envelope, inside.scan.verdict)) return inside.scan;
    // Every zip in the message and in what its SignedData holds (clamd has seen those, and skipped the same members).
    const sources: ArchiveSource[] = [
      { bytes: message, path: '/', mime: true },
      ...inside.contents.map((c) => ({ bytes: c.bytes, path: c.path, mime: c.mime })),
    ];
    const archive = await archiveFindingOf(sources, deps.archiveLimits ?? DEFAULT_ARCHIVE_LIMITS);
    if (!archive) return inside.scan;
    const verdict: ScanVerdict = { kind: 'infected', signature: archive.signature };
    // A finding let pass by policy before (clamd's, or inside SignedData) stays first unless this one quarantines.
    if (quarantinesFor(deps, envelope, verdict) || inside.scan.verdict.kind === 'clean') {
      return { verdict, where: archive.where, signedContents: inside.scan.signedContents };
    }
    return inside.scan;
  });
}

/** The limits for a 50 MiB message limit: members against the stream limit (51 MiB), MaxScanSize four times that. */
const DEFAULT_ARCHIVE_LIMITS = archiveLimitsFor(51 * 1024 * 1024);

/** The contents inside the message's SignedData, each scanned (scanMessage: the message as received is clean). */
async function scanSignedContents(
  deps: ScanDeps,
  envelope: Envelope,
  received: ScanVerdict,
  message: Buffer,
): Promise<{ scan: MessageScan; contents: SignedContent[] }> {
  const { contents, problem } = signedContentsOf(message, deps.signedContentLimits);
  const scanned = (scan: Omit<MessageScan, 'signedContents'>) => ({
    scan: { ...scan, signedContents: contents.length },
    contents,
  });
  const findings: { verdict: ScanVerdict; where?: string }[] =
    received.kind === 'infected' ? [{ verdict: received }] : [];
  for (const content of contents) {
    const bytes = content.mime ? [AS_MAIL, content.bytes] : [content.bytes];
    const verdict = await scanStream(deps, () => Readable.from(bytes));
    if (verdict.kind !== 'infected') continue;
    const where = `inside the SignedData at ${content.path}`;
    if (quarantinesFor(deps, envelope, verdict)) return scanned({ verdict, where });
    findings.push({ verdict, where });
  }
  if (problem) {
    const verdict: ScanVerdict = { kind: 'infected', signature: SIGNED_DATA_FINDINGS[problem.kind] };
    const where = `SignedData at ${problem.path} not taken apart (${problem.reason})`;
    if (quarantinesFor(deps, envelope, verdict)) return scanned({ verdict, where });
    findings.push({ verdict, where });
  }
  const [first] = findings;
  return scanned(first ?? { verdict: received });
}

/**
 * Put before a MIME entity taken out of SignedData: clamd reads a stream as mail (and decodes its parts) only when it
 * starts with a header field such as MIME-Version, From, Received or Subject; an inner entity starts with its
 * Content-Type, and EICAR in its base64 attachment was `OK` without this line.
 */
const AS_MAIL = Buffer.from('MIME-Version: 1.0\r\n');

/** One stream to clamd; rejects with what clamd rejected with. */
async function scanStream(deps: ScanDeps, open: () => Readable): Promise<ScanVerdict> {
  try {
    return await deps.scan(open);
  } catch (err) {
    if (err instanceof ClamdError && err.code === 'CLAMD_LIMIT_EXCEEDED') {
      // Permanent for this message: retrying cannot make it fit. Not clean, so it goes where suspicious mail goes.
      return { kind: 'infected', signature: STREAM_LIMIT_FINDING };
    }
    throw err;
  }
}

function quarantinesFor(deps: ScanDeps, envelope: Envelope, verdict: ScanVerdict): boolean {
  return (
    verdict.kind === 'infected' && quarantines(classifyFinding(verdict.signature), envelope.direction, deps.policy)
  );
}

/** The blob's bytes passed on unchanged to clamd, each chunk shown to the hints on the way. */
function watchedFor(hints: readonly { push(chunk: Uint8Array): void }[], source: Readable): Readable {
  const watch = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      for (const hint of hints) hint.push(chunk);
      done(null, chunk);
    },
  });
  // pipeline passes an error of the source on to `watch`, which clamd's upload reads (CLAMD_SOURCE_FAILED).
  return pipeline(source, watch, () => {});
}

/**
 * Passes a scanned envelope on. Signature verification is for recipients whose address is enabled for it: they
 * keep `verify` on their slip, every other recipient skips it (no queue hop); a mixed envelope becomes two children,
 * both groups traced. The consumer publishes both (confirmed) before it acks.
 */
async function onward(deps: ScanDeps, scanned: Envelope, event: TraceEvent | undefined, at: Date): Promise<Outcome> {
  const groups =
    scanned.itinerary[0] === 'verify'
      ? await addressesVerifyingSignatures(deps.pool, scanned.recipients).then((enabled) =>
          splitAtOptionalStage(scanned, (r) => enabled.has(r)),
        )
      : [scanned];
  // Traced when verification is on for anyone: which group goes through it and which past it.
  const routed = verificationRoutingEvents('scan', groups, at);
  const events = event ? [event, ...routed] : routed;
  if (events.length > 0) await recordEvents(deps.pool, scanned.id, events);
  return next(...groups);
}

/** One hour: the window notices about inbound mail are counted in. */
const NOTICE_WINDOW_MS = 3_600_000;

/**
 * The notices about a quarantined message: one per group of noticeGroups (notice.ts), each a blob of its own. About
 * inbound mail only as many per address, hour and sender network as inboundNoticeAllowance lets out; the others are
 * withheld (the quarantine entry and the trace record the message all the same).
 */
async function makeNotices(
  deps: ScanDeps,
  original: Envelope,
  verdict: 'infected' | 'suspicious',
  finding: string,
  now: Date,
  expiresAt: Date,
): Promise<MadeNotices> {
  const notices: Envelope[] = [];
  const withheld: string[] = [];
  const perHour = deps.inboundNoticesPerHour ?? INBOUND_NOTICES_PER_HOUR;
  const perHourTotal = deps.inboundNoticesPerHourTotal ?? INBOUND_NOTICES_PER_HOUR_TOTAL;
  for (const group of noticeGroups(original, deps.inboundNoticeTo)) {
    let lastOfHour: number | undefined;
    let lastOverall = false;
    if (original.direction === 'inbound') {
      const to = group.to[0] ?? '';
      const since = new Date(now.getTime() - NOTICE_WINDOW_MS);
      const earlier = await inboundNoticeClientsSince(deps.pool, to, since);
      const allowance = inboundNoticeAllowance(earlier, original.client.ip, perHour, perHourTotal);
      if (allowance === 'withhold') {
        withheld.push(to);
        continue;
      }
      if (allowance === 'last') lastOfHour = perHour;
      if (allowance === 'last-overall') {
        lastOfHour = perHourTotal;
        lastOverall = true;
      }
    }
    const id = newMessageId(now.getTime());
    const notice = buildNotice({
      original,
      to: group.to,
      recipients: group.recipients,
      verdict,
      finding,
      lastOfHour,
      lastOverall,
      noticeMessageId: id,
      hostname: deps.hostname,
      now,
      expiresAt,
      templates: deps.templates,
    });
    const blob = await deps.blobStore.put(notice.createReadStream(), {
      messageId: id,
      maxBytes: deps.maxNoticeBytes ?? 1024 * 1024,
    });
    notices.push(
      generatedEnvelope({
        id,
        traceId: original.traceId,
        relatesTo: original.id,
        recipients: group.to,
        blob,
        hostname: deps.hostname,
        createdAt: now,
      }),
    );
  }
  return { notices, withheld };
}
