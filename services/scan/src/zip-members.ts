// Zip members that clamd skipped without a word. clamd does not scan a zip member larger than its MaxFileSize and,
// unlike a .gz over it, answers OK even with AlertExceedsMax (ClamAV issue 633): 60 MiB of zeros and then malware
// make a zip of 61 KB that passes. So every zip in a message (by its bytes, not its name or type: a .docx is one too)
// is read here (yauzl, its central directory, as mail clients and unzip tools read it) and each member inflated as a
// stream, its bytes counted and thrown away, until it ends or passes clamd's MaxFileSize; a member that is itself a
// zip is read the same way, to clamd's MaxRecursion. Declared sizes decide nothing on their own (a member that
// declares more than the limit is one, one that declares less is counted). What clamd has scanned is not scanned
// again: only what it skipped is a finding. Memory: the message and one nested zip per level (at most MaxFileSize
// each); the inflated bytes of one message are bounded by clamd's MaxScanSize, and that is a finding too.
import { mayCarryZip } from '@smgw/clamd';
import { multipartParts } from '@smgw/crypto';
import { bareLfToCrlf, type HeaderBudget, HeaderBudgetError, headerBudget, MAX_WALK_HEADER_LINES } from '@smgw/mime';
import { childPath, decodedBody, type Entity, entityOf } from '@smgw/signature-verify';
import yauzl from 'yauzl';

/**
 * The limits zip members are counted against: those of a clamd whose MaxFileSize is the stream limit (clamd's
 * defaults have it below MaxScanSize; the shipped configuration has MaxFileSize = MaxScanSize, and skips nothing).
 */
export interface ArchiveLimits {
  /** clamd's MaxFileSize: a member inflating beyond it was not scanned. */
  maxFileSize: number;
  /** clamd's MaxScanSize: the bytes inflated here for one message, in all (a nested zip counts twice at most). */
  maxScanSize: number;
  /** clamd's MaxRecursion: zips inside zips deeper than this are not opened. */
  maxRecursion: number;
  /**
   * clamd's MaxFiles: MIME entities walked and zip members read per message, in all. clamd counts the parts of a
   * message it unpacks as files too; here each costs a few µs (a part) to tens of µs (a zip opened), so a stranger's
   * 31 MB of a million tiny parts is refused at the budget instead of taking 7–19 s of this stage's CPU.
   */
  maxFiles: number;
  /**
   * Header lines read in all (every MIME entity's); no block over 1 MiB. Parsing costs about 0.3 µs a line: a
   * stranger's 31 MB of header lines in one part took 2–3 s of this stage's CPU.
   */
  maxHeaderLines: number;
}

/** The limits for a stream limit of `maxFileSize`: members against it, MaxScanSize four times that. */
export function archiveLimitsFor(maxFileSize: number): ArchiveLimits {
  return {
    maxFileSize,
    maxScanSize: 4 * maxFileSize,
    maxRecursion: 16,
    maxFiles: 10_000,
    maxHeaderLines: MAX_WALK_HEADER_LINES,
  };
}

export const ARCHIVE_FINDINGS = {
  member: 'Smgw.Limits.Exceeded.ArchiveMember',
  scanSize: 'Smgw.Limits.Exceeded.Archive.MaxScanSize',
  recursion: 'Smgw.Limits.Exceeded.Archive.MaxRecursion',
  files: 'Smgw.Limits.Exceeded.Archive.MaxFiles',
  header: 'Smgw.Limits.Exceeded.Archive.MaxHeader',
  broken: 'Smgw.Broken.Archive',
} as const;

export interface ArchiveFinding {
  signature: string;
  /** Where: the MIME path, the zip's entries by number (never their names: they are content), and why. */
  where: string;
}

/** MIME levels walked for zips, as signedContentsOf walks them for SignedData. */
const MAX_MIME_DEPTH = 12;

const LOCAL_HEADER = 0x04034b50;
/** What a split archive's first part starts with, before its first local header. */
const SPANNING_MARKER = 0x08074b50;
const END_RECORD = 0x06054b50;
const END_RECORD_LENGTH = 22;
const END_SIGNATURE = Buffer.from('PK\x05\x06', 'latin1');
/** The last bytes of an entry kept to find an end record there: the record and the longest comment. */
const TAIL_LENGTH = END_RECORD_LENGTH + 0xffff;

/** Ends the walk at the first finding; never leaves this module. */
class Found extends Error {
  readonly finding: ArchiveFinding;
  constructor(finding: ArchiveFinding) {
    super(finding.where);
    this.finding = finding;
  }
}

interface State {
  limits: ArchiveLimits;
  inflated: number;
  /** MIME entities walked and zip members read so far: against maxFiles. */
  files: number;
  /** Header lines left to read: against maxHeaderLines. */
  headers: HeaderBudget;
}

export interface ArchiveSource {
  bytes: Buffer;
  /** MIME path of `bytes` (the message: `/`). */
  path: string;
  /** A MIME entity (the message, or one taken out of SignedData); else a document. */
  mime: boolean;
}

/**
 * The first zip member in `sources` that clamd did not scan (over its limits), or a zip that cannot be read; else
 * undefined. The sources share one budget of inflated bytes.
 */
export async function archiveFindingOf(
  sources: readonly ArchiveSource[],
  limits: ArchiveLimits,
): Promise<ArchiveFinding | undefined> {
  const state: State = { limits, inflated: 0, files: 0, headers: headerBudget(limits.maxHeaderLines) };
  try {
    for (const source of sources) {
      if (source.mime) await walkEntity(entityWithin(bareLfToCrlf(source.bytes), source.path, state), 0, state);
      else await checkLeaf(source.bytes, source.path, state);
    }
    return undefined;
  } catch (error) {
    if (error instanceof Found) return error.finding;
    throw error;
  }
}

async function walkEntity(entity: Entity, depth: number, state: State): Promise<void> {
  countFile(state, entity.path);
  const mediaType = entity.type.mediaType;
  if (depth > MAX_MIME_DEPTH) {
    if (mayCarryZip([entity.body])) {
      throw found(ARCHIVE_FINDINGS.recursion, `${entity.path}: nested deeper than ${MAX_MIME_DEPTH} MIME levels`);
    }
    return;
  }
  if (mediaType.startsWith('multipart/')) {
    let parts: Buffer[];
    try {
      // Split no further than the budget: one part beyond it is enough to know (its walk ends in the finding).
      parts = multipartParts(entity.body, entity.type.parameters.boundary ?? '', filesLeft(state));
    } catch (error) {
      // clamd and mail clients may still find the parts of a multipart we cannot split.
      if (mayCarryZip([entity.body])) {
        throw found(ARCHIVE_FINDINGS.broken, `${entity.path}: multipart not readable: ${(error as Error).message}`);
      }
      return;
    }
    for (const [index, part] of parts.entries()) {
      await walkEntity(entityWithin(part, childPath(entity.path, index + 1), state), depth + 1, state);
    }
    return;
  }
  if (mediaType === 'message/rfc822' || mediaType === 'message/global') {
    await walkEntity(
      entityWithin(bareLfToCrlf(decodedBody(entity)), childPath(entity.path, 'message'), state),
      depth + 1,
      state,
    );
    return;
  }
  await checkLeaf(decodedBody(entity), entity.path, state);
}

/** A part's decoded bytes: read as a zip when they are one. */
async function checkLeaf(bytes: Buffer, path: string, state: State): Promise<void> {
  const zip = zipWithin(bytes);
  if (zip) await checkZip(zip, `zip at ${path}`, 1, state);
}

/**
 * The zip in `bytes`, or undefined: bytes that start with a local header (or a split
 * archive's marker), or that end with an end record (a comment of exactly the length left), as a self-extracting or
 * prefixed zip does; unzip tools skip what stands before its directory, and so does this (returned without it).
 */
function zipWithin(bytes: Buffer): Buffer | undefined {
  if (startsLikeZip(bytes)) return bytes;
  const tail = bytes.subarray(-TAIL_LENGTH);
  for (let i = tail.lastIndexOf(END_SIGNATURE); i >= 0; i = i > 0 ? tail.lastIndexOf(END_SIGNATURE, i - 1) : -1) {
    if (i + END_RECORD_LENGTH > tail.length || tail.readUInt16LE(i + 20) !== tail.length - i - END_RECORD_LENGTH) {
      continue;
    }
    // Where the directory really starts, against where the record says: the difference is what was put before.
    const recordAt = bytes.length - (tail.length - i);
    const prefix = recordAt - tail.readUInt32LE(i + 12) - tail.readUInt32LE(i + 16);
    return prefix > 0 && prefix < bytes.length ? bytes.subarray(prefix) : bytes;
  }
  return undefined;
}

/**
 * The entity at `path`, its header block read within the walk's budget of header lines (and no block over 1 MiB).
 * Beyond it the walk ends in a finding of category `limits`, as for MaxFiles: what lies beyond is not looked at.
 */
function entityWithin(bytes: Buffer, path: string, state: State): Entity {
  try {
    return entityOf(bytes, path, state.headers);
  } catch (error) {
    if (error instanceof HeaderBudgetError) throw found(ARCHIVE_FINDINGS.header, `${path}: ${error.message}`);
    throw error;
  }
}

/**
 * One more MIME entity or zip member; beyond clamd's MaxFiles the walk ends in a finding (as clamd's own
 * Heuristics.Limits.Exceeded.MaxFiles: category `limits`, quarantined unless a policy lets limits pass): what lies
 * beyond is not looked at, so it cannot be called clean.
 */
function countFile(state: State, where: string): void {
  if (++state.files > state.limits.maxFiles) {
    throw found(ARCHIVE_FINDINGS.files, `${where}: more than ${state.limits.maxFiles} MIME parts and zip members`);
  }
}

function filesLeft(state: State): number {
  return Math.max(0, state.limits.maxFiles - state.files);
}

function found(signature: string, where: string): Found {
  return new Found({ signature, where });
}

async function checkZip(zip: Buffer, where: string, depth: number, state: State): Promise<void> {
  if (depth > state.limits.maxRecursion) {
    throw found(ARCHIVE_FINDINGS.recursion, `${where}: zips nested deeper than ${state.limits.maxRecursion}`);
  }
  let file: yauzl.ZipFile;
  try {
    file = await openZip(zip);
  } catch (error) {
    throw found(ARCHIVE_FINDINGS.broken, `${where}: not readable: ${(error as Error).message}`);
  }
  try {
    let number = 0;
    for (;;) {
      let entry: yauzl.Entry | undefined;
      try {
        entry = await nextEntry(file);
      } catch (error) {
        throw found(ARCHIVE_FINDINGS.broken, `${where}: not readable: ${(error as Error).message}`);
      }
      if (!entry) return;
      number++;
      await checkEntry(file, entry, `${where}, entry ${number}`, depth, state);
    }
  } finally {
    file.close();
  }
}

async function checkEntry(file: yauzl.ZipFile, entry: yauzl.Entry, where: string, depth: number, state: State) {
  const { limits } = state;
  countFile(state, where);
  // Encrypted: clamd says so (AlertEncryptedArchive, Heuristics.Encrypted.Zip); nothing here can read it either.
  if (entry.isEncrypted()) return;
  if (entry.uncompressedSize > limits.maxFileSize) {
    throw found(ARCHIVE_FINDINGS.member, `${where}: declares more than ${limits.maxFileSize} bytes`);
  }
  if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
    // Deflate64, bzip2, LZMA … : clamd reads some of them, this cannot count what they hold.
    throw found(ARCHIVE_FINDINGS.broken, `${where}: compression method ${entry.compressionMethod} not read here`);
  }
  const first = await inflateEntry(file, entry, where, state, 'look');
  let inner = first.whole;
  // An entry that ends like a zip without starting like one: inflated again, whole this time, to be read.
  if (!inner && first.endsLikeZip) inner = (await inflateEntry(file, entry, where, state, 'keep')).whole;
  const zip = inner && zipWithin(inner);
  if (zip) await checkZip(zip, where, depth + 1, state);
}

interface Inflated {
  /** The whole entry, when it starts like a zip or was asked for ('keep'); at most MaxFileSize. */
  whole?: Buffer;
  /** Its last bytes hold a zip's end record. */
  endsLikeZip: boolean;
}

/**
 * Inflates one entry as a stream, counting: past MaxFileSize (this entry) or MaxScanSize (the message) it stops and
 * that is the finding. Keeps the entry only when it starts like a zip, or when told to; else just its tail.
 */
function inflateEntry(
  file: yauzl.ZipFile,
  entry: yauzl.Entry,
  where: string,
  state: State,
  mode: 'look' | 'keep',
): Promise<Inflated> {
  const { limits } = state;
  return new Promise((resolve, reject) => {
    file.openReadStream(entry, (error, stream) => {
      if (error || !stream) {
        reject(found(ARCHIVE_FINDINGS.broken, `${where}: not readable: ${error?.message ?? 'no stream'}`));
        return;
      }
      let size = 0;
      let kept: Buffer[] | undefined = mode === 'keep' ? [] : undefined;
      const tail: Buffer[] = [];
      let tailBytes = 0;
      let settled = false;
      const stop = (failure: Found) => {
        if (settled) return;
        settled = true;
        stream.destroy();
        reject(failure);
      };
      stream.on('data', (chunk: Buffer) => {
        if (settled) return;
        if (size === 0 && mode === 'look' && startsLikeZip(chunk)) kept = [];
        size += chunk.length;
        state.inflated += chunk.length;
        if (size > limits.maxFileSize) {
          stop(found(ARCHIVE_FINDINGS.member, `${where}: more than ${limits.maxFileSize} bytes inflated`));
          return;
        }
        if (state.inflated > limits.maxScanSize) {
          stop(found(ARCHIVE_FINDINGS.scanSize, `${where}: more than ${limits.maxScanSize} bytes inflated in all`));
          return;
        }
        if (kept) kept.push(chunk);
        else {
          tail.push(chunk);
          tailBytes += chunk.length;
          while (tail.length > 1 && tailBytes - (tail[0] as Buffer).length >= TAIL_LENGTH) {
            tailBytes -= (tail.shift() as Buffer).length;
          }
        }
      });
      stream.on('error', (failure: Error) =>
        stop(found(ARCHIVE_FINDINGS.broken, `${where}: not readable: ${failure.message}`)),
      );
      stream.on('end', () => {
        if (settled) return;
        settled = true;
        if (kept) resolve({ whole: Buffer.concat(kept), endsLikeZip: false });
        else resolve({ endsLikeZip: zipWithin(Buffer.concat(tail)) !== undefined });
      });
    });
  });
}

function startsLikeZip(chunk: Buffer): boolean {
  if (chunk.length < 4) return false;
  const start = chunk.readUInt32LE(0);
  return start === LOCAL_HEADER || start === SPANNING_MARKER || start === END_RECORD;
}

function openZip(zip: Buffer): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    // Names undecoded and unchecked (a name yauzl dislikes must not end the walk before the member after it), sizes
    // counted here instead of asserted.
    yauzl.fromBuffer(
      zip,
      { lazyEntries: true, decodeStrings: false, validateEntrySizes: false, strictFileNames: false },
      (error, file) => (error || !file ? reject(error ?? new Error('no zip')) : resolve(file)),
    );
  });
}

function nextEntry(file: yauzl.ZipFile): Promise<yauzl.Entry | undefined> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      file.off('entry', onEntry);
      file.off('end', onEnd);
      file.off('error', onError);
    };
    const onEntry = (entry: yauzl.Entry) => {
      cleanup();
      resolve(entry);
    };
    const onEnd = () => {
      cleanup();
      resolve(undefined);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    file.on('entry', onEntry);
    file.on('end', onEnd);
    file.on('error', onError);
    file.readEntry();
  });
}
