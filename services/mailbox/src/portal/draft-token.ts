// The gateway id a message gets is chosen when the form is shown, not when it is sent: the form carries it as a
// draft token, so sending the same form again (a double click, a reload after a crash or a lost answer) names the same
// message, which submitPortalMessage then sends at most once. The token binds the id to the mailbox with an HMAC
// under a key derived from SMGW_MASTER_KEY: a user can neither pick an id of their own nor use another's.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isMessageId, newMessageId } from '@smgw/envelope';
// A draft older than this is refused (the form is shown again with a new one). It lives in @smgw/mailbox-store:
// after it (and a margin) the reaper gives back the quota a draft's unsent Sent copy had reserved.
import { DRAFT_MAX_AGE_MS } from '@smgw/mailbox-store';
import { keyFromMasterKey } from '@smgw/secrets';

export { DRAFT_MAX_AGE_MS };

/** The key for draft tokens, derived from the master key (never the master key itself). */
export function draftTokenKey(masterKey: Uint8Array): Buffer {
  return keyFromMasterKey(masterKey, 'smgw-portal-draft-token');
}

function mac(key: Uint8Array, mailboxId: string, id: string, issued: string): Buffer {
  return createHmac('sha256', key).update(`${mailboxId}\0${id}\0${issued}`).digest();
}

/**
 * A new draft: `<message id>.<issued, ms in base 36>.<mac>`. The time is its own field (a ULID's time may run ahead
 * of the clock given: ids made in one millisecond count on from the last one).
 */
export function newDraftToken(key: Uint8Array, mailboxId: string, now: Date = new Date()): string {
  const id = newMessageId(now.getTime());
  const issued = now.getTime().toString(36);
  return `${id}.${issued}.${mac(key, mailboxId, id, issued).toString('base64url')}`;
}

/** The message id of a draft token this mailbox was given, or undefined (forged, another's, expired, malformed). */
export function openDraftToken(
  key: Uint8Array,
  mailboxId: string,
  token: unknown,
  now: Date = new Date(),
): string | undefined {
  if (typeof token !== 'string' || token.length > 120) return undefined;
  const [id, issued, given, ...rest] = token.split('.');
  if (rest.length > 0 || !isMessageId(id) || issued === undefined || given === undefined) return undefined;
  if (!/^[0-9a-z]{1,12}$/.test(issued)) return undefined;
  const expected = mac(key, mailboxId, id, issued);
  const actual = Buffer.from(given, 'base64url');
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return undefined;
  const age = now.getTime() - Number.parseInt(issued, 36);
  if (age > DRAFT_MAX_AGE_MS || age < -60_000) return undefined;
  return id;
}
