import type { BlobRef, Direction, Envelope, Stage, StageVerdict } from './envelope.ts';

/**
 * The routing slip each direction starts with (ARCHITECTURE.md). Data, not code: a stage joins a route here.
 *
 * Stages that are not built yet are left out where the message may safely skip them and kept in where it may not:
 * - outbound: encrypt sends key-less recipients on to `mailbox` instead of `deliver` (never plaintext outside);
 * - inbound: `encrypt` (decryption, harvesting keys and certificates) before `scan`, so what was encrypted is
 *   scanned opened. Plain inbound mail, most of it, skips encrypt (SKIPPABLE_STAGES): ingest reads the header and
 *   the body's first 64 KiB while storing the message and, when there is nothing to open and nothing to harvest
 *   (@smgw/crypto's inboundCryptoWork, the predicate encrypt itself decides with), builds the envelope without it
 *   and with the crypto verdict `plain`: ingest → scan → verify → deliver;
 * - every route that reaches an agency has `verify` after scan: only for recipients whose address is enabled for
 *   signature verification; scan splits the others off past it (splitAtOptionalStage), so they never queue there;
 * - a small message that ingest itself finds clean (clamd's exact `stream: OK`) is built past `scan`, with the verdict
 *   scan would write and split at `verify` the same way (services/ingest/src/scan-at-ingest.ts); anything else
 *   still goes to scan, which alone quarantines;
 * - generated mail (DSNs, notices) is made by the gateway itself and is not scanned.
 */
export const ITINERARIES: Readonly<Record<Direction, readonly Stage[]>> = {
  inbound: ['encrypt', 'scan', 'verify', 'deliver'],
  outbound: ['scan', 'encrypt', 'deliver'],
  internal: ['scan', 'verify', 'deliver'],
  portal: ['scan', 'verify', 'deliver'],
  generated: ['deliver'],
};

export function itineraryFor(direction: Direction): Stage[] {
  return [...ITINERARIES[direction]];
}

/**
 * Stages an envelope of a direction may leave out when whoever builds it knows the stage has nothing to do: inbound
 * `encrypt` for plain mail (ingest, issue 12). Never outbound `encrypt`: nothing leaves the closed network unencrypted.
 */
export const SKIPPABLE_STAGES: Readonly<Partial<Record<Direction, readonly Stage[]>>> = {
  inbound: ['encrypt'],
};

/**
 * The envelope without its next stage, `stage` (no queue hop there; `hop` unchanged, for the stage was not passed).
 * Throws unless `stage` is the head of the slip and one its direction may skip: a slip is never cut by mistake.
 */
export function skipStage(envelope: Envelope, stage: Stage): Envelope {
  if (envelope.itinerary[0] !== stage) {
    throw new Error(`envelope ${envelope.id} is at ${envelope.itinerary[0] ?? 'the end'}, not at ${stage}`);
  }
  if (!SKIPPABLE_STAGES[envelope.direction]?.includes(stage)) {
    throw new Error(`envelope ${envelope.id}: ${envelope.direction} mail may not skip ${stage}`);
  }
  return { ...envelope, itinerary: envelope.itinerary.slice(1) };
}

/** The stage the envelope is queued for, or undefined when its journey is over. */
export function currentStage(envelope: Envelope): Stage | undefined {
  return envelope.itinerary[0];
}

/**
 * The envelope after `stage` finished with it: the head of the slip removed, hop counted, attempts reset.
 * Throws if the envelope was not at `stage`: a stage never completes work that was not its own.
 */
export function advance(envelope: Envelope, stage: Stage): Envelope {
  if (envelope.itinerary[0] !== stage) {
    throw new Error(`envelope ${envelope.id} is at ${envelope.itinerary[0] ?? 'the end'}, not at ${stage}`);
  }
  return { ...envelope, itinerary: envelope.itinerary.slice(1), hop: envelope.hop + 1, attempt: 0 };
}

/** Replaces what is left of the slip after the current stage (encrypt sending key-less recipients to mailbox). */
export function rerouteAfterCurrent(envelope: Envelope, rest: Stage[]): Envelope {
  const head = envelope.itinerary[0];
  return { ...envelope, itinerary: head ? [head, ...rest] : [...rest] };
}

export function withVerdict(
  envelope: Envelope,
  kind: 'scan' | 'crypto' | 'signature' | 'auth',
  verdict: StageVerdict,
): Envelope {
  return { ...envelope, verdicts: { ...envelope.verdicts, [kind]: verdict } };
}

/**
 * The envelope with its message replaced by `blob` (decrypted, encrypted, rewritten). The blob as received stays
 * in `receivedBlob`, whatever replaces it later: every stage that changes the message goes through here.
 */
export function withBlob(envelope: Envelope, blob: BlobRef): Envelope {
  if (blob.ref === envelope.blob.ref) return envelope;
  return { ...envelope, receivedBlob: envelope.receivedBlob ?? envelope.blob, blob };
}

/** A child envelope for a subset of the recipients (a stage splitting recipients into groups). */
export function forRecipients(envelope: Envelope, recipients: string[]): Envelope {
  if (recipients.length === 0) throw new Error(`envelope ${envelope.id}: a child needs at least one recipient`);
  return { ...envelope, recipients: [...recipients] };
}

/** Stages a recipient may skip: the envelope is split there by recipient (splitAtOptionalStage). */
export const OPTIONAL_STAGES: readonly Stage[] = ['verify'];

/**
 * Where the envelope's next stage is optional per recipient: the recipients `takesStage` picks keep it, the others
 * skip it (the stage taken off their slip, no queue hop). One envelope when all or none are picked, else two child
 * envelopes (same id and trace: one message, recipients in groups), the stage's group first. An envelope whose next
 * stage is not optional comes back as it is.
 */
export function splitAtOptionalStage(envelope: Envelope, takesStage: (recipient: string) => boolean): Envelope[] {
  const stage = envelope.itinerary[0];
  if (!stage || !OPTIONAL_STAGES.includes(stage)) return [envelope];
  const taking = envelope.recipients.filter(takesStage);
  const skipping = envelope.recipients.filter((r) => !taking.includes(r));
  const skipped = (e: Envelope): Envelope => ({ ...e, itinerary: e.itinerary.slice(1) });
  if (skipping.length === 0) return [envelope];
  if (taking.length === 0) return [skipped(envelope)];
  return [forRecipients(envelope, taking), skipped(forRecipients(envelope, skipping))];
}

/** True when the envelope is bound for the outside and so must have been encrypted (or sent to the portal). */
export function leavesClosedNetwork(envelope: Envelope): boolean {
  return envelope.direction === 'outbound';
}

/**
 * Crypto verdict statuses that make outbound mail safe to hand to deliver: encrypted by the encrypt stage, or
 * already encrypted by the sender (S/MIME enveloped-data / authEnveloped-data, multipart/encrypted).
 */
export const SAFE_OUTBOUND_CRYPTO_STATUSES: readonly string[] = ['encrypted', 'already-encrypted'];

/**
 * The crypto verdict status of outbound mail the encrypt stage gave up because of the message itself: its own header
 * can never stand outside the encryption, so every attempt would fail the same way. Such an envelope goes on to
 * deliver, which sends it nowhere and bounces its recipients with a DSN to the sender (its outbound guard). The
 * verdict's `code` says why: one of NOT_ENCRYPTABLE_CODES (deliver parks one with any other code, as not encrypted).
 */
export const NOT_ENCRYPTABLE_STATUS = 'not-encryptable';

export const NOT_ENCRYPTABLE_CODES = [
  /** An outer header value the encryptor refuses (PGP_INVALID_HEADER, SMIME_INVALID_HEADER). */
  'ENCRYPT_HEADER_INVALID',
  /** A header block over 1 MiB (MAX_HEADER_BYTES of @smgw/mime). */
  'ENCRYPT_HEADER_TOO_LARGE',
] as const;
export type NotEncryptableCode = (typeof NOT_ENCRYPTABLE_CODES)[number];

/** The reason of a crypto verdict that says encrypt gave the message up, or undefined for any other verdict. */
export function notEncryptableCode(verdict: StageVerdict | undefined): NotEncryptableCode | undefined {
  if (verdict?.status !== NOT_ENCRYPTABLE_STATUS) return undefined;
  return NOT_ENCRYPTABLE_CODES.find((code) => code === verdict.code);
}
