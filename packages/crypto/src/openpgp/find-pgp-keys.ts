// Harvesting: OpenPGP public keys a sender offers in a message, as application/pgp-keys (or other attached armored
// public key blocks) and in Autocrypt headers (Autocrypt Level 1). What is found is only a candidate: the key
// directory stores it as pending until an operator approves it. Private keys found in mail are ignored, and so is a
// key too large to be worth its cost (HARVESTED_KEY_LIMITS): the key is checked before any signature is verified.
//
// The message is read as far as keys can be: the top header (Autocrypt, From) and the parts a reader gets as
// attachments (mailparser's rule), each decoded; inline text is never decoded or converted. mailparser's simpleParser,
// used before, turned every text part into HTML: a multipart of 5 MB of bare line feeds cost 0.9–1.4 s of CPU.
import {
  bareLfToCrlf,
  type HeaderBudget,
  HeaderBudgetError,
  type HeaderField,
  headerBudget,
  headerValue,
  listedAddresses,
  splitHeaderBlockWithin,
} from '@smgw/mime';
import { decode as decodeQuotedPrintable } from 'libqp';
import * as openpgp from 'openpgp';
import { multipartParts, parseContentType } from '../smime/mime-entity.ts';
import { costlyKeyMaterial } from './inspect-public-key.ts';
import { HARVESTED_KEY_LIMITS, keyBeyondLimits } from './key-limits.ts';

export { HARVESTED_KEY_LIMITS } from './key-limits.ts';

import { fingerprintOf } from './private-keys.ts';

export interface FoundPgpKey {
  /** The public key, armored by us (only the key, nothing around it). */
  armored: string;
  fingerprint: string;
  source: 'attachment' | 'autocrypt';
  /** The Autocrypt addr attribute (lower-case), for keys from an Autocrypt header. */
  address?: string;
}

const BEGIN_PUBLIC_KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----';
const END_PUBLIC_KEY = '-----END PGP PUBLIC KEY BLOCK-----';
/** Keys kept per message (Autocrypt headers and attachments together): each becomes a pending key in the directory. */
export const MAX_KEYS_PER_MESSAGE = 16;
/** Autocrypt headers and key blocks read per message, readable or not: each costs an openpgp parse. */
export const MAX_KEY_SOURCES_PER_MESSAGE = 64;
// Autocrypt Level 1 §2.1: attributes other than these make the header invalid unless they start with '_'.
const AUTOCRYPT_KNOWN_ATTRIBUTES = new Set(['addr', 'prefer-encrypt', 'keydata']);

/**
 * Public keys found in `mimeBytes`, deduplicated by fingerprint, at most MAX_KEYS_PER_MESSAGE of them from at most
 * MAX_KEY_SOURCES_PER_MESSAGE headers and blocks (the first ones). Unreadable keys, keys beyond HARVESTED_KEY_LIMITS
 * and invalid Autocrypt headers are skipped, never thrown: harvesting must not stop mail.
 */
export async function findPgpKeysInMessage(mimeBytes: Buffer): Promise<FoundPgpKey[]> {
  const message = bareLfToCrlf(mimeBytes);
  const budget = headerBudget();
  let root: { fields: HeaderField[]; body: Buffer };
  try {
    root = splitHeaderBlockWithin(message, budget);
  } catch {
    return []; // a header no sender writes (over the walk's budget) or none that reads: nothing of it is read
  }
  const found = new Map<string, FoundPgpKey>();
  let sourcesLeft = MAX_KEY_SOURCES_PER_MESSAGE;
  const enough = () => found.size >= MAX_KEYS_PER_MESSAGE || sourcesLeft <= 0;
  const read = async (data: string | Uint8Array): Promise<openpgp.Key[]> => {
    // Too large a block is not even parsed, and costs no source: it is skipped at the price of its length.
    if (data.length > HARVESTED_KEY_LIMITS.bytes) return [];
    sourcesLeft--;
    return readKeysQuietly(data);
  };
  const add = (keys: openpgp.Key[], source: FoundPgpKey['source'], address?: string) => {
    for (const key of keys) {
      if (found.size >= MAX_KEYS_PER_MESSAGE) return;
      // A private key that travelled by mail is compromised: it is not offered for encryption at all.
      if (key.isPrivate()) continue;
      if (exceedsHarvestLimits(key)) continue;
      const fingerprint = fingerprintOf(key);
      if (found.has(fingerprint)) continue;
      found.set(fingerprint, { armored: key.armor(), fingerprint, source, ...(address ? { address } : {}) });
    }
  };

  const fromAddress = listedAddresses(headerValue(root.fields, 'from') ?? '')[0]?.toLowerCase();
  for (const header of root.fields) {
    if (header.key !== 'autocrypt') continue;
    const autocrypt = parseAutocryptHeader(header.raw);
    // Autocrypt §2.1: a header whose addr is not the From address is ignored.
    if (!autocrypt || autocrypt.addr !== fromAddress) continue;
    if (enough()) break;
    add(await read(autocrypt.keydata), 'autocrypt', autocrypt.addr);
  }

  const walk: AttachmentWalk = { headers: budget, partsLeft: HARVEST_WALK_LIMITS.maxParts };
  try {
    for (const attachment of attachedParts(root, 0, walk)) {
      if (enough()) break;
      const isKeyType = attachment.mediaType === 'application/pgp-keys';
      const text = attachment.content.toString('latin1');
      for (const block of publicKeyBlocks(text)) {
        if (enough()) break;
        add(await read(block), 'attachment');
      }
      if (isKeyType && !text.includes('-----BEGIN PGP ') && !enough())
        add(await read(new Uint8Array(attachment.content)), 'attachment');
    }
  } catch {
    // A part the walk cannot read (as mailparser's errors were before): the keys found so far are offered, and the
    // message goes on; its caller does not catch, and a throw here would retry the message for a parse it never passes.
  }
  return [...found.values()];
}

/**
 * How far the walk for attached keys goes: parts (every entity, multiparts included) and nesting. A sender offering
 * a key writes a few parts; the header lines of all of them together are held to @smgw/mime's walk budget
 * (MAX_WALK_HEADER_LINES, no block over 1 MiB). Beyond any of these the walk ends, keys found before it are kept.
 */
export const HARVEST_WALK_LIMITS = { maxParts: 500, maxDepth: 12 };

interface AttachmentWalk {
  headers: HeaderBudget;
  partsLeft: number;
}

/** mailparser's text types: an inline part of these is the message's text, not an attachment. */
const TEXT_TYPES = new Set(['text/plain', 'text/html', 'message/delivery-status']);

/**
 * The parts under `entity` a reader gets as attachments, in order, each with its transfer encoding removed: as
 * mailparser lists them (a part that is not inline text: another type, a disposition other than inline; here a named
 * text part too), an inline message/rfc822 of identity encoding opened as mailsplit opens it. Lazy: the caller stops
 * once it has enough.
 */
function* attachedParts(
  entity: { fields: HeaderField[]; body: Buffer },
  depth: number,
  walk: AttachmentWalk,
): Generator<{ mediaType: string; content: Buffer }> {
  // Without Content-Type: text/plain (parseContentType's default, mailsplit's for any part).
  const type = parseContentType(headerValue(entity.fields, 'content-type'));
  const disposition = parseContentType(headerValue(entity.fields, 'content-disposition') ?? '');
  const encoding = (headerValue(entity.fields, 'content-transfer-encoding') ?? '').trim().toLowerCase();
  if (type.mediaType.startsWith('multipart/')) {
    if (depth >= HARVEST_WALK_LIMITS.maxDepth) return;
    for (const part of partsOf(entity.body, type.parameters.boundary ?? '', walk.partsLeft)) {
      if (walk.partsLeft-- <= 0) return;
      const child = entityWithin(part, walk);
      if (!child) return;
      yield* attachedParts(child, depth + 1, walk);
    }
    return;
  }
  if (type.mediaType === 'message/rfc822' && disposition.mediaType === 'inline' && IDENTITY_ENCODINGS.has(encoding)) {
    if (walk.partsLeft-- <= 0 || depth >= HARVEST_WALK_LIMITS.maxDepth) return;
    const message = entityWithin(entity.body, walk);
    if (message) yield* attachedParts(message, depth + 1, walk);
    return;
  }
  const inline = disposition.mediaType === 'inline' || disposition.mediaType === '';
  const named = disposition.parameters.filename !== undefined || type.parameters.name !== undefined;
  // Inline text is the message's text. A named one is looked at too: mailsplit takes the type of a part without
  // Content-Type from its file name (key.asc), and a search costs little.
  if (TEXT_TYPES.has(type.mediaType) && inline && !named) return;
  yield { mediaType: type.mediaType, content: decodedContent(entity.body, encoding) };
}

const IDENTITY_ENCODINGS = new Set(['', '7bit', '8bit', 'binary']);

/** The parts of a multipart body; one never closed is read as closed at its end, as mailsplit reads it. */
function partsOf(body: Buffer, boundary: string, maxParts: number): Buffer[] {
  try {
    return multipartParts(body, boundary, maxParts);
  } catch {
    try {
      return multipartParts(
        Buffer.concat([body, Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1')]),
        boundary,
        maxParts,
      );
    } catch {
      return []; // no boundary, or no part at all
    }
  }
}

/** A part's header and body within the walk's budget of header lines; undefined beyond it. */
function entityWithin(bytes: Buffer, walk: AttachmentWalk): { fields: HeaderField[]; body: Buffer } | undefined {
  try {
    return splitHeaderBlockWithin(bytes, walk.headers);
  } catch (error) {
    if (error instanceof HeaderBudgetError) return undefined;
    throw error;
  }
}

/** The body without its transfer encoding (base64, quoted-printable); any other is taken as it stands. */
function decodedContent(body: Buffer, encoding: string): Buffer {
  if (encoding === 'base64') return Buffer.from(body.toString('latin1'), 'base64');
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(body);
  return body;
}

/** Each armored public key block in `text`, BEGIN line to the first END line after it, in one pass. */
export function* publicKeyBlocks(text: string): Generator<string> {
  let begin = text.indexOf(BEGIN_PUBLIC_KEY);
  while (begin !== -1) {
    const end = text.indexOf(END_PUBLIC_KEY, begin + BEGIN_PUBLIC_KEY.length);
    // No END after this BEGIN is none after any later one either.
    if (end === -1) return;
    yield text.slice(begin, end + END_PUBLIC_KEY.length);
    begin = text.indexOf(BEGIN_PUBLIC_KEY, end + END_PUBLIC_KEY.length);
  }
}

/** addr and keydata (binary) of one raw `Autocrypt:` header line, or undefined when it is not valid. */
export function parseAutocryptHeader(line: string): { addr: string; keydata: Uint8Array } | undefined {
  const value = line
    .replace(/\r?\n[ \t]/g, ' ')
    .replace(/^autocrypt:/i, '')
    .trim();
  const attributes = new Map<string, string>();
  for (const pair of value.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) return undefined;
    const name = pair.slice(0, eq).trim().toLowerCase();
    if (!AUTOCRYPT_KNOWN_ATTRIBUTES.has(name) && !name.startsWith('_')) return undefined;
    attributes.set(name, pair.slice(eq + 1).trim());
  }
  const addr = attributes.get('addr')?.toLowerCase();
  const keydata = attributes.get('keydata')?.replace(/\s+/g, '');
  if (!addr || !keydata || !/^[A-Za-z0-9+/]+=*$/.test(keydata)) return undefined;
  return { addr, keydata: new Uint8Array(Buffer.from(keydata, 'base64')) };
}

/** Key material too costly to check, or beyond HARVESTED_KEY_LIMITS (keyBeyondLimits; parsed, none verified). */
export function exceedsHarvestLimits(key: openpgp.Key): boolean {
  return costlyKeyMaterial(key) !== undefined || keyBeyondLimits(key) !== undefined;
}

async function readKeysQuietly(data: string | Uint8Array): Promise<openpgp.Key[]> {
  try {
    return typeof data === 'string'
      ? await openpgp.readKeys({ armoredKeys: data })
      : await openpgp.readKeys({ binaryKeys: data });
  } catch {
    return [];
  }
}
