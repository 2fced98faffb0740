// Inbound: mail encrypted (S/MIME or PGP/MIME) to an agency address whose private key the gateway holds is opened
// before it is scanned. What cannot be opened goes on as it is, with a header saying why; plain mail goes on
// unchanged. Our own X-SMGW-Decrypt* fields are removed from what arrives, so no sender can claim them.
// What there is to do is decided by @smgw/crypto's inboundCryptoWork, the predicate ingest uses to send plain mail
// past this stage (issue 12); plain mail still arrives here (envelopes queued before that, and whatever ingest was
// unsure about) and is handled as before.
import { Readable } from 'node:stream';
import type { BlobStore } from '@smgw/blob-store';
import { inDomains } from '@smgw/config';
import {
  BODY_HEAD_BYTES,
  DECRYPTION_WALL_CLOCK_FACTOR,
  type DecryptionBudget,
  DecryptionTimeLimitError,
  type DecryptionWorkers,
  type EncryptedForm,
  holdsNoiseBytes,
  inboundCryptoWork,
  maySignSmime,
  PgpError,
  type RevocationFetcher,
  type RevocationMode,
  SmimeError,
} from '@smgw/crypto';
import { type Pool, type PoolClient, withTransaction } from '@smgw/db';
import {
  advance,
  type BlobRef,
  type Envelope,
  forRecipients,
  type StageVerdict,
  withBlob,
  withVerdict,
} from '@smgw/envelope';
import { agencyKeyAad, type KeyDirectoryCache, sealedAgencyKeys } from '@smgw/key-directory';
import {
  canonicalLineEnds,
  findHeaderEnd,
  findHeaderEndWithin,
  type HeaderField,
  headerBytes,
  headerValue,
  MAX_HEADER_BYTES,
  parseHeaderFields,
  splitMessage,
  withoutFields,
} from '@smgw/mime';
import { type HandlerContext, next, type Outcome } from '@smgw/mq';
import { openSecretWithAny, SecretError } from '@smgw/secrets';
import { type RecordedEvent, recordEvent, recordEvents, stageEventsOf, type TraceEvent } from '@smgw/trace';
import { masterKeyRing } from './agency-signing.ts';
import { readBodyHead } from './body-head.ts';
import { HARVEST_MAX_BYTES, harvestPgpKeys } from './harvest-pgp-keys.ts';
import { fromAddress, harvestSmimeCertificate } from './harvest-smime-certificates.ts';

export const DECRYPTED_HEADER = 'X-SMGW-Decrypted';
export const DECRYPTION_FAILED_HEADER = 'X-SMGW-Decryption';

/** What a received header may add to SMGW_MAX_MESSAGE_BYTES (ingest's Received field and the like). */
const SIZE_SLACK_BYTES = 1024 * 1024;

export interface InboundDeps {
  pool: Pool;
  /** The trust anchors in memory (while their changes are heard); else read each time. */
  keyDirectory: Pick<KeyDirectoryCache, 'trustAnchorCertificates'>;
  blobStore: BlobStore;
  masterKey: Buffer;
  /** SMGW_MASTER_KEY_PREVIOUS during a rotation: agency keys still sealed under it open too. */
  masterKeyPrevious?: Buffer | undefined;
  /** SMGW_INTERNAL_DOMAINS: only recipients there are agency addresses whose keys may open the message. */
  internalDomains: string[];
  maxMessageBytes: number;
  /** For validating the certificates of signed mail before they are harvested (SMGW_REVOCATION_MODE). */
  fetcher: RevocationFetcher;
  revocationMode: RevocationMode;
  metrics?: { inbound: { inc(labels: { result: string }): void } };
  /** Distinct recipients' keys a message is decrypted with at most (default MAX_KEY_SETS_TRIED). */
  maxRecipientKeySets?: number;
  /** Worker threads that decrypt (OpenPGP and S/MIME), each decryption under the message's limit of CPU time. */
  decryptionWorkers: Pick<DecryptionWorkers, 'decrypt'>;
  /**
   * SMGW_DECRYPT_TIME_LIMIT_SECONDS in ms: the worker threads' CPU time for all decryptions of one message together
   * (keys, layers); a decryption stuck by the clock for several times that is stopped too.
   */
  decryptionCpuLimitMs: number;
  now: () => Date;
}

/**
 * A message whose decryption ran out of its time: it goes on as one the gateway cannot open. The same bytes take as
 * long again, so neither a retry nor another recipient's key is tried.
 */
export const DECRYPTION_TIME_LIMIT_CODE = 'ENCRYPT_DECRYPTION_TIME_LIMIT';

/**
 * S/MIME content without integrity (EnvelopedData: AES-CBC, 3DES) that holds bytes no honest MIME entity holds
 * (holdsNoiseBytes): what changed ciphertext blocks leave behind. It goes on as it came, not opened: opened, a
 * stranger's chosen blocks would reach the agency's client beside the plaintext (EFAIL). Honest CBC mail opens.
 */
export const UNAUTHENTICATED_DAMAGED_CODE = 'ENCRYPT_UNAUTHENTICATED_DAMAGED';
const UNAUTHENTICATED_DAMAGED_DETAIL =
  'content without integrity (EnvelopedData) holds bytes no sender writes: changed on its way, left closed';

/**
 * Decrypted content whose header block, joined to the outer one, would be longer than MAX_HEADER_BYTES, the top header
 * ingest refuses beyond. It goes on as it came, not opened: a stranger's 31 MB of header lines inside the ciphertext
 * held encrypt's event loop for 3.7–7.8 s (filtering and reading the fields, harvesting), and every later stage got a
 * top header no message from outside can bring (the verifier's report parsed all of it).
 */
export const DECRYPTED_HEADER_TOO_LARGE_CODE = 'ENCRYPT_DECRYPTED_HEADER_TOO_LARGE';

export async function decryptInbound(deps: InboundDeps, envelope: Envelope, context: HandlerContext): Promise<Outcome> {
  // Handled before (the ack was lost, or a retry whose first copy came back and went on): its children may have gone
  // on already, and a second decryption is a second blob, which scan quarantined and noticed a second time.
  if (context.redelivered || context.attempt > 0) {
    const earlier = await earlierChildren(deps.pool, deps.blobStore, envelope);
    if (earlier) {
      context.log.info(
        { code: 'ENCRYPT_EARLIER_BLOBS', children: earlier.length },
        'handled before: passed on again with the blobs made then',
      );
      return next(...earlier);
    }
  }
  const at = deps.now();
  const split = await splitMessage(deps.blobStore.open(envelope.blob.ref));
  const bodyHead = await readBodyHead(split.body);
  const fields = withoutFields(split.fields, [DECRYPTED_HEADER, DECRYPTION_FAILED_HEADER]);
  const spoofed = fields.length !== split.fields.length;
  const work = inboundCryptoWork(fields, bodyHead);
  const form = work.encryptedForm;

  if (!form) {
    if ((work.mayOfferPgpKeys || work.maySignSmime) && envelope.blob.size <= HARVEST_MAX_BYTES) {
      await harvest(deps, envelope, fields, await deps.blobStore.readAll(envelope.blob.ref), at, context);
    }
    deps.metrics?.inbound.inc({ result: 'plain' });
    // Plain mail is passed on byte for byte, unless it came with our own header fields: those are removed (a new
    // blob, recorded like the others).
    let blob = envelope.blob;
    if (spoofed) {
      blob = await putRewritten(deps, envelope, Buffer.alloc(0), fields);
      const event: TraceEvent = {
        stage: 'encrypt',
        event: 'message.fields-removed',
        outcome: 'next',
        reason: `${DECRYPTED_HEADER} and ${DECRYPTION_FAILED_HEADER} are the gateway's own`,
        data: { blob: blob.ref },
        at,
      };
      const other = await recordOutcomeOnce(deps, envelope, [event], context);
      if (other) return next(...other);
    }
    const verdict = { status: 'plain', at: at.toISOString() };
    return next(advance(withVerdict(withBlob(envelope, blob), 'crypto', verdict), 'encrypt'));
  }

  const outer = fields.filter((f) => !f.key.startsWith('content-'));
  const head = Buffer.concat([headerBytes(outer), Buffer.from(`${DECRYPTED_HEADER}: ${form}\r\n`)]);
  const maxEntityHeaderBytes = MAX_HEADER_BYTES - head.length;
  const decryptions = await decryptForEachRecipient(deps, envelope, form, maxEntityHeaderBytes, at);
  const groups = groupRecipients(envelope.recipients, decryptions);
  const divided = groups.length > 1;
  const children: Envelope[] = [];
  // The outcome, each event naming its child's blob, is recorded at once after every blob is made: a redelivery
  // finds all of it (earlierChildren) or none.
  const outcome: TraceEvent[] = [];
  let harvested = false;
  for (const group of groups) {
    const child = divided ? forRecipients(envelope, group.recipients) : envelope;
    if (group.decryption.ok) {
      const { decryption } = group;
      const entity = withoutUncheckedFields(decryption.entity);
      const blob = await deps.blobStore.put(Readable.from([head, entity]), {
        messageId: envelope.id,
        maxBytes: deps.maxMessageBytes + SIZE_SLACK_BYTES,
      });
      if (!harvested && blob.size <= HARVEST_MAX_BYTES) {
        harvested = true;
        await harvest(deps, envelope, fields, Buffer.concat([head, entity]), at, context);
      }
      for (const recipient of group.recipients) {
        outcome.push({
          stage: 'encrypt',
          event: 'message.decrypted',
          outcome: 'next',
          recipient,
          data: { form, fingerprint: decryption.fingerprint, blob: blob.ref },
          at,
        });
      }
      deps.metrics?.inbound.inc({ result: 'decrypted' });
      context.log.info(
        { code: 'ENCRYPT_DECRYPTED', form, fingerprint: decryption.fingerprint, recipients: group.recipients.length },
        'inbound decrypted',
      );
      const verdict = { status: 'decrypted', at: at.toISOString(), form };
      children.push(advance(withVerdict(withBlob(child, blob), 'crypto', verdict), 'encrypt'));
      continue;
    }
    const { decryption } = group;
    const notice = Buffer.from(`${DECRYPTION_FAILED_HEADER}: failed; reason=${decryption.code}\r\n`);
    const blob = await putRewritten(deps, envelope, notice, fields);
    // One event for the message when no recipient's key opened it, else one per recipient left closed.
    for (const recipient of divided ? group.recipients : [undefined]) {
      outcome.push({
        stage: 'encrypt',
        event: 'message.not-decrypted',
        outcome: 'next',
        code: decryption.code,
        reason: decryption.detail,
        ...(recipient ? { recipient } : {}),
        data: { form, blob: blob.ref },
        at,
      });
    }
    const timedOut = decryption.code === DECRYPTION_TIME_LIMIT_CODE;
    deps.metrics?.inbound.inc({ result: timedOut ? 'time-limit' : 'not-decrypted' });
    context.log[timedOut ? 'warn' : 'info'](
      { code: decryption.code, form, recipients: group.recipients.length },
      'inbound not decrypted: passed on as it is',
    );
    const verdict = {
      status: 'not-decrypted',
      at: at.toISOString(),
      form,
      detail: `${decryption.code}: ${decryption.detail}`,
    };
    children.push(advance(withVerdict(withBlob(child, blob), 'crypto', verdict), 'encrypt'));
  }
  const other = await recordOutcomeOnce(deps, envelope, outcome, context);
  return next(...(other ?? children));
}

/**
 * Records this handling's outcome, unless another handling of the same envelope recorded its own first: then that
 * one's children are returned, to be passed on instead of this one's (whose blobs nobody names, and which go with the
 * message's). Two copies can be handled at once when the broker hands the envelope again while its first consumer
 * still works (that consumer's channel was lost); recorded under the message's lock, both pass on the blobs of the
 * first to record, so scan sees one decryption of the message, not two (one quarantine entry and notice).
 */
async function recordOutcomeOnce(
  deps: InboundDeps,
  envelope: Envelope,
  outcome: TraceEvent[],
  context: HandlerContext,
): Promise<Envelope[] | undefined> {
  const other = await withTransaction(deps.pool, async (db) => {
    await db.query('select pg_advisory_xact_lock(hashtext($1))', [`encrypt-outcome:${envelope.id}`]);
    const earlier = await earlierChildren(db, deps.blobStore, envelope);
    if (!earlier) await recordEvents(db, envelope.id, outcome);
    return earlier;
  });
  if (other) {
    context.log.info(
      { code: 'ENCRYPT_EARLIER_BLOBS', children: other.length },
      'handled at the same time by another consumer: passed on with the blobs it recorded',
    );
  }
  return other;
}

/** The crypto status of the child each outcome event names the blob of (data.blob). */
const STATUS_OF_OUTCOME: Readonly<Record<string, string>> = {
  'message.decrypted': 'decrypted',
  'message.not-decrypted': 'not-decrypted',
  'message.fields-removed': 'plain',
};

/**
 * The children an earlier handling of `envelope` published or was about to, rebuilt from its outcome events: every
 * recipient goes with the blob it went with then (a message-wide event stands for every recipient; the latest event
 * counts). Undefined, so the message is handled anew, when a recipient has no such event (nothing recorded, or only
 * plain mail passed on unchanged) or a blob is gone.
 */
async function earlierChildren(
  db: Pool | PoolClient,
  blobStore: BlobStore,
  envelope: Envelope,
): Promise<Envelope[] | undefined> {
  const events = await stageEventsOf(db, envelope.id, {
    stage: 'encrypt',
    events: Object.keys(STATUS_OF_OUTCOME),
  });
  const latest = new Map<string, RecordedEvent>();
  for (const event of events) {
    if (typeof event.data?.blob !== 'string') continue; // recorded before events named their blob
    for (const recipient of event.recipient === null ? envelope.recipients : [event.recipient]) {
      latest.set(recipient, event);
    }
  }
  const groups: Array<{ event: RecordedEvent; recipients: string[] }> = [];
  for (const recipient of envelope.recipients) {
    const event = latest.get(recipient);
    if (!event) return undefined;
    const group = groups.find((g) => g.event.data?.blob === event.data?.blob);
    if (group) group.recipients.push(recipient);
    else groups.push({ event, recipients: [recipient] });
  }
  const children: Envelope[] = [];
  for (const { event, recipients } of groups) {
    const blob = await blobStore.stat(String(event.data?.blob));
    if (!blob) return undefined;
    const child = withBlob(forRecipients(envelope, recipients), blob);
    children.push(advance(withVerdict(child, 'crypto', earlierVerdict(event)), 'encrypt'));
  }
  return children;
}

/** The crypto verdict the child of an outcome event had. */
function earlierVerdict(event: RecordedEvent): StageVerdict {
  const status = STATUS_OF_OUTCOME[event.event] ?? 'plain';
  const at = event.at.toISOString();
  if (status === 'plain') return { status, at };
  const form = event.data?.form;
  if (status === 'decrypted') return { status, at, form };
  return { status, at, form, detail: `${event.code}: ${event.reason}` };
}

/** Opened, `entity` has CRLF line ends only (canonicalLineEnds) and its header block within the bound of the target. */
export type Decryption =
  | { ok: true; entity: Buffer; address: string; fingerprint: string }
  | { ok: false; code: string; detail: string };

interface UnsealedKey {
  address: string;
  fingerprint: string;
  certificate: Buffer | null;
  secret: Buffer;
}

/**
 * What each recipient's own keys make of the message: a recipient gets the plaintext only when the message was
 * encrypted to one of its keys. Trying every agency recipient's keys for all of them made the gateway an oracle:
 * whoever held a ciphertext for agency B (taken on its way, or from the sender's provider) sent it again to B and to
 * an agency-A address they read, and A got B's plaintext. Recipients holding the same keys share one attempt.
 */
async function decryptForEachRecipient(
  deps: InboundDeps,
  envelope: Envelope,
  form: EncryptedForm,
  maxEntityHeaderBytes: number,
  at: Date,
): Promise<Map<string, Decryption>> {
  const agencyRecipients = envelope.recipients.filter((r) => inDomains(r, deps.internalDomains));
  const stored = agencyRecipients.length > 0 ? await sealedAgencyKeys(deps.pool, agencyRecipients, form) : [];
  const keysOf = new Map<string, UnsealedKey[]>();
  let unsealProblem: SecretError | undefined;
  for (const key of stored) {
    try {
      const secret = openSecretWithAny(masterKeyRing(deps), key.sealedPrivateKey, {
        aad: agencyKeyAad(key.address, key.fingerprint),
      });
      keysOf.set(key.address, [...(keysOf.get(key.address) ?? []), { ...key, secret }]);
    } catch (err) {
      if (!(err instanceof SecretError)) throw err;
      unsealProblem = err;
    }
  }
  const attempts = new Map<string, Promise<Decryption>>();
  const contents: Buffer[] = [];
  // One budget for every attempt and layer: a stranger's message to sixteen agency keys costs one limit of CPU time.
  const budget: DecryptionBudget = { remainingCpuMs: deps.decryptionCpuLimitMs };
  const results = new Map<string, Decryption>();
  for (const recipient of envelope.recipients) {
    const keys = agencyRecipients.includes(recipient) ? (keysOf.get(recipient.toLowerCase()) ?? []) : [];
    if (keys.length === 0) {
      results.set(
        recipient,
        stored.some((k) => k.address === recipient.toLowerCase())
          ? {
              ok: false,
              code: unsealProblem?.code ?? 'ENCRYPT_NO_AGENCY_KEY',
              detail: 'no agency key could be unsealed',
            }
          : { ok: false, code: 'ENCRYPT_NO_AGENCY_KEY', detail: `no ${form} key held for the recipient` },
      );
      continue;
    }
    const same = keys.map((k) => k.fingerprint).join(' ');
    let attempt = attempts.get(same);
    const maxKeySets = deps.maxRecipientKeySets ?? MAX_KEY_SETS_TRIED;
    if (!attempt && attempts.size >= maxKeySets) {
      results.set(recipient, {
        ok: false,
        code: 'ENCRYPT_TOO_MANY_RECIPIENT_KEYS',
        detail: `the keys of ${maxKeySets} recipients were tried already`,
      });
      continue;
    }
    if (!attempt) {
      attempt = decryptWith(deps, envelope, { form, maxEntityHeaderBytes }, keys, at, budget).then((result) =>
        sameContentOnce(result, contents),
      );
      attempts.set(same, attempt);
    }
    results.set(recipient, await attempt);
  }
  return results;
}

/**
 * Distinct keys whose recipients a message is decrypted for: each attempt decrypts the whole message, so a stranger's
 * message to a hundred agency addresses holding keys would cost a hundred decryptions of up to the message limit.
 */
export const MAX_KEY_SETS_TRIED = 16;

/**
 * The result with its content shared with the one decrypted before (`contents`): the recipients' attempts then hold
 * one copy of the plaintext, not one each. A content that differs from it is not taken: an honest message opens to
 * the same content for every recipient, while S/MIME without integrity (AES-CBC) lets a stranger give each
 * RecipientInfo a content key of its own, and sixteen different plaintexts of the message limit would be held at once.
 */
export function sameContentOnce(result: Decryption, contents: Buffer[]): Decryption {
  if (!result.ok) return result;
  const [first] = contents;
  if (!first) {
    contents.push(result.entity);
    return result;
  }
  if (first.equals(result.entity)) return { ...result, entity: first };
  return {
    ok: false,
    code: 'ENCRYPT_CONTENT_DIFFERS',
    detail: "this recipient's key opens the message to other content than another recipient's key",
  };
}

/**
 * Encryption layers of one form a message is opened through (S/MIME inside S/MIME, OpenPGP inside OpenPGP, to the
 * recipient's own keys). A second layer left closed reached the agency as ciphertext, which clamd passed, and the
 * agency's client opened it to content nothing had scanned; each layer costs one more decryption of the message.
 */
export const MAX_ENCRYPTION_LAYERS = 3;

/** What is decrypted: the form, and how long the decrypted entity's header block may be (what the outer one leaves). */
interface DecryptionTarget {
  form: EncryptedForm;
  maxEntityHeaderBytes: number;
}

/** The message opened with `keys` (one recipient's), or why not; layers of the same form within are opened too. */
async function decryptWith(
  deps: InboundDeps,
  envelope: Envelope,
  target: DecryptionTarget,
  keys: readonly UnsealedKey[],
  at: Date,
  budget: DecryptionBudget,
): Promise<Decryption> {
  const { form } = target;
  let opened: Decryption = await decryptLayer(deps, deps.blobStore.open(envelope.blob.ref), target, keys, at, budget);
  for (let layer = 1; layer < MAX_ENCRYPTION_LAYERS && opened.ok && encryptedAs(opened.entity) === form; layer++) {
    const inner = await decryptLayer(deps, opened.entity, target, keys, at, budget);
    // Out of time inside, or a header too long inside: the whole message goes on as it came, as one the gateway
    // cannot open (the layer around it is no message for the agency either).
    if (!inner.ok && (inner.code === DECRYPTION_TIME_LIMIT_CODE || inner.code === DECRYPTED_HEADER_TOO_LARGE_CODE)) {
      return inner;
    }
    // A layer not to this recipient's keys goes on as it is, as an outer one does (README: not promised).
    if (!inner.ok) break;
    opened = inner;
  }
  return opened;
}

/** The encrypted form of a decrypted entity's own content (its header and body), if it is encrypted again. */
function encryptedAs(entity: Buffer): EncryptedForm | undefined {
  const end = findHeaderEnd(entity);
  if (!end) return undefined;
  const fields = parseHeaderFields(entity.subarray(0, end.headerLength).toString('latin1'));
  return inboundCryptoWork(fields, entity.subarray(end.bodyStart, end.bodyStart + BODY_HEAD_BYTES)).encryptedForm;
}

/**
 * One layer of `message` opened with `keys` in a decryption worker, within what is left of `budget`; or why not. The
 * entity comes back with CRLF line ends only, and only when its header block is within target.maxEntityHeaderBytes.
 */
async function decryptLayer(
  deps: InboundDeps,
  message: Readable | Buffer,
  target: DecryptionTarget,
  keys: readonly UnsealedKey[],
  at: Date,
  budget: DecryptionBudget,
): Promise<Decryption> {
  const opened = await openLayer(deps, message, target.form, keys, at, budget);
  if (!opened.ok) return opened;
  // Before and after the line ends are made CRLF (which lengthens the block): the first spares a stranger's long
  // block the copy.
  const within = (bytes: Buffer) => findHeaderEndWithin(bytes, target.maxEntityHeaderBytes) !== undefined;
  const entity = within(opened.entity) ? canonicalLineEnds(opened.entity) : undefined;
  if (!entity || !within(entity)) {
    entity?.fill(0);
    opened.entity.fill(0);
    const detail =
      `the decrypted header block, joined to the outer one, is longer than ${MAX_HEADER_BYTES} bytes ` +
      '(what ingest accepts of a header): left closed';
    return { ok: false, code: DECRYPTED_HEADER_TOO_LARGE_CODE, detail };
  }
  return { ...opened, entity };
}

async function openLayer(
  deps: InboundDeps,
  message: Readable | Buffer,
  form: EncryptedForm,
  keys: readonly UnsealedKey[],
  at: Date,
  budget: DecryptionBudget,
): Promise<Decryption> {
  const maxBytes = deps.maxMessageBytes + SIZE_SLACK_BYTES;
  try {
    if (form === 'smime') {
      const candidates = keys.filter((k) => k.certificate !== null);
      const keyPairs = candidates.map((k) => ({ certificate: k.certificate as Buffer, privateKey: k.secret }));
      const { entity, authenticated } = await deps.decryptionWorkers.decrypt(
        message,
        { form, keys: keyPairs, maxBytes },
        budget,
      );
      if (!authenticated && holdsNoiseBytes(entity)) {
        // EnvelopedData (AES-CBC, 3DES) has no integrity; noise in it is what a stranger's chosen blocks leave behind
        // (EFAIL CBC gadgets). Opened, it would put their text (`<img src="http://…/?`) before the agency's secret.
        entity.fill(0);
        return { ok: false, code: UNAUTHENTICATED_DAMAGED_CODE, detail: UNAUTHENTICATED_DAMAGED_DETAIL };
      }
      // decryptEnveloped does not say which key opened it; all of them are this recipient's.
      const first = candidates[0];
      return { ok: true, entity, address: first?.address ?? '', fingerprint: first?.fingerprint ?? '' };
    }
    const privateKeys = keys.map((k) => ({ armored: k.secret.toString('utf8') }));
    const opened = await deps.decryptionWorkers.decrypt(message, { form, privateKeys, now: at, maxBytes }, budget);
    const used = keys.find((k) => k.fingerprint === opened.decryptedWith) ?? keys[0];
    return { ok: true, entity: opened.entity, address: used?.address ?? '', fingerprint: used?.fingerprint ?? '' };
  } catch (err) {
    if (err instanceof SmimeError || err instanceof PgpError) return { ok: false, code: err.code, detail: err.message };
    if (err instanceof DecryptionTimeLimitError) {
      // One reason for every recipient it stopped, so they go on together.
      const seconds = deps.decryptionCpuLimitMs / 1000;
      const detail =
        `decrypting used more than ${seconds} s of CPU (SMGW_DECRYPT_TIME_LIMIT_SECONDS), or ` +
        `${DECRYPTION_WALL_CLOCK_FACTOR} times that by the clock, and was stopped`;
      return { ok: false, code: DECRYPTION_TIME_LIMIT_CODE, detail };
    }
    throw err;
  }
}

/**
 * The recipients in groups that get the same message: those whose keys opened it to the same content, and those
 * left closed for the same reason; in the envelope's order.
 */
function groupRecipients(
  recipients: readonly string[],
  results: ReadonlyMap<string, Decryption>,
): Array<{ recipients: string[]; decryption: Decryption }> {
  const groups: Array<{ recipients: string[]; decryption: Decryption }> = [];
  for (const recipient of recipients) {
    const decryption = results.get(recipient);
    if (!decryption) throw new Error(`no decryption result for ${recipient}`);
    const group = groups.find(({ decryption: other }) =>
      decryption.ok
        ? other.ok && other.entity.equals(decryption.entity)
        : !other.ok && other.code === decryption.code && other.detail === decryption.detail,
    );
    if (group) group.recipients.push(recipient);
    else groups.push({ recipients: [recipient], decryption });
  }
  return groups;
}

/** Fields of a decrypted entity that only ingest's checks may vouch for (in the outer header block). */
const UNCHECKED_INNER_FIELDS = new Set(['from', 'sender', 'authentication-results']);

/**
 * The decrypted entity without folded lines before its first field and without the fields ingest checks or removes
 * in the outer header block and could not see inside the ciphertext: X-SMGW-* (only the gateway writes them), Authentication-Results (no receiving server wrote one
 * there), From and Sender (checked against the MX rule and DMARC outside; inside, an agency author could be claimed).
 * The entity's header block joins the outer one (issue 8, findings 4 and 8). `entity` has CRLF line ends only
 * (canonicalLineEnds, as decryptLayer makes it): decrypted bytes never passed ingest's refusal of bare CR and LF, and a
 * lone CR hid the fields behind it from this filter while deliver's DATA stream made it a line end, so the agency got
 * them as fields of their own; every later stage now reads the lines the agency will get.
 */
function withoutUncheckedFields(entity: Buffer): Buffer {
  const headerLength = findHeaderEnd(entity)?.headerLength ?? entity.length;
  // Folded lines before the first field continue nothing of the entity: joined to the outer header right after
  // X-SMGW-Decrypted, they would continue our field with the sender's text.
  let dropping = true;
  let removed = false;
  // Line by line, names matched leniently (any case, white space before the colon, as a mail client reads them).
  const kept = entity
    .subarray(0, headerLength)
    .toString('latin1')
    .split(/(?<=\n)/)
    .filter((line) => {
      if (!/^[ \t]/.test(line)) {
        const key = /^([!-9;-~]+)[ \t]*:/.exec(line)?.[1]?.toLowerCase();
        dropping = key !== undefined && (key.startsWith('x-smgw-') || UNCHECKED_INNER_FIELDS.has(key));
      }
      removed ||= dropping;
      return !dropping;
    });
  if (!removed) return entity;
  return Buffer.concat([Buffer.from(kept.join(''), 'latin1'), entity.subarray(headerLength)]);
}

/**
 * Offered OpenPGP keys into the directory as pending, and the certificate of a validly signed message as a harvested
 * certificate, each noted in the message's trace and each for the sender's address alone: the one address of `From`
 * (the envelope sender when `From` is missing; several From addresses → nothing). `message` is the decrypted form
 * when the mail was encrypted.
 */
async function harvest(
  deps: InboundDeps,
  envelope: Envelope,
  outerFields: readonly HeaderField[],
  message: Buffer,
  at: Date,
  context: HandlerContext,
): Promise<void> {
  const fromField = headerValue(outerFields, 'from');
  const sender = fromField === undefined ? envelope.mailFrom : fromAddress(fromField);
  if (!sender) {
    context.log.debug({ code: 'ENCRYPT_HARVEST_SKIPPED' }, 'mail without one From address: nothing harvested');
    return;
  }
  await harvestCertificate(deps, envelope, sender, message, at, context);
  for (const key of await harvestPgpKeys(deps.pool, message, sender, at)) {
    await recordEvent(deps.pool, envelope.id, {
      stage: 'encrypt',
      event: 'pgp-key.harvested',
      outcome: 'next',
      code: 'ENCRYPT_PGP_KEY_HARVESTED',
      data: { fingerprint: key.fingerprint, addresses: key.addresses, state: 'pending' },
      at,
    });
  }
}

/** Harvesting a certificate never fails the message: any error is logged (ENCRYPT_HARVEST_FAILED) and it goes on. */
async function harvestCertificate(
  deps: InboundDeps,
  envelope: Envelope,
  sender: string,
  message: Buffer,
  at: Date,
  context: HandlerContext,
): Promise<void> {
  try {
    const { fields, body } = await splitMessage(Readable.from([message]));
    body.destroy();
    if (!maySignSmime(fields)) return;
    const harvest = await harvestSmimeCertificate(
      {
        pool: deps.pool,
        keyDirectory: deps.keyDirectory,
        fetcher: deps.fetcher,
        revocationMode: deps.revocationMode,
        now: at,
      },
      message,
      sender,
    );
    if (!harvest.stored) {
      context.log.debug({ code: 'ENCRYPT_HARVEST_SKIPPED', why: harvest.why }, 'signer certificate not harvested');
      return;
    }
    if (!harvest.created) return;
    await recordEvent(deps.pool, envelope.id, {
      stage: 'encrypt',
      event: 'certificate.harvested',
      outcome: 'next',
      code: 'ENCRYPT_CERTIFICATE_HARVESTED',
      data: {
        fingerprint: harvest.fingerprint,
        addresses: harvest.addresses,
        replaced: harvest.replaced,
        capabilities: harvest.capabilities,
      },
      at,
    });
    context.log.info(
      { code: 'ENCRYPT_CERTIFICATE_HARVESTED', fingerprint: harvest.fingerprint, replaced: harvest.replaced },
      'signer certificate harvested',
    );
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    context.log.warn(
      { code: 'ENCRYPT_HARVEST_FAILED', cause: typeof code === 'string' ? code : undefined, err },
      'certificate harvesting failed; the message goes on',
    );
  }
}

/** A new blob: `head` (our field), the kept header fields, the blank line, the original body streamed. */
async function putRewritten(
  deps: InboundDeps,
  envelope: Envelope,
  head: Buffer,
  fields: HeaderField[],
): Promise<BlobRef> {
  const original = await splitMessage(deps.blobStore.open(envelope.blob.ref));
  const content = Readable.from(
    concatStreams(Buffer.concat([head, headerBytes(fields), Buffer.from('\r\n')]), original.body),
    {
      objectMode: false,
    },
  );
  return deps.blobStore.put(content, { messageId: envelope.id, maxBytes: deps.maxMessageBytes + SIZE_SLACK_BYTES });
}

async function* concatStreams(head: Buffer, body: Readable): AsyncGenerator<Buffer> {
  yield head;
  for await (const chunk of body) yield Buffer.from(chunk as Uint8Array);
}
