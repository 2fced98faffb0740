// The copies of an outbound plan (plan-outbound.ts). Encrypted: per copy, one stream of the stored message's inner
// entity through the signer (when the copy is signed) and the encryptor into one new blob. A signature that cannot
// be made leaves the copy encrypted but unsigned, never held back and never in clear. The portal's: the message
// under the same outer header as the encrypted copies (portalMessage), for the mailbox stage to store as it is.
import { Readable } from 'node:stream';
import type { BlobStore, StagedBlob } from '@smgw/blob-store';
import {
  type ArmoredPrivateKey,
  encryptEnveloped,
  encryptPgpMime,
  PgpError,
  SmimeError,
  signMultipart,
} from '@smgw/crypto';
import type { BlobRef } from '@smgw/envelope';
import { canonicalLineEnds, splitMessage } from '@smgw/mime';
import type { NotSigned } from './agency-signing.ts';
import { innerEntity, pgpOuterHeaders, portalMessage } from './outer-headers.ts';
import type { PlannedCopy } from './plan-outbound.ts';

export interface CopyDeps {
  blobStore: BlobStore;
  /** Upper bound for an encrypted copy (base64 and armour add about a third to the original). */
  maxEncryptedBytes: number;
  /** SMGW_MAX_MESSAGE_BYTES: bounds the inner entity read into memory for S/MIME signing. */
  maxMessageBytes: number;
}

export interface EncryptedCopy {
  copy: PlannedCopy;
  blob: BlobRef;
  /** The copy's content, staged (a file, or rows alone when small): its rows commit with the events, then publish(). */
  staged: StagedBlob;
  signed: boolean;
  /** Why the copy is unsigned although its agency signs: known before (no key), or found while signing. */
  notSigned?: NotSigned;
}

/** Room for the Content-* header fields that innerEntity may fold differently from the original. */
const SIGN_SLACK_BYTES = 64 * 1024;

/** The outer header fields as outerHeaderPairs gives them. */
type OuterHeaderPairs = Array<[string, string]>;

/** Writes the copy of message `messageId`; `message` is the stored original's blob. */
export async function encryptCopy(
  deps: CopyDeps,
  messageId: string,
  message: BlobRef,
  copy: PlannedCopy,
  outerHeaders: OuterHeaderPairs,
  at: Date,
): Promise<EncryptedCopy> {
  const original = await splitMessage(deps.blobStore.open(message.ref));
  const entity = innerEntity(original.fields, original.body);
  try {
    const encrypted =
      copy.form === 'smime'
        ? await smimeMessage(deps, entity, copy, outerHeaders, at)
        : await pgpMessage(entity, copy, outerHeaders, at);
    const staged = await deps.blobStore.stage(encrypted.message, { messageId, maxBytes: deps.maxEncryptedBytes });
    const notSigned = copy.signing.kind === 'not-signed' ? copy.signing.why : encrypted.notSigned;
    return { copy, blob: staged.ref, staged, signed: encrypted.signed, ...(notSigned ? { notSigned } : {}) };
  } finally {
    entity.destroy();
  }
}

/**
 * The copy for the recipients handed to the portal, staged like an encrypted copy (its rows commit with the outcome's
 * events). Bounded like one: the header may grow by the fields filled in from the envelope.
 */
export async function stagePortalCopy(
  deps: CopyDeps,
  messageId: string,
  message: BlobRef,
  outerHeaders: OuterHeaderPairs,
): Promise<StagedBlob> {
  const { fields, body } = await splitMessage(deps.blobStore.open(message.ref));
  const copy = portalMessage(outerHeaders, fields, body);
  try {
    return await deps.blobStore.stage(copy, { messageId, maxBytes: deps.maxEncryptedBytes });
  } finally {
    copy.destroy();
  }
}

interface EncryptedMessage {
  message: Readable;
  signed: boolean;
  notSigned?: NotSigned;
}

async function smimeMessage(
  deps: CopyDeps,
  entity: Readable,
  copy: Extract<PlannedCopy, { form: 'smime' }>,
  headers: OuterHeaderPairs,
  at: Date,
): Promise<EncryptedMessage> {
  const recipients = copy.recipients.map(({ certificate, keyTransport }) =>
    keyTransport === 'ecdh' ? { certificate } : { certificate, keyTransport },
  );
  const encrypt = (content: Readable | Buffer) =>
    encryptEnveloped({ content, recipients, contentCipher: copy.contentCipher, headers });
  if (copy.signing.kind !== 'sign') return { message: encrypt(entity), signed: false };

  // signMultipart takes the entity whole (its digest goes into the signature): held in memory, bounded by
  // SMGW_MAX_MESSAGE_BYTES, which ingest already enforced. Unsigned copies stream.
  const read = await readWholeUpTo(entity, deps.maxMessageBytes + SIGN_SLACK_BYTES);
  if ('tooLarge' in read) {
    const reason = `the entity is larger than ${deps.maxMessageBytes} bytes`;
    return {
      message: encrypt(read.tooLarge),
      signed: false,
      notSigned: { ok: false, code: 'ENCRYPT_TOO_LARGE_TO_SIGN', reason },
    };
  }
  let signed: Buffer;
  try {
    signed = await signMultipart({ entity: canonicalLineEnds(read.whole), key: copy.signing.key, signingTime: at });
  } catch (err) {
    if (!(err instanceof SmimeError)) throw err;
    return {
      message: encrypt(read.whole),
      signed: false,
      notSigned: { ok: false, code: err.code, reason: err.message },
    };
  }
  return { message: encrypt(signed), signed: true };
}

async function pgpMessage(
  entity: Readable,
  copy: Extract<PlannedCopy, { form: 'pgp' }>,
  outerHeaders: OuterHeaderPairs,
  at: Date,
): Promise<EncryptedMessage> {
  const { headers, extraLines } = pgpOuterHeaders(outerHeaders);
  const recipientKeys = copy.recipients.map((r) => r.armored);
  const encrypt = async (signingKey?: ArmoredPrivateKey): Promise<Readable> => {
    const encrypted = await encryptPgpMime({
      content: entity,
      recipientKeys,
      headers,
      now: at,
      ...(signingKey ? { signingKey } : {}),
    });
    return Readable.from(prepend(Buffer.from(extraLines, 'latin1'), encrypted), { objectMode: false });
  };
  if (copy.signing.kind !== 'sign') return { message: await encrypt(), signed: false };
  try {
    return { message: await encrypt(copy.signing.key), signed: true };
  } catch (err) {
    // encryptPgpMime refuses the key before it reads any of the content: the same stream goes out unsigned.
    if (!(err instanceof PgpError && err.code === 'PGP_SIGNING_KEY_UNUSABLE')) throw err;
    return { message: await encrypt(), signed: false, notSigned: { ok: false, code: err.code, reason: err.message } };
  }
}

async function* prepend(head: Buffer, rest: Readable): AsyncGenerator<Buffer> {
  if (head.length > 0) yield head;
  for await (const chunk of rest) yield Buffer.from(chunk as Uint8Array);
}

/**
 * The whole stream in memory when it is at most maxBytes long. Past that, what was read and the rest of the stream
 * as one stream again, so an unsigned copy can still be made of it without reading the message a second time.
 */
export async function readWholeUpTo(
  stream: Readable,
  maxBytes: number,
): Promise<{ whole: Buffer } | { tooLarge: Readable }> {
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  const chunks: Buffer[] = [];
  let length = 0;
  for (;;) {
    const chunk = await iterator.next();
    if (chunk.done) return { whole: Buffer.concat(chunks, length) };
    const bytes = Buffer.from(chunk.value);
    chunks.push(bytes);
    length += bytes.length;
    if (length > maxBytes) {
      const again = Readable.from(replay(chunks, iterator), { objectMode: false });
      // Destroyed before it was read, the generator never runs its finally: release the source here too.
      again.once('close', () => stream.destroy());
      return { tooLarge: again };
    }
  }
}

async function* replay(read: Buffer[], rest: AsyncIterator<Uint8Array>): AsyncGenerator<Buffer> {
  try {
    yield* read;
    for (;;) {
      const chunk = await rest.next();
      if (chunk.done) return;
      yield Buffer.from(chunk.value);
    }
  } finally {
    await rest.return?.();
  }
}
