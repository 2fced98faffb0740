// Header fields only the gateway may write: every `X-SMGW-*` field (the signature summary, decryption status, …) and
// every `Authentication-Results` field in our name (its authserv-id is SMGW_HOSTNAME; RFC 8601 §5 asks a receiver to
// remove such fields it did not add). A sender who writes them would speak for the gateway to the agency's mail
// client, so ingest removes them from every incoming message, whatever its route, before anything else reads it.
// Streaming and line-based: only the current field is held, the body passes untouched.

const LF = 0x0a;

/** Fields up to this long are held and read whole; a longer one is judged by its name (isGatewayFieldName). */
const MAX_FIELD_BYTES = 64 * 1024;

/** Is this unfolded field (`Name: value`) one that only the gateway may write? */
export function isGatewayField(field: string, hostname: string): boolean {
  const colon = field.indexOf(':');
  if (colon <= 0) return false;
  const name = field.slice(0, colon).trim().toLowerCase();
  if (name.startsWith('x-smgw-')) return true;
  if (name !== 'authentication-results') return false;
  // authserv-id is the first token of the value, possibly after comments (RFC 8601 §2.2).
  const value = field
    .slice(colon + 1)
    .replace(/\([^()]*\)/g, ' ')
    .trim();
  const authservId = /^([^\s;]+)/.exec(value)?.[1] ?? '';
  return authservId.toLowerCase().replace(/\.$/, '') === hostname.toLowerCase().replace(/\.$/, '');
}

/**
 * Is a field too long to hold one that only the gateway may write? Decided by its name alone (the start of its first
 * line): any over-long Authentication-Results goes too, whatever its authserv-id (RFC 8601 §5 lets a receiver remove
 * such fields), for padding must not carry a forgery past the filter.
 */
function isGatewayFieldName(start: string): boolean {
  const colon = start.indexOf(':');
  const name = (colon < 0 ? start : start.slice(0, colon)).trim().toLowerCase();
  return name.startsWith('x-smgw-') || name === 'authentication-results';
}

/**
 * The message with the gateway's fields removed from its header block. `removed` is told each removed field's name
 * (never its value: that is the sender's content).
 */
export async function* withoutGatewayFields(
  source: AsyncIterable<Uint8Array>,
  hostname: string,
  removed: (name: string) => void = () => {},
): AsyncGenerator<Uint8Array> {
  let inHeader = true;
  let carry = Buffer.alloc(0);
  /** The current field's lines (first line and continuations), each with its line end; at most MAX_FIELD_BYTES. */
  let field: Buffer[] = [];
  let fieldBytes = 0;
  /** For a field longer than MAX_FIELD_BYTES: whether the rest of it is dropped or passed on as it comes. */
  let overlong: 'drop' | 'pass' | undefined;
  /** The start of the current line was handled (it was too long to hold): its rest goes the same way. */
  let midLine = false;

  const flushField = function* (): Generator<Uint8Array> {
    overlong = undefined;
    if (field.length === 0) return;
    const whole = Buffer.concat(field);
    field = [];
    fieldBytes = 0;
    const unfolded = whole.toString('latin1').replace(/\r?\n(?=[ \t])/g, '');
    if (isGatewayField(unfolded, hostname)) {
      removed(unfolded.slice(0, unfolded.indexOf(':')).trim());
      return;
    }
    yield whole;
  };

  /** The held part of a field that grew too long: its name decides what happens to all of it. */
  const decideOverlong = function* (): Generator<Uint8Array> {
    const start = Buffer.concat(field);
    field = [];
    fieldBytes = 0;
    const text = start.toString('latin1');
    overlong = isGatewayFieldName(text) ? 'drop' : 'pass';
    if (overlong === 'drop') removed(text.slice(0, Math.max(0, text.indexOf(':'))).trim() || text.slice(0, 64));
    else yield start;
  };

  /** One line of the header block (`whole`: with its line end; else the start of a line too long to hold). */
  const headerLine = function* (line: Buffer, whole: boolean): Generator<Uint8Array> {
    const continuation = line[0] === 0x20 || line[0] === 0x09;
    if (continuation && overlong) {
      if (overlong === 'pass') yield line;
      return;
    }
    if (continuation && field.length > 0) {
      field.push(line);
      fieldBytes += line.length;
      if (fieldBytes > MAX_FIELD_BYTES || !whole) yield* decideOverlong();
      return;
    }
    yield* flushField();
    if (line.at(-1) === LF && (line.length === 1 || (line.length === 2 && line[0] === 0x0d))) {
      inHeader = false;
      yield line;
      return;
    }
    field = [line];
    fieldBytes = line.length;
    if (fieldBytes > MAX_FIELD_BYTES || !whole) yield* decideOverlong();
  };

  for await (const chunk of source) {
    if (!inHeader) {
      yield chunk;
      continue;
    }
    let data = carry.length ? Buffer.concat([carry, Buffer.from(chunk)]) : Buffer.from(chunk);
    carry = Buffer.alloc(0);
    while (inHeader && data.length > 0) {
      const lf = data.indexOf(LF);
      if (midLine) {
        const piece = lf === -1 ? data : data.subarray(0, lf + 1);
        if (overlong === 'pass') yield piece;
        data = data.subarray(piece.length);
        midLine = lf === -1;
        continue;
      }
      if (lf === -1) {
        // No line end yet: a line too long to hold is decided by its start, and its rest follows.
        if (data.length > MAX_FIELD_BYTES) {
          yield* headerLine(data, false);
          midLine = true;
          data = Buffer.alloc(0);
        }
        break;
      }
      const line = data.subarray(0, lf + 1);
      data = data.subarray(lf + 1);
      yield* headerLine(line, true);
    }
    if (inHeader) carry = data;
    else if (data.length > 0) yield data;
  }
  // A message that is all header (no blank line): its last field may lack a line end.
  if (inHeader) {
    if (carry.length > 0) yield* headerLine(carry, true);
    yield* flushField();
  }
}
