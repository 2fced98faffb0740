// Locating the signature dictionaries of a PDF (ISO 32000-1 §12.8, ETSI EN 319 142-1) and the revisions they sign.
// This is a small parser of our own, made for that one job and nothing else: it finds every indirect object that
// holds a dictionary with /ByteRange, reads that dictionary with a bounded tokenizer, finds where each revision ends
// (%%EOF), and follows the cross-reference chain (startxref → /Prev) only to refuse loops and offsets outside the
// file. It does not render, decompress or resolve anything, except the document security store's streams (/DSS:
// CRLs and OCSP responses, found by the last `/DSS` and `N G obj` in the file, inflated with a cap). A signature
// dictionary cannot sit in a compressed object stream (its /Contents must be excluded by byte offsets), so scanning
// the file's bytes finds them all; a /DSS inside an object stream is not found. Every object is read at most once,
// and all reading of one file shares one work budget (a token, or a byte passed, is one unit; linear in the file's
// size), so no file costs more than linear work however its objects overlap.
import { inflateSync } from 'node:zlib';

export interface PdfLimits {
  /** Largest file read at all; default 64 MiB. */
  maxBytes: number;
  /** Indirect object headers passed while locating signature dictionaries; default 500 000. */
  maxObjects: number;
  /** Signature dictionaries verified; default 32 (those beyond are reported, never verified). */
  maxSignatures: number;
  /** Cross-reference sections followed; default 1 000. */
  maxRevisions: number;
  /**
   * Work the object reader may spend on one file, per byte of the file, on top of WORK_ALLOWANCE; default 2 (a
   * well-formed file needs at most 1: its objects do not overlap). A token read or a byte passed is one unit.
   * Beyond it the rest of the file is not examined (INDETERMINATE, never a pass).
   */
  workPerByte: number;
}

export const DEFAULT_PDF_LIMITS: PdfLimits = {
  maxBytes: 64 * 1024 * 1024,
  maxObjects: 500_000,
  maxSignatures: 32,
  maxRevisions: 1000,
  workPerByte: 2,
};

/** Units of work every file may spend regardless of its size (small files with large trailers or signatures). */
export const WORK_ALLOWANCE = 1_000_000;

/** The file needs more work to read than its budget: what is not examined is INDETERMINATE, not a format failure. */
export class PdfWorkLimitError extends Error {
  readonly code = 'PDF_WORK_LIMIT';
}

/** The work all reading of one file may do together: tokens read plus bytes passed (strings, comments, searches). */
export class WorkBudget {
  used = 0;
  readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  static forFile(size: number, workPerByte: number = DEFAULT_PDF_LIMITS.workPerByte): WorkBudget {
    return new WorkBudget(WORK_ALLOWANCE + workPerByte * size);
  }

  spend(units: number): void {
    this.used += units;
    if (this.used > this.limit) {
      throw new PdfWorkLimitError(`reading the file needs more than its work budget of ${this.limit} units`);
    }
  }
}

/** The file is not a PDF we can read: verified as TOTAL_FAILED FORMAT_FAILURE, never a crash. */
export class PdfFormatError extends Error {
  readonly code = 'PDF_FORMAT';
}

export interface PdfSignatureDictionary {
  /** `N G` of the indirect object holding the dictionary, and where that object starts. */
  objectNumber: number;
  generation: number;
  objectOffset: number;
  /** /Type: `Sig`, `DocTimeStamp`, or missing (then judged by /SubFilter). */
  type?: string;
  subFilter?: string;
  /** The /ByteRange numbers as written (unchecked). */
  byteRange?: number[];
  /** The /Contents hex string: its span in the file (from `<` to after `>`) and its decoded bytes. */
  contents?: { start: number; end: number; bytes: Buffer };
  /** /Name, /Reason, /Location, /M as written (text strings, quoted and escaped by whoever shows them). */
  name?: string;
  reason?: string;
  location?: string;
  claimedTime?: string;
  /** A defect of this dictionary alone: the others are still verified. */
  problem?: string;
}

export interface PdfStructure {
  size: number;
  /** Where each revision ends, in file order: just after its `%%EOF`, and after the end of line that follows. */
  revisions: Array<{ eof: number; end: number }>;
  signatures: PdfSignatureDictionary[];
  /** Signature dictionaries (readable or not) beyond `maxSignatures`, not verified. */
  skippedSignatures: number;
  /** Why the file was not examined to its end (the work budget ran out): then more signatures may be unseen. */
  unexamined?: string;
  /** Units of work spent reading objects: at most WORK_ALLOWANCE + workPerByte × size (plus the last token). */
  work: number;
  notes: string[];
}

type PdfValue =
  | { kind: 'dict'; entries: Map<string, PdfValue> }
  | { kind: 'array'; items: PdfValue[] }
  | { kind: 'name'; value: string }
  | { kind: 'number'; value: number; text: string }
  | { kind: 'hex'; start: number; end: number; bytes: Buffer }
  | { kind: 'string'; bytes: Buffer }
  | { kind: 'ref'; objectNumber: number; generation: number }
  | { kind: 'keyword'; value: string };

const WHITESPACE = new Set([0x00, 0x09, 0x0a, 0x0c, 0x0d, 0x20]);
const DELIMITERS = new Set([0x28, 0x29, 0x3c, 0x3e, 0x5b, 0x5d, 0x7b, 0x7d, 0x2f, 0x25]);
const MAX_NESTING = 32;
const MAX_TOKENS_PER_OBJECT = 100_000;

/** A bounded reader of one PDF object at an offset (ISO 32000-1 §7.2–7.3). */
class ObjectReader {
  private readonly bytes: Buffer;
  private readonly budget: WorkBudget;
  position: number;
  private tokens = 0;

  constructor(bytes: Buffer, position: number, budget: WorkBudget) {
    this.bytes = bytes;
    this.position = position;
    this.budget = budget;
  }

  private fail(message: string): never {
    throw new PdfFormatError(`${message} at byte ${this.position}`);
  }

  skipWhitespace(): void {
    const b = this.bytes;
    const start = this.position;
    while (this.position < b.length) {
      const c = b[this.position] as number;
      if (WHITESPACE.has(c)) this.position++;
      else if (c === 0x25) {
        while (this.position < b.length && b[this.position] !== 0x0a && b[this.position] !== 0x0d) this.position++;
      } else break;
    }
    this.budget.spend(this.position - start);
  }

  private word(): string {
    const start = this.position;
    const b = this.bytes;
    while (this.position < b.length && !WHITESPACE.has(b[this.position] as number)) {
      if (DELIMITERS.has(b[this.position] as number)) break;
      this.position++;
      if (this.position - start > 256) this.fail('token too long');
    }
    return b.toString('latin1', start, this.position);
  }

  value(depth = 0): PdfValue {
    if (depth > MAX_NESTING) this.fail('objects nested too deeply');
    if (++this.tokens > MAX_TOKENS_PER_OBJECT) this.fail('object too large');
    this.budget.spend(1);
    this.skipWhitespace();
    const b = this.bytes;
    if (this.position >= b.length) this.fail('unexpected end of file');
    const c = b[this.position] as number;
    if (c === 0x3c && b[this.position + 1] === 0x3c) return this.dictionary(depth);
    if (c === 0x3c) return this.hexString();
    if (c === 0x28) return this.literalString();
    if (c === 0x5b) {
      this.position++;
      const items: PdfValue[] = [];
      for (;;) {
        this.skipWhitespace();
        if (b[this.position] === 0x5d) {
          this.position++;
          return { kind: 'array', items };
        }
        items.push(this.value(depth + 1));
      }
    }
    if (c === 0x2f) {
      this.position++;
      return { kind: 'name', value: decodeName(this.word()) };
    }
    const text = this.word();
    if (text === '') this.fail(`unexpected character 0x${c.toString(16)}`);
    if (/^[+-]?(\d+\.?\d*|\.\d+)$/.test(text)) {
      // `N G R`: an indirect reference.
      const save = this.position;
      if (/^\d+$/.test(text)) {
        this.skipWhitespace();
        const generation = this.word();
        this.skipWhitespace();
        if (/^\d+$/.test(generation) && this.word() === 'R') {
          return { kind: 'ref', objectNumber: Number(text), generation: Number(generation) };
        }
        this.position = save;
      }
      return { kind: 'number', value: Number(text), text };
    }
    return { kind: 'keyword', value: text };
  }

  private dictionary(depth: number): PdfValue {
    this.position += 2;
    const entries = new Map<string, PdfValue>();
    for (;;) {
      this.skipWhitespace();
      const b = this.bytes;
      if (b[this.position] === 0x3e && b[this.position + 1] === 0x3e) {
        this.position += 2;
        return { kind: 'dict', entries };
      }
      const key = this.value(depth + 1);
      if (key.kind !== 'name') this.fail('dictionary key is not a name');
      // A key given twice is ambiguous: readers differ on which one counts.
      if (entries.has(key.value)) this.fail(`dictionary key /${key.value} appears twice`);
      entries.set(key.value, this.value(depth + 1));
    }
  }

  private hexString(): PdfValue {
    const start = this.position;
    const close = this.bytes.indexOf(0x3e, start + 1);
    // The search passed every byte up to `>` (or to the end of the file), whether the string is good or not.
    this.budget.spend((close < 0 ? this.bytes.length : close) - start);
    if (close < 0) this.fail('unterminated hex string');
    const digits = this.bytes.toString('latin1', start + 1, close).replace(/[\0\t\n\f\r ]/g, '');
    if (!/^[0-9A-Fa-f]*$/.test(digits)) this.fail('hex string with a character that is not a hex digit');
    this.position = close + 1;
    return {
      kind: 'hex',
      start,
      end: close + 1,
      bytes: Buffer.from(digits.length % 2 ? `${digits}0` : digits, 'hex'),
    };
  }

  private literalString(): PdfValue {
    const b = this.bytes;
    const out: number[] = [];
    let nesting = 0;
    const start = this.position;
    // Every byte passed is work, also those that add nothing to the string (a line continuation) or end in a failure.
    const passed = () => this.budget.spend(this.position - start);
    this.position++;
    while (this.position < b.length) {
      const c = b[this.position++] as number;
      if (c === 0x5c) {
        const next = b[this.position++] as number;
        const escapes: Record<number, number> = { 110: 10, 114: 13, 116: 9, 98: 8, 102: 12 };
        if (escapes[next] !== undefined) out.push(escapes[next] as number);
        else if (next >= 0x30 && next <= 0x37) {
          let octal = next - 0x30;
          for (let i = 0; i < 2 && (b[this.position] as number) >= 0x30 && (b[this.position] as number) <= 0x37; i++) {
            octal = octal * 8 + ((b[this.position++] as number) - 0x30);
          }
          out.push(octal & 0xff);
        } else if (next === 0x0d || next === 0x0a) {
          if (next === 0x0d && b[this.position] === 0x0a) this.position++;
        } else out.push(next);
      } else if (c === 0x28) {
        nesting++;
        out.push(c);
      } else if (c === 0x29) {
        if (nesting === 0) {
          passed();
          return { kind: 'string', bytes: Buffer.from(out) };
        }
        nesting--;
        out.push(c);
      } else out.push(c);
      if (out.length > 65_536) {
        passed();
        this.fail('string too long');
      }
    }
    passed();
    this.fail('unterminated string');
  }
}

function decodeName(raw: string): string {
  return raw.replace(/#([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** A PDF text string (§7.9.2.2): UTF-16BE with BOM, else PDFDocEncoding (read as Latin-1 here). */
function textOf(value: PdfValue | undefined): string | undefined {
  if (!value || (value.kind !== 'string' && value.kind !== 'hex')) return undefined;
  const bytes = value.bytes;
  if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    const swapped = Buffer.from(bytes.subarray(2, 2 + ((bytes.length - 2) & ~1)));
    return swapped.swap16().toString('utf16le');
  }
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return bytes.subarray(3).toString('utf8');
  return bytes.toString('latin1');
}

function nameOf(value: PdfValue | undefined): string | undefined {
  return value?.kind === 'name' ? value.value : undefined;
}

/** Every dictionary inside a value that has a /ByteRange key (a field's /V may hold it directly). */
function signatureDictionaries(value: PdfValue, found: Array<Map<string, PdfValue>>, depth = 0): void {
  if (depth > MAX_NESTING) return;
  if (value.kind === 'dict') {
    if (value.entries.has('ByteRange')) found.push(value.entries);
    for (const entry of value.entries.values()) signatureDictionaries(entry, found, depth + 1);
  } else if (value.kind === 'array') {
    for (const item of value.items) signatureDictionaries(item, found, depth + 1);
  }
}

function dictionaryOf(
  entries: Map<string, PdfValue>,
  object: { objectNumber: number; generation: number; objectOffset: number },
): PdfSignatureDictionary {
  const dictionary: PdfSignatureDictionary = { ...object };
  const type = nameOf(entries.get('Type'));
  const subFilter = nameOf(entries.get('SubFilter'));
  if (type) dictionary.type = type;
  if (subFilter) dictionary.subFilter = subFilter;
  const name = textOf(entries.get('Name'));
  const reason = textOf(entries.get('Reason'));
  const location = textOf(entries.get('Location'));
  const claimedTime = textOf(entries.get('M'));
  Object.assign(
    dictionary,
    name !== undefined ? { name } : {},
    reason !== undefined ? { reason } : {},
    location !== undefined ? { location } : {},
    claimedTime !== undefined ? { claimedTime } : {},
  );
  const byteRange = entries.get('ByteRange');
  const contents = entries.get('Contents');
  if (byteRange?.kind !== 'array' || !byteRange.items.every((i) => i.kind === 'number')) {
    dictionary.problem = '/ByteRange is not an array of numbers';
  } else {
    const numbers = byteRange.items.map((i) => (i as { value: number }).value);
    dictionary.byteRange = numbers;
    if (!numbers.every((n) => Number.isSafeInteger(n) && n >= 0)) {
      dictionary.problem = '/ByteRange holds a number that is not a non-negative integer of safe size';
    }
  }
  if (contents?.kind !== 'hex') {
    dictionary.problem ??= '/Contents is not a hex string';
  } else {
    dictionary.contents = { start: contents.start, end: contents.end, bytes: contents.bytes };
  }
  return dictionary;
}

/** Where each revision ends: after `%%EOF` and the end of line that follows it. */
function revisionsOf(bytes: Buffer): Array<{ eof: number; end: number }> {
  const ends: Array<{ eof: number; end: number }> = [];
  for (let at = bytes.indexOf('%%EOF'); at >= 0; at = bytes.indexOf('%%EOF', at + 5)) {
    let end = at + 5;
    if (bytes[end] === 0x0d) end++;
    if (bytes[end] === 0x0a) end++;
    ends.push({ eof: at + 5, end });
  }
  return ends;
}

/**
 * Follows startxref and each /Prev: an offset outside the file or a section visited twice (a loop) makes the file
 * unreadable. Sections that are not where the offset says are only noted: readers rebuild such tables.
 */
function checkCrossReferenceChain(bytes: Buffer, limits: PdfLimits, notes: string[], budget: WorkBudget): void {
  const window = (at: number, length = 40) => bytes.toString('latin1', at, Math.min(bytes.length, at + length));
  const startxref = bytes.lastIndexOf('startxref');
  if (startxref < 0) throw new PdfFormatError('no startxref: not a complete PDF');
  const match = /^startxref\s+(\d{1,20})/.exec(window(startxref));
  if (!match) throw new PdfFormatError('startxref without an offset');
  const visited = new Set<number>();
  let written = match[1] as string;
  let offset = Number(written);
  for (;;) {
    if (!Number.isSafeInteger(offset) || offset >= bytes.length) {
      throw new PdfFormatError(`cross-reference offset ${written} lies outside the file`);
    }
    if (visited.has(offset)) throw new PdfFormatError(`cross-reference sections form a loop at byte ${offset}`);
    visited.add(offset);
    if (visited.size > limits.maxRevisions) throw new PdfFormatError('too many cross-reference sections');
    let trailer: PdfValue | undefined;
    if (window(offset, 4) === 'xref') {
      const at = bytes.indexOf('trailer', offset);
      budget.spend((at < 0 ? bytes.length : at) - offset);
      if (at < 0) throw new PdfFormatError('cross-reference table without trailer');
      trailer = new ObjectReader(bytes, at + 7, budget).value();
    } else {
      const header = /^(\d{1,10})\s+(\d{1,5})\s+obj\b/.exec(window(offset));
      if (header) trailer = new ObjectReader(bytes, offset + header[0].length, budget).value();
    }
    if (trailer?.kind !== 'dict') {
      notes.push(`the cross-reference offset ${offset} does not point at a cross-reference section`);
      return;
    }
    const prev = trailer.entries.get('Prev');
    if (!prev) return;
    if (prev.kind !== 'number') throw new PdfFormatError('/Prev is not a number');
    written = prev.text;
    offset = prev.value;
  }
}

/** CRLs and OCSP responses a PDF's document security store holds (ETSI EN 319 142-1 §5.4.2). */
export interface DocumentSecurityStore {
  crls: Buffer[];
  ocspResponses: Buffer[];
  /** What could not be read (an entry in an object stream, an unknown filter, a broken stream). */
  notes: string[];
}

/** At most this many DSS entries are read, each inflated to at most this many bytes. */
const MAX_DSS_ENTRIES = 32;
const MAX_DSS_ENTRY_BYTES = 4 * 1024 * 1024;

/** The body of the last `N G obj` in the file (a later revision's version wins), read as a value. */
function indirectObject(bytes: Buffer, ref: { objectNumber: number; generation: number }, budget: WorkBudget) {
  const header = Buffer.from(`${ref.objectNumber} ${ref.generation} obj`, 'latin1');
  let searchedFrom = bytes.length;
  for (let at = bytes.lastIndexOf(header); at >= 0; at = bytes.lastIndexOf(header, at - 1)) {
    budget.spend(searchedFrom - at);
    searchedFrom = at;
    if (at > 0 && (isDigit(bytes[at - 1]) || !isPdfWhitespace(bytes[at - 1]))) continue;
    const reader = new ObjectReader(bytes, at + header.length, budget);
    return { value: reader.value(), reader };
  }
  budget.spend(searchedFrom);
  throw new PdfFormatError(
    `object ${ref.objectNumber} ${ref.generation} is not in the file (perhaps in an object stream)`,
  );
}

function resolved(bytes: Buffer, value: PdfValue | undefined, budget: WorkBudget): PdfValue | undefined {
  return value?.kind === 'ref' ? indirectObject(bytes, value, budget).value : value;
}

/** The decoded bytes of the stream object `ref` (no filter or FlateDecode only). */
function streamBytes(bytes: Buffer, ref: PdfValue, budget: WorkBudget): Buffer {
  if (ref.kind !== 'ref') throw new PdfFormatError('a DSS entry is not an indirect stream');
  const { value, reader } = indirectObject(bytes, ref, budget);
  if (value.kind !== 'dict') throw new PdfFormatError('a DSS entry is not a stream');
  reader.skipWhitespace();
  if (bytes.toString('latin1', reader.position, reader.position + 6) !== 'stream') {
    throw new PdfFormatError('a DSS entry has no stream');
  }
  let start = reader.position + 6;
  if (bytes[start] === 0x0d) start++;
  if (bytes[start] === 0x0a) start++;
  const length = resolved(bytes, value.entries.get('Length'), budget);
  if (length?.kind !== 'number' || length.value < 0 || start + length.value > bytes.length) {
    throw new PdfFormatError('a DSS stream has no usable /Length');
  }
  const raw = bytes.subarray(start, start + length.value);
  const filter = resolved(bytes, value.entries.get('Filter'), budget);
  const filters = filter === undefined ? [] : filter.kind === 'array' ? filter.items : [filter];
  if (filters.length === 0) return raw;
  if (filters.length === 1 && filters[0]?.kind === 'name' && filters[0].value === 'FlateDecode') {
    return inflateSync(raw, { maxOutputLength: MAX_DSS_ENTRY_BYTES });
  }
  throw new PdfFormatError('a DSS stream has a filter other than FlateDecode');
}

/**
 * The document security store the file's last catalog names (the last `/DSS` key in the file), or undefined. Its
 * data is only ever revocation data for path validation, which checks every CRL and OCSP response itself (signer,
 * issuer, freshness): a /DSS an attacker appended or placed elsewhere can add nothing that would not verify anyway.
 * When the work budget runs out, what was read so far is kept and the rest noted as not read.
 */
export function readDocumentSecurityStore(
  bytes: Buffer,
  budget: WorkBudget = WorkBudget.forFile(bytes.length),
): DocumentSecurityStore | undefined {
  const key = Buffer.from('/DSS', 'latin1');
  let at = bytes.lastIndexOf(key);
  while (at >= 0 && !(isPdfWhitespace(bytes[at + 4]) || DELIMITERS.has(bytes[at + 4] as number))) {
    at = bytes.lastIndexOf(key, at - 1);
  }
  if (at < 0) return undefined;
  const store: DocumentSecurityStore = { crls: [], ocspResponses: [], notes: [] };
  let dss: PdfValue | undefined;
  try {
    dss = resolved(bytes, new ObjectReader(bytes, at + 4, budget).value(), budget);
  } catch (error) {
    store.notes.push(`the /DSS is not readable: ${(error as Error).message}`);
    return store;
  }
  if (dss?.kind !== 'dict') {
    store.notes.push('the /DSS is not a dictionary');
    return store;
  }
  let entries = 0;
  for (const [name, list] of [
    ['CRLs', store.crls],
    ['OCSPs', store.ocspResponses],
  ] as const) {
    let items: PdfValue | undefined;
    try {
      items = resolved(bytes, dss.entries.get(name), budget);
    } catch (error) {
      store.notes.push(`/DSS /${name}: ${(error as Error).message}`);
      if (error instanceof PdfWorkLimitError) return store;
      continue;
    }
    for (const item of items?.kind === 'array' ? items.items : []) {
      if (++entries > MAX_DSS_ENTRIES) {
        store.notes.push(`/DSS entries beyond ${MAX_DSS_ENTRIES} were not read`);
        return store;
      }
      try {
        list.push(streamBytes(bytes, item, budget));
      } catch (error) {
        store.notes.push(`/DSS /${name}: ${(error as Error).message}`);
        if (error instanceof PdfWorkLimitError) return store;
      }
    }
  }
  return store;
}

const OBJ = Buffer.from('obj');
const BYTE_RANGE = Buffer.from('/ByteRange');

function isPdfWhitespace(c: number | undefined): boolean {
  return c !== undefined && WHITESPACE.has(c);
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

/** `N G obj` ending at `objAt` (where `obj` starts): its numbers and start, or undefined. */
function objectHeaderBefore(
  bytes: Buffer,
  objAt: number,
): { objectNumber: number; generation: number; objectOffset: number } | undefined {
  let i = objAt - 1;
  const digitsBack = (): string | undefined => {
    const end = i + 1;
    while (i >= 0 && isDigit(bytes[i]) && end - i <= 10) i--;
    return end - (i + 1) > 0 ? bytes.toString('latin1', i + 1, end) : undefined;
  };
  if (!isPdfWhitespace(bytes[i])) return undefined;
  while (i >= 0 && isPdfWhitespace(bytes[i])) i--;
  const generation = digitsBack();
  if (generation === undefined || !isPdfWhitespace(bytes[i])) return undefined;
  while (i >= 0 && isPdfWhitespace(bytes[i])) i--;
  const objectNumber = digitsBack();
  if (objectNumber === undefined || isDigit(bytes[i])) return undefined;
  return { objectNumber: Number(objectNumber), generation: Number(generation), objectOffset: i + 1 };
}

/** Reads the structure; throws PdfFormatError for a file that is not a readable PDF. */
export function readPdfStructure(bytes: Buffer, limits: PdfLimits = DEFAULT_PDF_LIMITS): PdfStructure {
  if (bytes.length > limits.maxBytes) {
    throw new PdfFormatError(`the file has ${bytes.length} bytes, more than the limit of ${limits.maxBytes}`);
  }
  const headerAt = bytes.subarray(0, 1024).indexOf('%PDF-');
  if (headerAt < 0) throw new PdfFormatError('no %PDF- header in the first 1024 bytes');
  const revisions = revisionsOf(bytes);
  if (revisions.length === 0) throw new PdfFormatError('no %%EOF: the file is truncated');
  const budget = WorkBudget.forFile(bytes.length, limits.workPerByte);
  const structure: PdfStructure = {
    size: bytes.length,
    revisions,
    signatures: [],
    skippedSignatures: 0,
    work: 0,
    notes: [],
  };
  try {
    checkCrossReferenceChain(bytes, limits, structure.notes, budget);
    locateSignatureDictionaries(bytes, limits, budget, structure);
  } catch (error) {
    if (!(error instanceof PdfWorkLimitError)) throw error;
    // What was found so far is verified; what lies beyond may hold signatures that can never count as verified.
    structure.unexamined = `${error.message} (${WORK_ALLOWANCE} plus ${limits.workPerByte} per byte): the rest of the file was not examined`;
  }
  structure.work = budget.used;
  return structure;
}

/**
 * Each /ByteRange mention, and the object it sits in: the last `N G obj` before it with no `endobj` between. The
 * object headers are passed once, front to back, and each object is read at most once (also when it holds no
 * signature dictionary), so the work is linear in the file's size, within the budget.
 */
function locateSignatureDictionaries(bytes: Buffer, limits: PdfLimits, budget: WorkBudget, structure: PdfStructure) {
  const { signatures } = structure;
  const read = new Set<number>();
  const add = (dictionary: PdfSignatureDictionary) => {
    // Unreadable dictionaries count too: a file must not report thousands of them.
    if (signatures.length >= limits.maxSignatures) structure.skippedSignatures++;
    else signatures.push(dictionary);
  };
  let objectsPassed = 0;
  let nextObj = bytes.indexOf(OBJ);
  let current: { objectNumber: number; generation: number; objectOffset: number; bodyAt: number } | undefined;
  for (let at = bytes.indexOf(BYTE_RANGE); at >= 0; at = bytes.indexOf(BYTE_RANGE, at + BYTE_RANGE.length)) {
    for (; nextObj >= 0 && nextObj < at; nextObj = bytes.indexOf(OBJ, nextObj + 3)) {
      const isEnd = nextObj >= 3 && bytes.toString('latin1', nextObj - 3, nextObj) === 'end';
      if (isEnd) {
        current = undefined;
        continue;
      }
      const header = objectHeaderBefore(bytes, nextObj);
      if (!header) continue;
      if (++objectsPassed > limits.maxObjects) throw new PdfFormatError(`more than ${limits.maxObjects} objects`);
      current = { ...header, bodyAt: nextObj + 3 };
    }
    if (!current || read.has(current.objectOffset)) continue;
    const { bodyAt, ...object } = current;
    read.add(object.objectOffset);
    let value: PdfValue;
    try {
      value = new ObjectReader(bytes, bodyAt, budget).value();
    } catch (error) {
      if (error instanceof PdfWorkLimitError) throw error;
      // A signature dictionary we cannot read is a signature that fails, not a file we refuse.
      add({ ...object, problem: `the object is not readable: ${(error as Error).message}` });
      continue;
    }
    const found: Array<Map<string, PdfValue>> = [];
    signatureDictionaries(value, found);
    for (const entries of found) add(dictionaryOf(entries, object));
  }
}
