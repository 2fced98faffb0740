// The gateway id a message gets is chosen when the form is shown, not when it is sent: the form carries it as a
// draft token, so sending the same form again (a double click, a reload after a crash or a lost answer) names the same
// message, which submitPortalMessage then sends at most once. The token binds the id to the mailbox with an HMAC
// under a key derived from SMGW_MASTER_KEY: a user can neither pick an id of their own nor use another's.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { isMessageId, newMessageId } from '@smgw/envelope';

/** A draft older than this is refused (the form is shown again with a new one). */
export const DRAFT_MAX_AGE_MS = 2 * 24 * 60 * 60 * 1000;

/** The key for draft tokens, derived from the master key (never the master key itself). */
export function draftTokenKey(masterKey: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'smgw-portal-draft-token', 32));
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** The time a ULID was made (its first 10 characters, milliseconds since 1970). */
function idTime(id: string): number {
  let ms = 0;
  for (const char of id.slice(0, 10)) ms = ms * 32 + CROCKFORD.indexOf(char);
  return ms;
}

function mac(key: Uint8Array, mailboxId: string, id: string): Buffer {
  return createHmac('sha256', key).update(`${mailboxId}\0${id}`).digest();
}

/** A new draft: `<message id>.<mac>`. */
export function newDraftToken(key: Uint8Array, mailboxId: string, now: Date = new Date()): string {
  const id = newMessageId(now.getTime());
  return `${id}.${mac(key, mailboxId, id).toString('base64url')}`;
}

/** The message id of a draft token this mailbox was given, or undefined (forged, another's, expired, malformed). */
export function openDraftToken(
  key: Uint8Array,
  mailboxId: string,
  token: unknown,
  now: Date = new Date(),
): string | undefined {
  if (typeof token !== 'string' || token.length > 100) return undefined;
  const [id, given, ...rest] = token.split('.');
  if (rest.length > 0 || !isMessageId(id) || given === undefined) return undefined;
  const expected = mac(key, mailboxId, id);
  const actual = Buffer.from(given, 'base64url');
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return undefined;
  const age = now.getTime() - idTime(id);
  if (age > DRAFT_MAX_AGE_MS || age < -60_000) return undefined;
  return id;
}
