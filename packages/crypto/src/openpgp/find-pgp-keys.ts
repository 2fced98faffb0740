// Harvesting: OpenPGP public keys a sender offers in a message, as application/pgp-keys (or other attached armored
// public key blocks) and in Autocrypt headers (Autocrypt Level 1). What is found is only a candidate: the key
// directory stores it as pending until an operator approves it. Private keys found in mail are ignored, and so is a
// key too large to be worth its cost (HARVESTED_KEY_LIMITS): the key is checked before any signature is verified.
import { simpleParser } from 'mailparser';
import * as openpgp from 'openpgp';
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
  let parsed: Awaited<ReturnType<typeof simpleParser>>;
  try {
    parsed = await simpleParser(mimeBytes, { skipHtmlToText: true, skipTextLinks: true, skipImageLinks: true });
  } catch {
    return [];
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

  const fromAddress = parsed.from?.value[0]?.address?.toLowerCase();
  for (const header of parsed.headerLines) {
    if (header.key !== 'autocrypt') continue;
    const autocrypt = parseAutocryptHeader(header.line);
    // Autocrypt §2.1: a header whose addr is not the From address is ignored.
    if (!autocrypt || autocrypt.addr !== fromAddress) continue;
    if (enough()) break;
    add(await read(autocrypt.keydata), 'autocrypt', autocrypt.addr);
  }

  for (const attachment of parsed.attachments) {
    const isKeyType = attachment.contentType.toLowerCase() === 'application/pgp-keys';
    const text = attachment.content.toString('latin1');
    for (const block of publicKeyBlocks(text)) {
      if (enough()) break;
      add(await read(block), 'attachment');
    }
    if (isKeyType && !text.includes('-----BEGIN PGP ') && !enough())
      add(await read(new Uint8Array(attachment.content)), 'attachment');
  }
  return [...found.values()];
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
