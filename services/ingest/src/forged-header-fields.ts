// Header fields only the gateway may write: every `X-SMGW-*` field (the signature summary, decryption status, …) and
// every `Authentication-Results` field in our name (its authserv-id is SMGW_HOSTNAME; RFC 8601 §5 asks a receiver to
// remove such fields it did not add). A sender who writes them would speak for the gateway to the agency's mail
// client, so ingest removes them from every incoming message, whatever its route, before anything else reads it:
// while the header block is checked (submission-header.ts), which holds the whole block, so no field is too long to
// be judged.

/** Is this unfolded field (`Name: value`) one that only the gateway may write? */
export function isGatewayField(field: string, hostname: string): boolean {
  const colon = field.indexOf(':');
  if (colon <= 0) return false;
  const name = field.slice(0, colon).trim().toLowerCase();
  if (name.startsWith('x-smgw-')) return true;
  if (name !== 'authentication-results') return false;
  const authservId = firstValue(field.slice(colon + 1));
  return (
    authservId !== undefined &&
    authservId.toLowerCase().replace(/\.$/, '') === hostname.toLowerCase().replace(/\.$/, '')
  );
}

/**
 * The authserv-id: the first value of the field (RFC 8601 §2.2: a token or a quoted string, RFC 2045), after any
 * comments, which may nest. A quoted-pair (`\x`) stands for its character in a quoted string and in a comment alike,
 * as any reader that parses the field takes it: `"smgw\.example"` is smgw.example, and `(a \( b) smgw.example` is a
 * comment and then smgw.example. Undefined when there is no value.
 */
function firstValue(text: string): string | undefined {
  let at = 0;
  // Comments and white space before the value.
  for (let depth = 0; at < text.length; at++) {
    const ch = text[at];
    if (ch === '\\' && depth > 0) at++;
    else if (ch === '(') depth++;
    else if (ch === ')' && depth > 0) depth--;
    else if (depth === 0 && !/\s/.test(ch as string)) break;
  }
  if (text[at] !== '"') return /^[^\s;()"]+/.exec(text.slice(at))?.[0];
  let value = '';
  for (at++; at < text.length; at++) {
    const ch = text[at] as string;
    if (ch === '"') return value;
    if (ch === '\\') at++;
    value += text[at] ?? '';
  }
  // A quoted string without its end: judged by what it holds (removing a stranger's broken field costs nothing).
  return value;
}
