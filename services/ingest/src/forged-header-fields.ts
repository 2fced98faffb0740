// Header fields only the gateway may write: every `X-SMGW-*` field (the signature summary, decryption status, …) and
// every `Authentication-Results` field in our name (its authserv-id is SMGW_HOSTNAME; RFC 8601 §5 asks a receiver to
// remove such fields it did not add). A sender who writes them would speak for the gateway to the agency's mail
// client, so ingest removes them from every incoming message, whatever its route, before anything else reads it.
// Streaming and line-based: only the current field is held, the body passes untouched.

const LF = 0x0a;

/** One field is at most this long; a longer one is kept as it is (it can be nothing we write). */
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
  /** The current field's lines (first line and continuations), each with its line end. */
  let field: Buffer[] = [];
  let fieldBytes = 0;

  const flushField = function* (): Generator<Uint8Array> {
    if (field.length === 0) return;
    const whole = Buffer.concat(field);
    field = [];
    fieldBytes = 0;
    const unfolded = whole.toString('latin1').replace(/\r?\n(?=[ \t])/g, '');
    if (whole.length <= MAX_FIELD_BYTES && isGatewayField(unfolded, hostname)) {
      removed(unfolded.slice(0, unfolded.indexOf(':')).trim());
      return;
    }
    yield whole;
  };

  for await (const chunk of source) {
    if (!inHeader) {
      yield chunk;
      continue;
    }
    let data = carry.length ? Buffer.concat([carry, Buffer.from(chunk)]) : Buffer.from(chunk);
    carry = Buffer.alloc(0);
    while (inHeader) {
      const lf = data.indexOf(LF);
      if (lf === -1) {
        // No line end yet: an over-long line is passed on as it is (never a field we write).
        if (data.length > MAX_FIELD_BYTES) {
          yield* flushField();
          yield data;
          data = Buffer.alloc(0);
        }
        carry = data;
        break;
      }
      const line = data.subarray(0, lf + 1);
      data = data.subarray(lf + 1);
      const blank = line.length === 1 || (line.length === 2 && line[0] === 0x0d);
      const continuation = line[0] === 0x20 || line[0] === 0x09;
      if (continuation && field.length > 0) {
        field.push(line);
        fieldBytes += line.length;
        if (fieldBytes > MAX_FIELD_BYTES) yield* flushField();
        continue;
      }
      yield* flushField();
      if (blank) {
        inHeader = false;
        yield line;
        break;
      }
      field = [line];
      fieldBytes = line.length;
    }
    if (!inHeader && data.length > 0) yield data;
  }
  // A message that is all header (no blank line): its last field may lack a line end.
  if (inHeader) {
    if (carry.length > 0 && (carry[0] === 0x20 || carry[0] === 0x09) && field.length > 0) field.push(carry);
    else if (carry.length > 0) {
      yield* flushField();
      field = [carry];
    }
    yield* flushField();
  }
}
