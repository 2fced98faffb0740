// Recipient verification on the MX port, as Postfix's reject_unverified_recipient does it: before RCPT is answered,
// the agencies' relay (SMGW_INTERNAL_RELAY) is asked in an SMTP session of its own (EHLO, MAIL FROM:<>,
// RCPT TO:<address>, QUIT) whether it would take the address. Its answer is cached in Redis (known for
// SMGW_RECIPIENT_VERIFY_KNOWN_TTL, unknown for SMGW_RECIPIENT_VERIFY_UNKNOWN_TTL). So unknown recipients are refused
// while the sender is still connected, and the gateway hardly ever has to write a bounce to the internet.
// - A relay that cannot be asked (unreachable, timeout, a 4xx answer) gives 450 4.1.1: never 250 unchecked.
// - Unknown recipients are counted per client (IPv6 per network, as every limit) and per network (IPv4 /24, IPv6
//   /48: networkKey); after SMGW_SMTP_MAX_UNKNOWN_RECIPIENTS of a client, or SMGW_SMTP_MAX_UNKNOWN_RECIPIENTS_PER_NETWORK
//   of its network, in SMGW_SMTP_UNKNOWN_RECIPIENT_WINDOW every further RCPT from there gets 450 4.7.1, known or not,
//   so the MX port cannot be used to find out which agency addresses exist (a /48 holds 65,536 clients).
// Why the relay and not a list: the agency mail servers know every mailbox, alias and list; the key directory's
// agency_addresses holds only the addresses the gateway keeps keys for.
// The cache names an address by an HMAC (redisNameSecretFrom): Redis would otherwise hold a list of which agency
// addresses exist and which do not, for anyone who can read it; a client's count is named as the rate limits name
// it (clientName).

import { createHmac } from 'node:crypto';
import type { HostPort } from '@smgw/config';
import type { Counter } from '@smgw/observability';
import type { Redis } from 'ioredis';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { askRedis, clientName, networkName, redisScript } from './rate-limits.ts';
import type { ReplyCode } from './smtp-replies.ts';

export interface RecipientVerificationSettings {
  /** SMGW_RECIPIENT_VERIFY */
  mode: 'relay' | 'off';
  /** SMGW_INTERNAL_RELAY: asked in order; the next one only when one cannot be reached. */
  relays: HostPort[];
  /** SMGW_HOSTNAME: our EHLO name. */
  hostname: string;
  /** SMGW_REDIS_PREFIX */
  prefix: string;
  /** Keys the cache's names of addresses and the names of clients (redisNameSecretFrom(SMGW_MASTER_KEY)). */
  redisNameSecret: Buffer;
  knownTtlMs: number;
  unknownTtlMs: number;
  probeTimeoutMs: number;
  maxUnknownPerClient: number;
  maxUnknownPerNetwork: number;
  unknownWindowMs: number;
  ipv6ClientPrefix: number;
}

/** What the relay said about an address: it takes it, refuses it (5xx), or could not be asked (say why). */
export type ProbeAnswer =
  | { verdict: 'known' | 'unknown'; reply: string; relay: string }
  | { verdict: 'unverified'; reason: string };

export type ProbeRecipient = (address: string) => Promise<ProbeAnswer>;

export type RecipientCheck =
  | { accept: true }
  | {
      accept: false;
      code: Extract<ReplyCode, 'RECIPIENT_UNKNOWN' | 'RECIPIENT_UNVERIFIED' | 'UNKNOWN_RECIPIENT_LIMIT'>;
      reason: string;
    };

export interface RecipientVerification {
  /** May `address` be taken as a recipient from the client at `ip`? Throws RedisUnavailableError. */
  check(ip: string, address: string): Promise<RecipientCheck>;
}

// One round trip: count an unknown recipient for the client and for its network, each window started by its first.
const COUNT_IN_WINDOWS = `
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
end
return 1`;

/** smgw_ingest_recipient_verifications_total's result label, by outcome. */
const RESULTS = {
  accepted: 'known',
  RECIPIENT_UNKNOWN: 'unknown',
  RECIPIENT_UNVERIFIED: 'unverified',
  UNKNOWN_RECIPIENT_LIMIT: 'limited',
} as const;

export function createRecipientVerification(
  redis: Redis,
  settings: RecipientVerificationSettings,
  options: { probe?: ProbeRecipient; counter?: Counter<'result'> } = {},
): RecipientVerification {
  const probe = options.probe ?? relayProbe(settings);
  const key = (...parts: string[]) => `${settings.prefix}ingest:${parts.join(':')}`;
  const countUnknown = redisScript(redis, 'smgwIngestCountUnknownRecipient2', COUNT_IN_WINDOWS, 2);
  // Concurrent RCPTs for one address (a mailing burst) share one probe.
  const probing = new Map<string, Promise<ProbeAnswer>>();
  const probeOnce = (address: string) => {
    const same = cacheAddress(address);
    let running = probing.get(same);
    if (!running) {
      running = probe(address).finally(() => probing.delete(same));
      probing.set(same, running);
    }
    return running;
  };

  async function decide(ip: string, address: string): Promise<RecipientCheck> {
    const unknownKey = key('unknown-rcpt', clientName(ip, settings.redisNameSecret, settings.ipv6ClientPrefix));
    const networkUnknownKey = key(
      'unknown-rcpt-net',
      networkName(ip, settings.redisNameSecret, settings.ipv6ClientPrefix),
    );
    const cacheKey = key(
      'rcpt-verify',
      createHmac('sha256', settings.redisNameSecret).update(cacheAddress(address)).digest('hex'),
    );
    // The client's and its network's counts and the address's cached answer in one round trip.
    const [unknownCount, networkUnknownCount, cached] = await askRedis(() =>
      redis.mget(unknownKey, networkUnknownKey, cacheKey),
    );
    const unknownSoFar = Number(unknownCount ?? 0);
    if (unknownSoFar >= settings.maxUnknownPerClient) {
      return { accept: false, code: 'UNKNOWN_RECIPIENT_LIMIT', reason: `${unknownSoFar} unknown recipients` };
    }
    const networkUnknownSoFar = Number(networkUnknownCount ?? 0);
    if (networkUnknownSoFar >= settings.maxUnknownPerNetwork) {
      return {
        accept: false,
        code: 'UNKNOWN_RECIPIENT_LIMIT',
        reason: `${networkUnknownSoFar} unknown recipients from the network`,
      };
    }
    let verdict: 'known' | 'unknown';
    let reason: string;
    if (cached === 'known' || cached === 'unknown') {
      verdict = cached;
      reason = 'remembered';
    } else {
      const answer = await probeOnce(address);
      if (answer.verdict === 'unverified') {
        return { accept: false, code: 'RECIPIENT_UNVERIFIED', reason: answer.reason };
      }
      verdict = answer.verdict;
      reason = `${answer.relay}: ${answer.reply}`;
      const ttl = verdict === 'known' ? settings.knownTtlMs : settings.unknownTtlMs;
      await askRedis(() => redis.set(cacheKey, verdict, 'PX', ttl));
    }
    if (verdict === 'known') return { accept: true };
    await askRedis(() => countUnknown([unknownKey, networkUnknownKey], settings.unknownWindowMs));
    return { accept: false, code: 'RECIPIENT_UNKNOWN', reason };
  }

  return {
    async check(ip, address) {
      if (settings.mode === 'off') return { accept: true };
      const check = await decide(ip, address);
      options.counter?.inc({ result: RESULTS[check.accept ? 'accepted' : check.code] });
      return check;
    },
  };
}

/**
 * One key for every spelling of an address: the local part lower-cased too. Strictly the local part is the relay's
 * business, but keyed as written, one known address in 2^n spellings of its case made the gateway open a session to
 * the relay for each RCPT, none of them counted as unknown. Mail servers (Postfix, Exchange) fold the case anyway.
 */
function cacheAddress(address: string): string {
  return address.toLowerCase();
}

/**
 * What /^[^\s<>]+@[^\s<>]+$/ takes: no white space or angle brackets, an at sign with something on both sides. Not
 * that expression: it tried each at sign of the address again to its end (a RCPT of 16 KB, as long as smtp-server
 * reads one, took 0.2 s of the MX port).
 */
function probeable(address: string): boolean {
  const at = address.indexOf('@', 1);
  return at !== -1 && at < address.length - 1 && !/[\s<>]/.test(address);
}

/** Asks the relays in order; the first that can be reached answers. */
export function relayProbe(
  settings: Pick<RecipientVerificationSettings, 'relays' | 'hostname' | 'probeTimeoutMs'>,
): ProbeRecipient {
  return async (address) => {
    if (!probeable(address)) return { verdict: 'unverified', reason: 'not an address to probe' };
    const reasons: string[] = [];
    for (const relay of settings.relays) {
      const answer = await probeRelay(relay, address, settings);
      if (answer.verdict !== 'unreachable') return answer;
      reasons.push(`${relay.host}:${relay.port}: ${answer.reason}`);
    }
    return { verdict: 'unverified', reason: reasons.join('; ') || 'no relay configured' };
  };
}

// nodemailer's SMTPConnection has no call for a transaction without DATA; its custom-auth hook hands out a plain
// command channel (sendCommand, replies parsed), which runs the probe in place of an AUTH exchange. No AUTH command
// is sent, no credentials exist.
const PROBE_METHOD = 'SMGW-RECIPIENT-PROBE';

type RelayAnswer = ProbeAnswer | { verdict: 'unreachable'; reason: string };

function probeRelay(
  relay: HostPort,
  address: string,
  settings: Pick<RecipientVerificationSettings, 'hostname' | 'probeTimeoutMs'>,
): Promise<RelayAnswer> {
  const relayName = `${relay.host}:${relay.port}`;
  return new Promise((resolve) => {
    let answer: RelayAnswer | undefined;
    let connected = false;
    const finish = (result: RelayAnswer) => {
      clearTimeout(deadline);
      answer ??= result;
      resolve(answer);
    };
    const connection = new SMTPConnection({
      host: relay.host,
      port: relay.port,
      name: settings.hostname,
      connectionTimeout: settings.probeTimeoutMs,
      greetingTimeout: settings.probeTimeoutMs,
      socketTimeout: settings.probeTimeoutMs,
      // As deliver talks to the relay: STARTTLS when offered, any certificate (the closed network's own servers).
      tls: { rejectUnauthorized: false },
      logger: false,
      customAuth: {
        [PROBE_METHOD]: async (ctx) => {
          const mail = await ctx.sendCommand('MAIL FROM:<>');
          if (mail.status !== 250) {
            answer = { verdict: 'unverified', reason: `MAIL FROM:<> answered ${mail.response}` };
            return;
          }
          const rcpt = await ctx.sendCommand(`RCPT TO:<${address}>`);
          if (rcpt.status >= 200 && rcpt.status < 300)
            answer = { verdict: 'known', reply: rcpt.response, relay: relayName };
          else if (rcpt.status >= 500 && rcpt.status < 600)
            answer = { verdict: 'unknown', reply: rcpt.response, relay: relayName };
          else answer = { verdict: 'unverified', reason: `RCPT answered ${rcpt.response}` };
          await ctx.sendCommand('RSET');
        },
      },
    });
    const deadline = setTimeout(() => {
      connection.close();
      finish({ verdict: connected ? 'unverified' : 'unreachable', reason: 'no answer in time' });
    }, settings.probeTimeoutMs);
    connection.once('error', (err: Error) => {
      connection.close();
      finish({ verdict: connected ? 'unverified' : 'unreachable', reason: err.message });
    });
    connection.once('end', () => {
      finish(answer ?? { verdict: connected ? 'unverified' : 'unreachable', reason: 'connection closed' });
    });
    connection.connect((err) => {
      if (err) return finish({ verdict: 'unreachable', reason: err.message });
      connected = true;
      connection.login({ method: PROBE_METHOD, user: 'probe', pass: 'probe' }, () => {
        connection.quit();
        finish(answer ?? { verdict: 'unverified', reason: 'the probe ended without an answer' });
      });
    });
  });
}
