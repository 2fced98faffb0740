// Pooled nodemailer transports, one per destination, reused across envelopes and closed when idle.
// nodemailer connects only to the host it is given (LIBRARY-NOTES §6), so relay lists and MX delivery hand it a
// connected socket through `getSocket`; for the MX, mx-connect finds and connects to the exchange (as zone-mta does).
import { lookup, resolve, resolve4 } from 'node:dns/promises';
import net from 'node:net';
import { allowList, type Cidr, cidrList, embeddedIpv4, type HostPort, inNetworks } from '@smgw/config';
import { NOTHING_ALLOWED, refusedAddress } from '@smgw/crypto';
import mxConnect from 'mx-connect';
import nodemailer, { type SMTPPoolOptions, type SMTPPoolSentMessageInfo, type Transporter } from 'nodemailer';
import {
  createMtaStsPolicies,
  type DnsResolve,
  MTA_STS_MAX_BYTES,
  MTA_STS_TIMEOUT_MS,
  type MtaStsFetch,
  mxConnectMtaSts,
} from './mta-sts.ts';
import type { Destination } from './route-recipients.ts';

export interface TransportSettings {
  /** EHLO name (SMGW_HOSTNAME). */
  hostname: string;
  connectionsPerDestination: number;
  /**
   * Greeting and socket inactivity timeout; also the bound of the whole session setup (nodemailer's
   * connectionTimeout: connect, greeting, STARTTLS) and of finding and connecting to a domain's MX.
   */
  timeoutMs: number;
  /** One TCP connect, to each host tried (default connectTimeoutFor(timeoutMs)). */
  connectTimeoutMs?: number;
  /** Refuse to hand mail for the outside (smarthost, MX) to a server without STARTTLS. */
  requireTlsOutside: boolean;
  /** A transport unused this long is closed with its connections. */
  idleCloseMs?: number;
  /**
   * Merged into every mx-connect call (tests resolve a domain to a local sink). The address blocks cannot be set
   * here: private, loopback and reserved addresses are always refused, except with testOnlyAllowLoopbackMx.
   */
  mxConnectOptions?: MxConnectOverrides;
  /**
   * The agencies' own hosts and networks: an MX of a domain outside that leads to one of them is refused, wherever
   * they lie (blockLocalAddresses knows private address space only; an agency network may use public addresses).
   */
  closedNetwork?: ClosedNetwork;
  /**
   * TESTS ONLY: lets an MX resolve to loopback and private addresses (the test's SMTP sink on 127.0.0.1, where the
   * relay sink is too, so closedNetwork is not checked either). Never set by service.ts from configuration; reserved
   * networks stay refused even then.
   */
  testOnlyAllowLoopbackMx?: true;
  /**
   * TESTS ONLY: the MTA-STS policy host's port and its server's CA (a test's HTTPS server). With
   * testOnlyAllowLoopbackMx the policy host may be on loopback too; closedNetwork is checked for it even then.
   */
  testOnlyMtaSts?: MtaStsFetch['testOnly'];
  /** Told of each MTA-STS policy that could not be fetched (for the log). */
  onMtaStsFetchFailed?: (domain: string, err: Error) => void;
}

/** The agencies' own addresses, which no domain outside may have as its MX. */
export interface ClosedNetwork {
  /** SMGW_INTERNAL_RELAY: the addresses of these hosts (names are looked up when an MX is connected to). */
  relayHosts: HostPort[];
  /** SMGW_SUBMISSION_NETWORKS: the agencies' own mail servers and clients. */
  networks: Cidr[];
  /** How relay host names are looked up (default node:dns lookup; tests give failures). */
  lookup?: (host: string) => Promise<{ address: string }[]>;
}

type LookUp = NonNullable<ClosedNetwork['lookup']>;

const systemLookup: LookUp = (host) => lookup(host, { all: true });

/** How long an answer about the relay's name is kept: it is asked for each new connection to an outside MX. */
export const RELAY_LOOKUP_CACHE_MS = 5000;

/**
 * `lookUp` with its answers kept for `ttlMs` (a name asked meanwhile shares the question). A failure is not kept: the
 * next connection asks again, and none is made until the name is known (addressesOf fails closed).
 */
export function withLookupCache(lookUp: LookUp, ttlMs: number, now: () => number = Date.now): LookUp {
  // One entry per relay host name (configuration), so no bound is needed.
  const kept = new Map<string, { at: number; answer: Promise<{ address: string }[]> }>();
  return (host) => {
    const hit = kept.get(host);
    if (hit && now() - hit.at < ttlMs) return hit.answer;
    const answer = lookUp(host);
    kept.set(host, { at: now(), answer });
    answer.catch(() => {
      if (kept.get(host)?.answer === answer) kept.delete(host);
    });
    return answer;
  };
}

/**
 * The addresses of the relay hosts; a name that does not exist has none. Any other lookup failure is thrown: not
 * knowing the relay's addresses, the MX connection is not made (deferred), rather than made to what may be the relay.
 */
async function addressesOf(hosts: HostPort[], lookUp: LookUp = systemLookup): Promise<string[]> {
  const lists = await Promise.all(
    hosts.map(async ({ host }) => {
      if (net.isIP(host)) return [host];
      try {
        return (await lookUp(host)).map((a) => a.address);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOTFOUND' || code === 'ENODATA') return [];
        throw err;
      }
    }),
  );
  return lists.flat();
}

/** Is `ip`, an address an MX of a domain outside led to, one of the agencies' own (also as NAT64 or 6to4)? */
export async function inClosedNetwork(ip: string, closed: ClosedNetwork): Promise<boolean> {
  const candidates = [ip, embeddedIpv4(ip)].filter((a): a is string => a !== undefined);
  if (candidates.some((a) => inNetworks(a, closed.networks))) return true;
  const relay = await addressesOf(closed.relayHosts, closed.lookup);
  return relay.length > 0 && candidates.some((a) => inNetworks(a, cidrList(relay.join(','))));
}

/**
 * Why the MTA-STS policy host of a domain outside may not be contacted at `address`: the agencies' own (as for an MX),
 * or not a public unicast address (loopback, private, link-local, unspecified, reserved; loopback only allowed with
 * testOnlyAllowLoopbackMx). Undefined when it may.
 */
export function mtaStsHostRefusal(
  settings: Pick<TransportSettings, 'closedNetwork' | 'testOnlyAllowLoopbackMx'>,
): (address: string) => Promise<string | undefined> {
  const allow = settings.testOnlyAllowLoopbackMx ? allowList('127.0.0.0/8,::1/128') : NOTHING_ALLOWED;
  return async (address) => {
    const special = refusedAddress(address, 443, '', allow, '');
    if (special) return special;
    if (settings.closedNetwork && (await inClosedNetwork(address, settings.closedNetwork))) {
      return "an address of the agencies' own network";
    }
    return undefined;
  };
}

type DnsOptions = NonNullable<mxConnect.MxConnectOptions['dnsOptions']>;

/** What a caller may change of an mx-connect call: not the target, not the address blocks, not the connect hook. */
export type MxConnectOverrides = Omit<Partial<mxConnect.MxConnectOptions>, 'target' | 'dnsOptions' | 'connectHook'> & {
  dnsOptions?: Omit<DnsOptions, 'blockLocalAddresses' | 'blockReservedNetworks'>;
};

/**
 * The mx-connect dnsOptions: the caller's (a test resolver), with the blocks of private, loopback and reserved
 * addresses applied last, so that no override can drop them (only testOnlyAllowLoopbackMx lifts the local one).
 */
export function mxDnsOptions(settings: Pick<TransportSettings, 'mxConnectOptions' | 'testOnlyAllowLoopbackMx'>) {
  return {
    ...settings.mxConnectOptions?.dnsOptions,
    blockLocalAddresses: settings.testOnlyAllowLoopbackMx !== true,
    blockReservedNetworks: true,
  } satisfies DnsOptions;
}

export type PooledTransporter = Transporter<SMTPPoolSentMessageInfo, SMTPPoolOptions>;

export interface DestinationTransport {
  destination: Destination;
  transporter: PooledTransporter;
  /** The host that was connected to last: Remote-MTA in DSNs and the trace. */
  remoteMta: string;
  inUse: number;
  lastUsedAt: number;
}

export interface Transports {
  /** Runs `work` with the destination's pooled transport (made on first use, never closed while in use). */
  use<T>(destination: Destination, work: (transport: DestinationTransport) => Promise<T>): Promise<T>;
  /** Transports open now (the pool gauge). */
  count(): number;
  /** Closes transports unused for idleCloseMs; returns how many were closed. */
  closeIdle(now?: number): number;
  /** Closes every transport; a connection in the middle of a message finishes it first. */
  close(): void;
}

type GetSocket = NonNullable<SMTPPoolOptions['getSocket']>;

const DEFAULT_IDLE_CLOSE_MS = 10 * 60 * 1000;

/**
 * One TCP connect: 30 s (Postfix's smtp_connect_timeout), or the SMTP timeout when that is shorter. Waiting for a
 * connect as long as for a reply (5 minutes) would let each address that drops our SYNs hold a handler that long.
 */
export function connectTimeoutFor(timeoutMs: number): number {
  return Math.min(30_000, timeoutMs);
}

type MxConnectError = mxConnect.MxConnectError;

/**
 * mx-connect's own connection failures (a host that did not take the connection in maxConnectTime) carry no code:
 * given ECONNECTION, so that the bounce rules read them as the connection failures they are (network, 4.4.1).
 */
function withConnectionCode(err: MxConnectError): MxConnectError {
  if (err.category === 'network' && !err.code) err.code = 'ECONNECTION';
  return err;
}

/**
 * mx-connect bounded as a whole, its DNS lookups and every host it tries: nodemailer's setup timer starts only once
 * it has the socket. A connection made after the bound is closed.
 */
function mxConnectWithin(options: mxConnect.MxConnectOptions, withinMs: number): Promise<mxConnect.MxConnection> {
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      const err: MxConnectError = new Error(`no connection to an MX host of ${options.target} within ${withinMs} ms`);
      err.code = 'ECONNECTION';
      reject(err);
    }, withinMs);
    mxConnect(options).then(
      (connection) => {
        clearTimeout(timer);
        if (late) connection.socket.destroy();
        else resolve(connection);
      },
      (err: MxConnectError) => {
        clearTimeout(timer);
        reject(withConnectionCode(err));
      },
    );
  });
}

/** Connects to the first host of the list that takes the connection (the agencies' relays, in order). */
export function connectFirstReachable(
  hosts: HostPort[],
  timeoutMs: number,
): Promise<{ socket: net.Socket; host: HostPort }> {
  return new Promise((resolve, reject) => {
    let lastError: Error | undefined;
    const tryHost = (index: number) => {
      const host = hosts[index];
      if (!host) {
        reject(lastError ?? new Error('no relay host configured'));
        return;
      }
      const socket = net.connect({ host: host.host, port: host.port, timeout: timeoutMs });
      const fail = (err: Error) => {
        socket.destroy();
        lastError = err;
        tryHost(index + 1);
      };
      socket.once('error', fail);
      socket.once('timeout', () => {
        const err = new Error(`connection to ${host.host}:${host.port} timed out`) as Error & { code: string };
        err.code = 'ETIMEDOUT';
        fail(err);
      });
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        socket.removeAllListeners('timeout');
        socket.setTimeout(0);
        resolve({ socket, host });
      });
    };
    tryHost(0);
  });
}

export function createTransports(settings: TransportSettings): Transports {
  const open = new Map<string, DestinationTransport>();
  const idleCloseMs = settings.idleCloseMs ?? DEFAULT_IDLE_CLOSE_MS;
  const connectTimeoutMs = settings.connectTimeoutMs ?? connectTimeoutFor(settings.timeoutMs);
  const cachedClosedNetwork = settings.closedNetwork && {
    ...settings.closedNetwork,
    lookup: withLookupCache(settings.closedNetwork.lookup ?? systemLookup, RELAY_LOOKUP_CACHE_MS),
  };
  // MTA-STS is ours (mta-sts.ts): fetched with the MX resolver, never from the closed network, kept in a bounded cache.
  // A test's override may turn it off (mtaSts: { enabled: false }); then mx-connect does not ask either.
  const mtaStsOff = settings.mxConnectOptions?.mtaSts?.enabled === false;
  const customResolve = settings.mxConnectOptions?.dnsOptions?.resolveRecords;
  // mx-connect's own default when no resolver is given (node:dns resolve, not getaddrinfo).
  const dnsResolve: DnsResolve = customResolve
    ? async (name, type) => customResolve(name, type as 'A')
    : (name, type) => (type === 'A' ? resolve4(name) : resolve(name, type));
  const mtaStsPolicies = createMtaStsPolicies(
    {
      resolve: dnsResolve,
      refuse: mtaStsHostRefusal({ ...settings, closedNetwork: cachedClosedNetwork }),
      timeoutMs: Math.min(MTA_STS_TIMEOUT_MS, settings.timeoutMs),
      maxBytes: MTA_STS_MAX_BYTES,
      ...(settings.testOnlyMtaSts ? { testOnly: settings.testOnlyMtaSts } : {}),
    },
    { onFetchFailed: settings.onMtaStsFetchFailed },
  );

  const common = {
    pool: true as const,
    maxConnections: settings.connectionsPerDestination,
    maxMessages: 100,
    // The raw message is a stream read once: nodemailer must never replay it on another connection. A message
    // whose connection dropped fails, is deferred, and goes again with a fresh stream.
    maxRequeues: 0,
    name: settings.hostname,
    // Since nodemailer 10 this bounds the whole setup (connect, greeting, STARTTLS) from the start of getSocket, not
    // the TCP connect alone: that one is bounded by connectTimeoutMs in our connectors below. Set to 30 s here, it
    // would cut the greeting's wait (5 minutes in RFC 5321 §4.5.3.2.1) to what the connect left of 30 s.
    connectionTimeout: settings.timeoutMs,
    greetingTimeout: settings.timeoutMs,
    socketTimeout: settings.timeoutMs,
    // Opportunistic STARTTLS against passive listening; what leaves for the outside is already S/MIME or PGP.
    tls: { rejectUnauthorized: false },
    logger: false,
  };

  /** Connects to the first of `hosts` that takes the connection (each bounded by connectTimeoutMs). */
  const connectingTo =
    (hosts: HostPort[], entry: DestinationTransport): GetSocket =>
    (_options, callback) => {
      connectFirstReachable(hosts, connectTimeoutMs).then(
        ({ socket, host }) => {
          entry.remoteMta = host.host;
          callback(null, { connection: socket });
        },
        (err: Error) => callback(err),
      );
    };

  /**
   * mx-connect's hook before each connect, with the address it is about to connect to: the agencies' own are refused
   * (a stranger's MX record pointing at the relay would have outbound mail and the gateway's notices delivered into
   * the closed network, and show the stranger which of its hosts take connections on port 25). Fatal for the
   * attempt: no further MX host of that domain is tried, a permanent DNS error (bounced, 5.1.2), as for an MX at a
   * private address.
   */
  const closedNetwork = settings.testOnlyAllowLoopbackMx ? undefined : cachedClosedNetwork;
  const refuseClosedNetwork: NonNullable<mxConnect.MxConnectOptions['connectHook']> = (delivery, options, callback) => {
    if (!closedNetwork) return callback();
    inClosedNetwork(options.host, closedNetwork).then(
      (closed) => {
        if (!closed) return callback();
        const err: MxConnectError = new Error(
          `an MX host of ${delivery.domain} is at ${options.host}, an address of the agencies' own network; not connected`,
        );
        err.code = 'EMXCLOSEDNETWORK';
        err.category = 'dns';
        err.temporary = false;
        callback(err);
      },
      (err: Error) => {
        // The relay's addresses unknown for now: not connected, tried again later (never a bounce).
        const failure: MxConnectError = new Error(
          `cannot tell whether an MX host of ${delivery.domain} is ours: ${err.message}`,
        );
        failure.code = 'EMXCLOSEDNETWORKUNKNOWN';
        failure.category = 'network';
        failure.temporary = true;
        callback(failure);
      },
    );
  };

  function create(destination: Destination): DestinationTransport {
    const entry = { destination, remoteMta: '', inUse: 0, lastUsedAt: Date.now() } as DestinationTransport;
    if (destination.kind === 'smarthost') {
      entry.remoteMta = destination.host.host;
      entry.transporter = nodemailer.createTransport({
        ...common,
        host: destination.host.host,
        port: destination.host.port,
        requireTLS: settings.requireTlsOutside,
        // TLS required: the smarthost is one known host, so its certificate must be valid for its name (a private
        // CA through NODE_EXTRA_CA_CERTS); required but unchecked, anyone on the path could stand in for it.
        ...(settings.requireTlsOutside ? { tls: { rejectUnauthorized: true } } : {}),
        getSocket: connectingTo([destination.host], entry),
      });
    } else if (destination.kind === 'relay') {
      const first = destination.hosts[0];
      entry.remoteMta = first?.host ?? '';
      entry.transporter = nodemailer.createTransport({
        ...common,
        host: first?.host,
        port: first?.port,
        getSocket: connectingTo(destination.hosts, entry),
      });
    } else {
      entry.remoteMta = destination.domain;
      entry.transporter = nodemailer.createTransport({
        ...common,
        host: destination.domain,
        port: 25,
        requireTLS: settings.requireTlsOutside,
        getSocket: ((_options, callback) => {
          const policy = mtaStsOff ? Promise.resolve(undefined) : mtaStsPolicies.policyFor(destination.domain);
          policy
            .then((found) => {
              // Set after the overrides: mx-connect applies our policy and fetches none itself.
              const mtaSts = mtaStsOff ? undefined : mxConnectMtaSts(found, dnsResolve);
              const options = {
                port: 25,
                maxConnectTime: connectTimeoutMs,
                localHostname: settings.hostname,
                ...settings.mxConnectOptions,
                ...(mtaSts ? { mtaSts: mtaSts.mtaSts } : {}),
                // The MX of a domain outside must never lead back into our own or private networks: set after the
                // overrides, so none can drop it.
                target: destination.domain,
                dnsOptions: {
                  ...mxDnsOptions(settings),
                  ...(mtaSts ? { resolveRecords: mtaSts.resolveRecords } : {}),
                },
                connectHook: refuseClosedNetwork,
              };
              return mxConnectWithin(options, settings.timeoutMs);
            })
            .then(
              (connection) => {
                entry.remoteMta = connection.hostname;
                // MTA-STS "enforce": TLS with a valid certificate for the MX name, or no delivery (RFC 8461 §5).
                const enforce = connection.policyMatch?.mode === 'enforce';
                callback(null, {
                  connection: connection.socket,
                  host: connection.hostname,
                  ...(enforce
                    ? { requireTLS: true, tls: { rejectUnauthorized: true, servername: connection.hostname } }
                    : {}),
                });
              },
              (err: Error) => callback(err),
            );
        }) satisfies GetSocket,
      });
    }
    return entry;
  }

  return {
    async use(destination, work) {
      let entry = open.get(destination.key);
      if (!entry) {
        entry = create(destination);
        open.set(destination.key, entry);
      }
      entry.inUse++;
      entry.lastUsedAt = Date.now();
      try {
        return await work(entry);
      } finally {
        entry.inUse--;
        entry.lastUsedAt = Date.now();
      }
    },
    count: () => open.size,
    closeIdle(now = Date.now()) {
      let closed = 0;
      for (const [key, entry] of open) {
        if (entry.inUse === 0 && now - entry.lastUsedAt >= idleCloseMs) {
          entry.transporter.close();
          open.delete(key);
          closed++;
        }
      }
      return closed;
    },
    close() {
      for (const entry of open.values()) entry.transporter.close();
      open.clear();
    },
  };
}
