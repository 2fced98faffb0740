// Lock-outs and rate limits of the portal's forms, in Redis (shared by every replica). A rule counts events per key
// in a fixed window that starts with the first event; past `max` the key is blocked until the window ends. Keys are
// HMACs of what they name (an address, a client) under a key derived from SMGW_MASTER_KEY (limitKeySecretFrom), so
// Redis holds no addresses, and a guessed address cannot be tested against it (a plain hash could be, by anyone
// reading Redis). A new master key starts the windows afresh.
//
// A guarded action takes its slot first (hit, refused when exceeded) and only then does the work: checking first and
// counting after the work would let a parallel burst all pass the check. An action that turns out not to count (a
// right password, a message not sent) gives its own slot back; nothing erases the slots of other requests.
//
// The general per-client request limit of every route is @fastify/rate-limit's (app.ts); these are the specific
// ones: wrong passwords, wrong PINs, mails sent on request, messages sent to agencies. Wrong PINs per link are counted in the database instead
// (checkTokenPin), so a link dies after SMGW_PIN_MAX_ATTEMPTS wherever the guesses come from.
import { createHmac } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { keyFromMasterKey } from '@smgw/secrets';
import type { Redis } from 'ioredis';

export interface LimitRule {
  /** Events allowed per window; the next one is refused. */
  max: number;
  windowMs: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** The rules, as data (tests and the README name them). */
export const LIMIT_RULES = {
  /** Wrong passwords for one mailbox, from anywhere: then the mailbox's login is locked for the window. */
  loginPerMailbox: { max: 10, windowMs: 15 * MINUTE },
  /** Wrong passwords from one client, for any addresses (also unknown ones): against password spraying. */
  loginPerClient: { max: 30, windowMs: 15 * MINUTE },
  /** Wrong PINs from one client, over every link. */
  pinPerClient: { max: 20, windowMs: HOUR },
  /** Re-activation mails to one address, counted without its +tag (contactSubject): one inbox, one limit. */
  reactivationPerAddress: { max: 3, windowMs: HOUR },
  /** Re-activation requests from one client (any addresses, also unknown ones). */
  reactivationPerClient: { max: 10, windowMs: HOUR },
  /** Registration mails to one address, counted without its +tag (contactSubject), and requests per client. */
  registrationPerAddress: { max: 3, windowMs: HOUR },
  registrationPerClient: { max: 10, windowMs: HOUR },
  /**
   * Agency registrations from one client, and information mails to one contact address (the form mails them): the
   * address counted without its +tag (contactSubject), so victim+1@, victim+2@ … share victim@'s mails, and all
   * contacts at one domain together (contactDomainSubject), so other variants there are bounded too.
   */
  agencyRegistrationPerClient: { max: 5, windowMs: HOUR },
  agencyRegistrationPerContact: { max: 3, windowMs: 24 * HOUR },
  agencyRegistrationPerContactDomain: { max: 10, windowMs: 24 * HOUR },
  /** Key uploads on /schluessel per mailbox (each certificate may fetch revocation data). */
  keyUploadPerMailbox: { max: 10, windowMs: HOUR },
  /** Messages one mailbox sends to agencies (portal-write): the portal is no way to flood an agency. */
  composePerMailbox: { max: 30, windowMs: HOUR },
  /**
   * Messages one client sends over all its mailboxes: a mailbox is easy to get (/registrieren), so the per-mailbox
   * limit alone bounds nothing. SMGW_PORTAL_SENDS_PER_HOUR sets `max` (an office behind one NAT address shares it).
   */
  composePerClient: { max: 60, windowMs: HOUR },
} as const satisfies Record<string, LimitRule>;

export type LimitName = keyof typeof LIMIT_RULES;

export interface LimitState {
  /** Events counted in the current window, this one included. */
  count: number;
  /** No further event is allowed in this window (count ≥ max). */
  blocked: boolean;
  /** This event itself was over the limit (count > max): refuse it (and give the slot back). */
  exceeded: boolean;
  /** Milliseconds until the window ends (0 when nothing is counted). */
  retryAfterMs: number;
}

export interface Limits {
  rules: Record<LimitName, LimitRule>;
  /** Takes a slot for one event (a password to check, a mail to send) and tells whether it was over the limit. */
  hit(name: LimitName, subject: string): Promise<LimitState>;
  /** Gives back one slot taken by hit (the event did not count, or was refused): the window stays as it is. */
  giveBack(name: LimitName, subject: string): Promise<void>;
}

// INCR and set the window on the first event only; returns the count and the time left.
const HIT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}`;

// DECR only a window that still exists (an ended one is not brought back), and never below zero.
const GIVE_BACK = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('DECR', KEYS[1]) <= 0 then redis.call('DEL', KEYS[1]) end
return 1`;

/** The key of the limits' names in Redis, derived from SMGW_MASTER_KEY for this use alone. */
export function limitKeySecretFrom(masterKey: Buffer): Buffer {
  return keyFromMasterKey(masterKey, 'smgw portal: limit keys in redis');
}

/** A subject (an address, a client) as Redis may name it: its HMAC under `secret` (limitKeySecretFrom). */
export function subjectName(secret: Buffer, subject: string): string {
  return createHmac('sha256', secret).update(subject, 'utf8').digest('hex');
}

/** The name in Redis of rule `name`'s count for `subject`, under `secret` (limitKeySecretFrom). */
export function limitKey(prefix: string, secret: Buffer, name: LimitName, subject: string): string {
  return `${prefix}portal:limit:${name}:${subjectName(secret, subject)}`;
}

export function createLimits(
  redis: Redis,
  prefix: string,
  secret: Buffer,
  rules: Record<LimitName, LimitRule> = LIMIT_RULES,
): Limits {
  const key = (name: LimitName, subject: string) => limitKey(prefix, secret, name, subject);
  const state = (name: LimitName, count: number, ttl: number): LimitState => ({
    count,
    blocked: count >= rules[name].max,
    exceeded: count > rules[name].max,
    retryAfterMs: count > 0 ? Math.max(0, ttl) : 0,
  });
  return {
    rules,
    async hit(name, subject) {
      const [count, ttl] = (await redis.eval(HIT, 1, key(name, subject), rules[name].windowMs)) as [number, number];
      return state(name, Number(count), Number(ttl));
    },
    async giveBack(name, subject) {
      await redis.eval(GIVE_BACK, 1, key(name, subject));
    },
  };
}

/**
 * Counts one event against each rule in turn (a form's per-client, then per-address limit) and returns the first
 * that is now exceeded; the rules after it are not counted. Undefined when none is exceeded.
 */
export async function firstExceeded(
  limits: Limits,
  hits: ReadonlyArray<readonly [LimitName, string]>,
): Promise<LimitState | undefined> {
  for (const [name, subject] of hits) {
    const state = await limits.hit(name, subject);
    if (state.exceeded) return state;
  }
  return undefined;
}

/**
 * Takes a slot of each rule in turn (as firstExceeded: the rules after an exceeded one are not counted) and remembers
 * which it took, so that an action that did not count (refused, not done) gives back exactly those.
 */
export async function takeSlots(
  limits: Limits,
  hits: ReadonlyArray<readonly [LimitName, string]>,
): Promise<{ exceeded: { name: LimitName; state: LimitState } | undefined; giveBack(): Promise<void> }> {
  const taken: (readonly [LimitName, string])[] = [];
  let exceeded: { name: LimitName; state: LimitState } | undefined;
  for (const hit of hits) {
    const state = await limits.hit(...hit);
    taken.push(hit);
    if (state.exceeded) {
      exceeded = { name: hit[0], state };
      break;
    }
  }
  return {
    exceeded,
    async giveBack() {
      await Promise.all(taken.splice(0).map(([name, subject]) => limits.giveBack(name, subject)));
    },
  };
}

/**
 * The contact a per-address limit counts: a normalised address with its subaddress (+tag) removed, since most
 * providers deliver local+anything@ to local@. An address whose local part starts with + stays as it is.
 */
export function contactSubject(address: string): string {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  const plus = local.indexOf('+');
  return plus > 0 ? `${local.slice(0, plus)}${address.slice(at)}` : address;
}

/** The domain of a normalised address (its A-label), the subject of a per-domain limit. */
export function contactDomainSubject(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1);
}

/**
 * The client a limit counts: the address, or for IPv6 its /64 (anyone holds a whole /64, so counting single
 * addresses would let one client be millions of clients).
 */
export function clientSubject(ip: string): string {
  const plain = ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
  if (!isIPv6(plain)) return plain;
  return `${expandIPv6(plain).slice(0, 4).join(':')}::/64`;
}

function expandIPv6(ip: string): string[] {
  const [head = '', tail] = ip.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = 8 - left.length - right.length;
  const groups = tail === undefined ? left : [...left, ...Array(Math.max(0, missing)).fill('0'), ...right];
  return groups.map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
}
