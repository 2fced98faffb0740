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

const SESSION_REPLY = /^(\d{1,10}): ([\s\S]*)$/;

/**
 * The reply of request `id` in an IDSESSION, without its `<id>: ` prefix. A reply without the prefix or for another
 * request is CLAMD_BAD_REPLY: we keep one command outstanding per session, so any other number means the
 * connection is out of step.
 */
export function unprefixSessionReply(reply: string, id: number): string {
  const match = SESSION_REPLY.exec(reply);
  if (!match?.[1] || match[2] === undefined) {
    throw new ClamdError('CLAMD_BAD_REPLY', `clamd session reply without a request number: ${printable(reply)}`, {
      reply,
    });
  }
  if (Number(match[1]) !== id) {
    throw new ClamdError('CLAMD_BAD_REPLY', `clamd answered request ${match[1]}, expected ${id}: ${printable(reply)}`, {
      reply,
    });
  }
  return match[2];
}

/** A reply made safe for a log line: bounded, control characters escaped. */
export function printable(text: string, max = 200): string {
  const shown = JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
  return shown.slice(1, -1);
}
