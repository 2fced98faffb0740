// clamd's INSTREAM reply, parsed strictly: only an exact "stream: OK" is clean (LIBRARY-NOTES.md §3).
import { ClamdError } from './errors.ts';

export type ScanVerdict = { kind: 'clean' } | { kind: 'infected'; signature: string };

const FOUND = /^stream: (\S(?:.*\S)?) FOUND$/;
/** ExtendedDetectionInfo appends "(<hash>:<size>)" to the name; the name alone is what policy matches on. */
const EXTENDED_INFO = /\([0-9a-f]{32,64}:\d+\)$/;

/** Parses one reply (NUL already stripped). Throws ClamdError for anything that is not OK or FOUND. */
export function parseScanReply(reply: string): ScanVerdict {
  if (reply === 'stream: OK') return { kind: 'clean' };
  const found = FOUND.exec(reply);
  if (found?.[1]) {
    const signature = found[1].replace(EXTENDED_INFO, '');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: a signature name is printable text; anything else is garbage
    if (signature.length > 0 && !/[\x00-\x1f\x7f]/.test(signature)) return { kind: 'infected', signature };
  }
  if (/size limit exceeded/i.test(reply)) {
    throw new ClamdError('CLAMD_LIMIT_EXCEEDED', `clamd refused the stream: ${printable(reply)}`, { reply });
  }
  if (/ ERROR$/.test(reply)) {
    throw new ClamdError('CLAMD_SCAN_FAILED', `clamd could not scan: ${printable(reply)}`, { reply });
  }
  throw new ClamdError('CLAMD_BAD_REPLY', `unexpected reply from clamd: ${printable(reply)}`, { reply });
}

/** A reply made safe for a log line: bounded, control characters escaped. */
export function printable(text: string, max = 200): string {
  const shown = JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
  return shown.slice(1, -1);
}
