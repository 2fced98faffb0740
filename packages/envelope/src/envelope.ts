import { z } from 'zod';
import { MESSAGE_ID_PATTERN } from './ids.ts';

/** Stages that consume envelopes from their own queue, in no particular order. */
export const STAGES = ['scan', 'encrypt', 'verify', 'deliver', 'mailbox'] as const;
export type Stage = (typeof STAGES)[number];

/**
 * Where a message comes from and goes to; decides its itinerary.
 * - inbound: internet → agency (MX listener)
 * - outbound: agency → outside (submission listener, recipient outside the agency domains)
 * - internal: agency → agency (submission listener, recipient inside the agency domains; never leaves the closed network)
 * - portal: citizen → agency (web portal)
 * - generated: made by the gateway itself (DSNs, notices, PIN mails)
 */
export const DIRECTIONS = ['inbound', 'outbound', 'internal', 'portal', 'generated'] as const;
export type Direction = (typeof DIRECTIONS)[number];

export const ENVELOPE_VERSION = 1 as const;

const isoTime = z.iso.datetime({ offset: true });

/** A stage's result travels with the message (Haraka-style pass/fail record); details are stage-specific. */
export const stageVerdictSchema = z.looseObject({
  status: z.string().min(1),
  at: isoTime,
  detail: z.string().optional(),
});
export type StageVerdict = z.infer<typeof stageVerdictSchema>;

/**
 * A message's bytes in the blob store. `ref`: the blob's random id. `sha256`: an opaque keyed digest of the content
 * (HMAC-SHA256 under a key derived from the blob's own data key), never a plain SHA-256: it names this blob (e.g.
 * for idempotency) and tells nothing about its content; the name stays for envelope v1. `size`: bytes.
 */
export const blobRefSchema = z.object({
  ref: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
});
export type BlobRef = z.infer<typeof blobRefSchema>;

export const clientInfoSchema = z.object({
  /** Which door the message came through. */
  listener: z.enum(['inbound', 'submission', 'portal', 'gateway']),
  ip: z.string(),
  helo: z.string(),
  /** The authenticated user (SMTP AUTH or portal login), if any. */
  user: z.string().optional(),
  tls: z.boolean(),
});
export type ClientInfo = z.infer<typeof clientInfoSchema>;

/** DSN parameters from MAIL FROM / RCPT TO (RFC 3461), kept so deliver can honour them. */
export const dsnRequestSchema = z.object({
  ret: z.enum(['FULL', 'HDRS']).optional(),
  envid: z.string().optional(),
  /** Per recipient address: NOTIFY values (NEVER, or any of SUCCESS, FAILURE, DELAY). */
  notify: z.record(z.string(), z.array(z.enum(['NEVER', 'SUCCESS', 'FAILURE', 'DELAY']))).optional(),
  orcpt: z.record(z.string(), z.string()).optional(),
});
export type DsnRequest = z.infer<typeof dsnRequestSchema>;

/** A per-recipient DSN parameter (NOTIFY, ORCPT) of `address`: as written, else the key equal to it without case. */
export function dsnParameterOf<T>(map: Record<string, T> | undefined, address: string): T | undefined {
  if (!map) return undefined;
  if (address in map) return map[address];
  const lower = address.toLowerCase();
  const key = Object.keys(map).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : map[key];
}

/** RFC 3461: does `recipient` ask for a failure DSN? No NOTIFY means FAILURE; NEVER, or a list without FAILURE, no. */
export function failureDsnAsked(request: DsnRequest | undefined, recipient: string): boolean {
  const notify = dsnParameterOf(request?.notify, recipient);
  if (!notify || notify.length === 0) return true;
  return notify.includes('FAILURE') && !notify.includes('NEVER');
}

const stageSchema = z.enum(STAGES);

export const envelopeV1Schema = z.object({
  v: z.literal(1),
  /** Gateway message id (ULID: sortable by time). */
  id: z.string().regex(MESSAGE_ID_PATTERN),
  /** W3C trace id (32 lowercase hex). */
  traceId: z.string().regex(/^[0-9a-f]{32}$/),
  receivedAt: isoTime,
  direction: z.enum(DIRECTIONS),
  /** Envelope sender; '' is the null reverse-path (bounces). */
  mailFrom: z.string(),
  recipients: z.array(z.string().min(3)).min(1),
  client: clientInfoSchema,
  /** The message as it is now: what the next stage reads and deliver sends. */
  blob: blobRefSchema,
  /**
   * The message as ingest received it, set by the first stage that replaces `blob` (decryption, encryption; see
   * withBlob); absent while `blob` is still that. Mail about the message to anyone outside the agencies (DSNs)
   * quotes only this: nothing a stage produced (decrypted content, our own header fields) leaves that way.
   */
  receivedBlob: blobRefSchema.optional(),
  /** Stages still to run; the head is the stage whose queue the envelope is in (or goes to next). */
  itinerary: z.array(stageSchema),
  /** How many stages this message has passed. */
  hop: z.number().int().nonnegative(),
  verdicts: z
    .object({
      scan: stageVerdictSchema.optional(),
      crypto: stageVerdictSchema.optional(),
      signature: stageVerdictSchema.optional(),
      /** SPF, DKIM and DMARC of mail from the internet (ingest); `field` is the Authentication-Results deliver adds. */
      auth: stageVerdictSchema.optional(),
    })
    .default({}),
  /** Attempts already made at the current stage (0 on first delivery to it). */
  attempt: z.number().int().nonnegative(),
  dsn: dsnRequestSchema.optional(),
  /** For generated mail: the message it is about (a DSN's original message, say). */
  relatesTo: z.string().optional(),
  /**
   * Submitted mail: its author, the first From address (else the envelope sender), which ingest checked the client
   * may use. Outbound signing uses this address's key, never the envelope sender's.
   */
  author: z.string().optional(),
});
export type EnvelopeV1 = z.infer<typeof envelopeV1Schema>;

/** The current envelope type. When v2 arrives, this becomes a union and parseEnvelope upgrades v1. */
export type Envelope = EnvelopeV1;

export type ParseResult = { ok: true; envelope: Envelope } | { ok: false; error: string };

/** Validates anything that claims to be an envelope (a queue payload, a JSON body). Never throws. */
export function parseEnvelope(input: unknown): ParseResult {
  const result = envelopeV1Schema.safeParse(input);
  if (result.success) return { ok: true, envelope: result.data };
  return { ok: false, error: z.prettifyError(result.error).replace(/\n/g, '; ') };
}

/** Parses envelope bytes off the wire. Never throws: bad JSON is a parse error like any other. */
export function decodeEnvelope(bytes: Buffer | Uint8Array): ParseResult {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  return parseEnvelope(json);
}

/** Serialises an envelope for the wire, validating it first: a bad envelope never leaves a process. */
export function encodeEnvelope(envelope: Envelope): Buffer {
  const checked = parseEnvelope(envelope);
  if (!checked.ok) throw new InvalidEnvelopeError(checked.error);
  return Buffer.from(JSON.stringify(checked.envelope));
}

export class InvalidEnvelopeError extends Error {
  readonly code = 'ENVELOPE_INVALID';
  constructor(detail: string) {
    super(`invalid envelope: ${detail}`);
    this.name = 'InvalidEnvelopeError';
  }
}
