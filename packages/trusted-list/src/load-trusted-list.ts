// Loads one national trusted list from the operator's bytes: vetted, parsed, signature checked, model read.

import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { TrustedListError } from './errors.ts';
import { verifyListSignature } from './list-signature.ts';
import type { LoadedTrustedList } from './model.ts';
import { readTrustedList } from './read-trusted-list.ts';
import { DEFAULT_MAX_LIST_BYTES, decodeListText, parseXml } from './xml-parse.ts';

export interface LoadOptions {
  /** Certificates allowed to sign the list (DER, PEM text or parsed). */
  signerCertificates: readonly (X509Certificate | Uint8Array | string)[];
  /** The clock: signer validity and staleness are judged at this time. */
  now: Date;
  maxBytes?: number;
  /** Name of the file or source, for reports and errors. */
  source?: string;
}

export function toCertificate(value: X509Certificate | Uint8Array | string): X509Certificate {
  if (value instanceof X509Certificate) return value;
  try {
    return new X509Certificate(typeof value === 'string' ? value : Buffer.from(value));
  } catch {
    throw new TrustedListError('TL_NO_SIGNER_CERT', 'a signer certificate given for the list cannot be read');
  }
}

/** Verifies and reads one list; throws TrustedListError when it must not be used. */
export function loadTrustedList(bytes: Uint8Array, options: LoadOptions): LoadedTrustedList {
  const text = decodeListText(bytes, options.maxBytes ?? DEFAULT_MAX_LIST_BYTES);
  const doc = parseXml(text);
  const candidates = options.signerCertificates.map(toCertificate);
  const { signedRoot, signerCertificate } = verifyListSignature(text, doc, candidates, options.now);
  const list = readTrustedList(signedRoot);
  return {
    list,
    source: options.source ?? '(bytes)',
    signerCertificate: new Uint8Array(signerCertificate.raw),
    stale: list.nextUpdate === undefined || options.now > list.nextUpdate,
  };
}

/** Reads a file the operator provides, refusing one over the size limit before reading it. */
export async function readListFile(path: string, maxBytes = DEFAULT_MAX_LIST_BYTES): Promise<Uint8Array> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw new TrustedListError(
      'TL_UNREADABLE',
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  if (size > maxBytes) {
    throw new TrustedListError('TL_TOO_LARGE', `${path} has ${size} bytes, more than the limit of ${maxBytes}`);
  }
  return new Uint8Array(await readFile(path));
}

export async function loadTrustedListFile(
  path: string,
  options: Omit<LoadOptions, 'source'>,
): Promise<LoadedTrustedList> {
  const bytes = await readListFile(path, options.maxBytes);
  return loadTrustedList(bytes, { ...options, source: path });
}
