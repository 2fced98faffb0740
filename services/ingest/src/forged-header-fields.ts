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
  // authserv-id is the first value (a token or a quoted string, RFC 8601 §2.2 and RFC 2045), possibly after
  // comments, which may nest.
  let value = field.slice(colon + 1);
  for (let before = ''; before !== value; ) {
    before = value;
    value = value.replace(/\([^()]*\)/g, ' ');
  }
  const authservId = (/^([^\s;]+)/.exec(value.trim())?.[1] ?? '').replace(/^"(.*)"$/, '$1');
  return authservId.toLowerCase().replace(/\.$/, '') === hostname.toLowerCase().replace(/\.$/, '');
}
