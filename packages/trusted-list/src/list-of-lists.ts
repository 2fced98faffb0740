// EU list of trusted lists (LOTL) mode: the LOTL is checked against the operator's configured certificate, then
// each national list in the operator's folder is checked against the certificates the LOTL names for its
// territory. A list that fails is refused and reported; the others are used.
import type { X509Certificate } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Element } from '@xmldom/xmldom';
import { TrustedListError, type TrustedListErrorCode } from './errors.ts';
import { verifyListSignature } from './list-signature.ts';
import { loadTrustedList, readListFile, toCertificate } from './load-trusted-list.ts';
import { type LoadedTrustedList, type OtherListPointer, TSL_NS } from './model.ts';
import { readTrustedList } from './read-trusted-list.ts';
import { DEFAULT_MAX_LIST_BYTES, decodeListText, parseXml } from './xml-parse.ts';

/** At most this many files are read from the folder (the EU has 30-odd lists). */
export const MAX_NATIONAL_LISTS = 100;

export interface RefusedList {
  source: string;
  /** The territory the file claims (unverified) or the LOTL names, if known. */
  territory: string | undefined;
  code: TrustedListErrorCode;
  reason: string;
}

export interface ListOfListsResult {
  lotl: LoadedTrustedList;
  /** National lists whose signatures verified with a certificate the LOTL gives for their territory. */
  lists: LoadedTrustedList[];
  refused: RefusedList[];
}

export interface ListOfListsOptions {
  lotlSignerCertificates: readonly (X509Certificate | Uint8Array | string)[];
  now: Date;
  maxBytes?: number;
}

export interface NationalListFile {
  source: string;
  bytes: Uint8Array;
}

function isXmlPointer(pointer: OtherListPointer): boolean {
  return pointer.mimeType === undefined || /xml/i.test(pointer.mimeType);
}

/** The territory a list claims, read before its signature is checked: only to choose the LOTL certificates. */
function claimedTerritory(root: Element): string | undefined {
  for (let n = root.firstChild; n; n = n.nextSibling) {
    const el = n as Element;
    if (n.nodeType !== 1 || el.namespaceURI !== TSL_NS || el.localName !== 'SchemeInformation') continue;
    for (let c = el.firstChild; c; c = c.nextSibling) {
      const child = c as Element;
      if (c.nodeType === 1 && child.namespaceURI === TSL_NS && child.localName === 'SchemeTerritory') {
        return child.textContent?.trim() || undefined;
      }
    }
  }
  return undefined;
}

export function loadListOfTrustedLists(
  lotlBytes: Uint8Array,
  lotlSource: string,
  nationalFiles: readonly NationalListFile[],
  options: ListOfListsOptions,
): ListOfListsResult {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_LIST_BYTES;
  // A LOTL that fails is thrown: without it no national list can be judged.
  const lotl = loadTrustedList(lotlBytes, {
    signerCertificates: options.lotlSignerCertificates,
    now: options.now,
    maxBytes,
    source: lotlSource,
  });
  const pointers = lotl.list.pointers.filter(isXmlPointer);
  const refused: RefusedList[] = [];
  const byTerritory = new Map<string, LoadedTrustedList>();
  for (const file of nationalFiles.slice(0, MAX_NATIONAL_LISTS)) {
    let territory: string | undefined;
    try {
      const text = decodeListText(file.bytes, maxBytes);
      const doc = parseXml(text);
      territory = claimedTerritory(doc.documentElement as Element);
      if (!territory) throw new TrustedListError('TL_NOT_A_TRUSTED_LIST', 'the list names no SchemeTerritory');
      const claimed = territory;
      const candidates = pointers
        .filter((p) => p.territory === claimed)
        .flatMap((p) => p.signerCertificates.map(toCertificate));
      if (candidates.length === 0) {
        throw new TrustedListError(
          'TL_NO_SIGNER_CERT',
          `the LOTL names no signer certificate for territory ${claimed}`,
        );
      }
      const { signedRoot, signerCertificate } = verifyListSignature(text, doc, candidates, options.now);
      const list = readTrustedList(signedRoot);
      if (list.territory !== claimed) {
        throw new TrustedListError('TL_TERRITORY_MISMATCH', `the signed list is for ${list.territory}, not ${claimed}`);
      }
      const loaded: LoadedTrustedList = {
        list,
        source: file.source,
        signerCertificate: new Uint8Array(signerCertificate.raw),
        stale: list.nextUpdate === undefined || options.now > list.nextUpdate,
      };
      const earlier = byTerritory.get(claimed);
      if (earlier) {
        const [kept, dropped] =
          earlier.list.sequenceNumber >= list.sequenceNumber ? [earlier, loaded] : [loaded, earlier];
        byTerritory.set(claimed, kept);
        refused.push({
          source: dropped.source,
          territory: claimed,
          code: 'TL_DUPLICATE_TERRITORY',
          reason: `${kept.source} has the same territory with sequence number ${kept.list.sequenceNumber}`,
        });
      } else {
        byTerritory.set(claimed, loaded);
      }
    } catch (err) {
      if (!(err instanceof TrustedListError)) throw err;
      refused.push({ source: file.source, territory, code: err.code, reason: err.message });
    }
  }
  for (const file of nationalFiles.slice(MAX_NATIONAL_LISTS)) {
    refused.push({
      source: file.source,
      territory: undefined,
      code: 'TL_TOO_LARGE',
      reason: `more than ${MAX_NATIONAL_LISTS} lists in the folder`,
    });
  }
  return { lotl, lists: [...byTerritory.values()], refused };
}

/** Reads the LOTL file and every `*.xml` in the folder (except the LOTL itself), then loads them. */
export async function loadListOfTrustedListsFromFiles(
  lotlPath: string,
  directory: string,
  options: ListOfListsOptions,
): Promise<ListOfListsResult> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_LIST_BYTES;
  const lotlBytes = await readListFile(lotlPath, maxBytes);
  const names = (await readdir(directory, { withFileTypes: true }))
    .filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.xml'))
    .map((e) => join(directory, e.name))
    .filter((path) => path !== lotlPath)
    .sort();
  const files: NationalListFile[] = [];
  const unreadable: RefusedList[] = [];
  for (const path of names.slice(0, MAX_NATIONAL_LISTS + 1)) {
    try {
      files.push({ source: path, bytes: await readListFile(path, maxBytes) });
    } catch (err) {
      if (!(err instanceof TrustedListError)) throw err;
      unreadable.push({ source: path, territory: undefined, code: err.code, reason: err.message });
    }
  }
  const result = loadListOfTrustedLists(lotlBytes, lotlPath, files, options);
  return { ...result, refused: [...unreadable, ...result.refused] };
}
