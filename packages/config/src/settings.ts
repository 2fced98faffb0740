// Every setting of the gateway, once (SPEC.md "Settings" plus the ones documented in the README).
// A service's config.ts picks the ones it reads into its own spec.

import { dkimPrivateKeyFile, dkimSelector, singleDomain } from './dkim-signing.ts';
import {
  allowList,
  base64Key,
  bool,
  cidrList,
  delayList,
  dnsServerList,
  domainList,
  domainOrAddressList,
  duration,
  hostPort,
  hostPortList,
  integer,
  oneOf,
  port,
  secretToken,
  setting,
  text,
  trustedProxies,
  url,
} from './parsers.ts';

export const settings = {
  databaseUrl: setting(
    'DATABASE_URL',
    url(['postgres:', 'postgresql:']),
    'postgres://postgres@127.0.0.1:5432/smgw',
    'PostgreSQL',
  ),
  /** Tests run each suite in its own schema; production leaves it unset (public). */
  databaseSchema: setting('SMGW_DB_SCHEMA', text, undefined, 'PostgreSQL schema (tests use one each)'),
  amqpUrl: setting('AMQP_URL', url(['amqp:', 'amqps:']), 'amqp://guest:guest@127.0.0.1:5672', 'RabbitMQ'),
  redisUrl: setting('REDIS_URL', url(['redis:', 'rediss:']), 'redis://127.0.0.1:6379', 'Redis'),
  /** Prefix for Redis keys, so tests (and several gateways on one Redis) do not meet. */
  redisPrefix: setting('SMGW_REDIS_PREFIX', text, 'smgw:', 'prefix of every Redis key'),
  clamdUrl: setting('CLAMD_URL', url(['tcp:']), 'tcp://127.0.0.1:3310', 'clamd'),
  smtpInboundPort: setting('SMGW_SMTP_INBOUND_PORT', port, '2525', 'MX listener'),
  smtpSubmissionPort: setting('SMGW_SMTP_SUBMISSION_PORT', port, '2587', 'submission listener'),
  smtpBindHost: setting('SMGW_SMTP_BIND', text, '127.0.0.1', 'address the SMTP listeners bind to'),
  portalPort: setting('SMGW_PORTAL_PORT', port, '8080', 'web portal'),
  portalBind: setting('SMGW_PORTAL_BIND', text, '127.0.0.1', 'address the web portal binds to'),
  /** A portal session ends after this long without a request (OWASP: 15–30 minutes for sensitive data). */
  portalSessionIdle: setting('SMGW_PORTAL_SESSION_IDLE', duration, '30m', 'portal session ends after this idle time'),
  portalSessionMax: setting(
    'SMGW_PORTAL_SESSION_MAX',
    duration,
    '12h',
    'portal session ends this long after login, however active',
  ),
  portalTrustProxy: setting(
    'SMGW_PORTAL_TRUST_PROXY',
    trustedProxies,
    'off',
    'reverse proxies (addresses/CIDR) trusted to name the portal client in X-Forwarded-For; off: none',
  ),
  /** Requests per client address and minute over all portal pages (an office behind one NAT address shares it). */
  portalRequestsPerMinute: setting(
    'SMGW_PORTAL_REQUESTS_PER_MINUTE',
    integer(10, 10_000_000),
    '300',
    'portal requests per client address and minute (all pages)',
  ),
  /** Message views, frames and downloads per client and minute: each parses a whole message (up to the quota). */
  portalMessageViewsPerMinute: setting(
    'SMGW_PORTAL_MESSAGE_VIEWS_PER_MINUTE',
    integer(10, 10_000_000),
    '120',
    'portal message views, frames and downloads per client address and minute',
  ),
  /**
   * A message view's CPU time in its worker thread (parse and sanitise; seconds of CPU, not by the clock, so a loaded
   * pod does not cut an honest view; stuck for 5 times that by the clock, it is stopped too): then the page shows the
   * text part or offers the original. 4 MB of plain HTML takes 1.5–4.5 s of CPU to sanitise; an ordinary message
   * milliseconds.
   */
  portalViewTimeLimitSeconds: setting(
    'SMGW_PORTAL_VIEW_TIME_LIMIT_SECONDS',
    integer(1, 600),
    '10',
    'seconds of CPU to parse and sanitise one message for its portal page; then the page shows the text or the original',
  ),
  /** Worker threads parsing and sanitising messages for the portal (each ~45 MB, started when first needed). */
  portalViewWorkers: setting(
    'SMGW_PORTAL_VIEW_WORKERS',
    integer(1, 64),
    '2',
    'worker threads parsing and sanitising messages for the portal',
  ),
  /**
   * Messages sent from the portal per client address and hour, over all its mailboxes (each mailbox also has 30): a
   * mailbox is easy to get, so one client with many must not flood the agencies.
   */
  portalSendsPerHour: setting(
    'SMGW_PORTAL_SENDS_PER_HOUR',
    integer(1, 1_000_000),
    '60',
    'portal messages sent per client address and hour (all its mailboxes together)',
  ),
  /** Wrong PINs per activation link before it is dead (counted in the database, so across replicas and restarts). */
  pinMaxAttempts: setting('SMGW_PIN_MAX_ATTEMPTS', integer(1, 100), '5', 'wrong PINs before an activation link dies'),
  adminPort: setting('SMGW_ADMIN_PORT', port, '8081', 'admin API'),
  adminBind: setting('SMGW_ADMIN_BIND', text, '127.0.0.1', 'address the admin API binds to'),
  adminToken: setting(
    'SMGW_ADMIN_TOKEN',
    secretToken(32),
    undefined,
    'bearer token of the admin API (32+ characters)',
    {
      secret: true,
      required: true,
    },
  ),
  internalDomains: setting('SMGW_INTERNAL_DOMAINS', domainList, 'behoerde.example', 'agency domains'),
  submissionNetworks: setting(
    'SMGW_SUBMISSION_NETWORKS',
    cidrList,
    '127.0.0.0/8',
    'client networks allowed to submit without AUTH',
  ),
  internalRelay: setting('SMGW_INTERNAL_RELAY', hostPortList, '127.0.0.1:2526', "agencies' mail server(s)"),
  smarthost: setting('SMGW_SMARTHOST', hostPort, undefined, 'host:port for all outbound mail (unset: MX lookup)'),
  publicUrl: setting('SMGW_PUBLIC_URL', url(['http:', 'https:']), 'http://127.0.0.1:8080', 'base of portal links'),
  masterKey: setting(
    'SMGW_MASTER_KEY',
    base64Key(32),
    undefined,
    'key sealing what is kept at rest (agency private keys, the key store of message blobs)',
    { secret: true },
  ),
  /**
   * The master key before a rotation: still accepted for reading sealed values until `./smgw keys rotate-master`
   * has re-sealed them under SMGW_MASTER_KEY; unset it afterwards.
   */
  masterKeyPrevious: setting(
    'SMGW_MASTER_KEY_PREVIOUS',
    base64Key(32),
    undefined,
    'previous master key, accepted for reading during a master key rotation',
    { secret: true },
  ),
  /** Folder of the key-encryption keys of message blobs (each file sealed under SMGW_MASTER_KEY); never in the database. */
  keyStoreDir: setting('SMGW_KEY_STORE_DIR', text, undefined, 'folder of the key-encryption keys of message blobs'),
  /**
   * Folder for the (encrypted) contents of message blobs, shared by every process that writes or reads blobs; unset:
   * in PostgreSQL. Blobs are read from wherever they were written, so switching keeps older blobs readable.
   */
  blobDir: setting(
    'SMGW_BLOB_DIR',
    text,
    undefined,
    'folder for the encrypted contents of message blobs (unset: in PostgreSQL)',
  ),
  /** New blobs of one period share a key-encryption key; retiring it once its blobs are purged makes them unreadable. */
  kekPeriod: setting('SMGW_KEK_PERIOD', duration, '1d', 'period of one key-encryption key of message blobs'),
  /** How long the blobs of a finished message (every recipient done) are kept before they are purged. */
  messageRetention: setting(
    'SMGW_MESSAGE_RETENTION',
    duration,
    '7d',
    'how long the contents of finished messages are kept',
  ),
  maxMessageBytes: setting('SMGW_MAX_MESSAGE_BYTES', integer(1024, 2 ** 31), '52428800', 'SMTP SIZE limit'),
  /**
   * Ingest scans a message of at most this many bytes (as stored) itself, from memory, before its 250: clean mail
   * skips the scan stage's queue hop and blob read. Anything else still goes to scan. 0: every message goes to scan.
   */
  ingestScanMaxBytes: setting(
    'SMGW_INGEST_SCAN_MAX_BYTES',
    integer(0, 16 * 1024 * 1024),
    '262144',
    'messages up to this size are scanned by ingest itself (0: all by the scan stage)',
  ),
  mailboxQuotaBytes: setting('SMGW_MAILBOX_QUOTA_BYTES', integer(0, 2 ** 40), '31457280', 'portal mailbox quota'),
  /** Text and attachments of one message a portal user writes, together (its Sent copy counts against the quota). */
  portalMaxUploadBytes: setting(
    'SMGW_PORTAL_MAX_UPLOAD_BYTES',
    integer(1024, 2 ** 31),
    '20971520',
    'largest message a portal user may write (text and attachments)',
  ),
  /** The recipient's PIN comes in a second mail, this long after the activation link (the sender gets it at once). */
  pinDelay: setting('SMGW_PIN_DELAY', duration, '5m', 'delay of the PIN mail after the activation link mail'),
  activationLinkLifetime: setting(
    'SMGW_ACTIVATION_LINK_LIFETIME',
    duration,
    '14d',
    'how long a portal activation link and its PIN stay valid',
  ),
  /**
   * A re-activation link (a forgotten password, or an operator's resend) sets a new password: whoever finds the mail
   * later (a shared computer, a mailbox read by someone else) takes the mailbox over. It lives far shorter than an
   * activation link, and longer than SMGW_PIN_DELAY (its PIN comes that much later).
   */
  reactivationLinkLifetime: setting(
    'SMGW_REACTIVATION_LINK_LIFETIME',
    duration,
    '24h',
    'how long a portal re-activation (password reset) link and its PIN stay valid',
  ),
  hostname: setting('SMGW_HOSTNAME', text, 'smgw.localhost', 'name in the SMTP greeting, Received and DSNs'),
  tlsCertFile: setting('SMGW_TLS_CERT_FILE', text, undefined, 'PEM certificate (chain) for STARTTLS'),
  tlsKeyFile: setting('SMGW_TLS_KEY_FILE', text, undefined, 'PEM private key for STARTTLS'),
  logLevel: setting('SMGW_LOG_LEVEL', text, 'info', 'pino log level'),
  /** Retry ladder of deliver: RFC 5321 §4.5.4.1 asks for at least 4–5 days before giving up. */
  deliverRetryLadder: setting(
    'SMGW_DELIVER_RETRY_LADDER',
    delayList,
    '5m,10m,20m,40m,1h,2h,4h,8h,12h,12h,12h,12h,12h,12h,12h',
    'delays between delivery attempts; after the last one the sender gets a DSN',
  ),
  /** Retry ladder of every other stage (infrastructure errors); after the last step the envelope is parked. */
  stageRetryLadder: setting(
    'SMGW_STAGE_RETRY_LADDER',
    delayList,
    '10s,30s,1m,5m,15m,30m,1h,2h,4h',
    'delays between attempts at a stage before it parks the envelope',
  ),
  prefetch: setting('SMGW_PREFETCH', integer(1, 1000), '16', 'envelopes in flight per replica'),
  /**
   * encrypt: the CPU time the decryptions of one inbound message may take in all in their worker threads (every
   * recipient's keys, every layer; seconds of CPU, not by the clock, so a loaded pod does not cut an honest message;
   * one stuck for 5 times that by the clock is stopped too); then the worker thread is stopped and the message goes on
   * as one the gateway cannot open. openpgp reads content written in 1-byte partial lengths at ~1 s of CPU per MB; an
   * honest 50 MB message opens in a few seconds.
   */
  decryptTimeLimitSeconds: setting(
    'SMGW_DECRYPT_TIME_LIMIT_SECONDS',
    integer(1, 3600),
    '30',
    'seconds of CPU for all decryptions of one inbound message; then it goes on not decrypted',
  ),
  /** encrypt: worker threads that decrypt inbound mail (each ~45 MB, started when first needed). */
  decryptWorkers: setting('SMGW_DECRYPT_WORKERS', integer(1, 64), '2', 'worker threads decrypting inbound mail'),
  maxConnectionsPerClient: setting(
    'SMGW_SMTP_MAX_CONNECTIONS_PER_CLIENT',
    integer(1, 100000),
    '20',
    'concurrent SMTP connections from one client address',
  ),
  /**
   * Concurrent connections per network (IPv4 /24, IPv6 /48): addresses of one network are cheap (a /48 from a tunnel
   * broker holds 65,536 /64s), so the per-client limit alone let one holder fill SMGW_SMTP_MAX_CLIENTS. A setting:
   * a big provider's mail servers may share a /24.
   */
  maxConnectionsPerNetwork: setting(
    'SMGW_SMTP_MAX_CONNECTIONS_PER_NETWORK',
    integer(1, 1_000_000),
    '100',
    'concurrent SMTP connections from one IPv4 /24 or IPv6 /48',
  ),
  /** Every client at once, over both listeners of one replica (smtp-server answers 421 above it). */
  maxClients: setting('SMGW_SMTP_MAX_CLIENTS', integer(1, 1_000_000), '1000', 'concurrent SMTP clients per listener'),
  /**
   * IPv6 clients are counted per network of this prefix length, not per address: anyone holds a whole /64, so
   * counting single addresses would let one client open millions of "different" connections.
   */
  ipv6ClientPrefix: setting(
    'SMGW_SMTP_IPV6_CLIENT_PREFIX',
    integer(32, 128),
    '64',
    'IPv6 prefix length that counts as one client for the SMTP limits',
  ),
  /**
   * The internet may not use an agency domain as envelope sender on the MX port (it would speak as the agency);
   * these addresses or domains are the exceptions (an agency's external newsletter service, say).
   */
  mxAgencySenderExceptions: setting(
    'SMGW_MX_AGENCY_SENDER_EXCEPTIONS',
    domainOrAddressList,
    '',
    'agency addresses or domains the MX port still accepts as envelope sender',
  ),
  /**
   * Recipients on the MX port are checked against the agencies' relay before RCPT is answered, as Postfix's
   * reject_unverified_recipient does: an unknown one is refused there (550 5.1.1), so almost nothing bounces later.
   */
  recipientVerify: setting(
    'SMGW_RECIPIENT_VERIFY',
    oneOf(['relay', 'off'] as const),
    'relay',
    'verify MX recipients against SMGW_INTERNAL_RELAY at RCPT: relay | off',
  ),
  recipientVerifyKnownTtl: setting(
    'SMGW_RECIPIENT_VERIFY_KNOWN_TTL',
    duration,
    '1d',
    'how long a recipient the relay accepted is remembered',
  ),
  recipientVerifyUnknownTtl: setting(
    'SMGW_RECIPIENT_VERIFY_UNKNOWN_TTL',
    duration,
    '1h',
    'how long a recipient the relay refused is remembered',
  ),
  recipientVerifyTimeout: setting(
    'SMGW_RECIPIENT_VERIFY_TIMEOUT',
    duration,
    '10s',
    'longest wait for the relay to answer a verification probe (then 450)',
  ),
  /** Against harvesting agency addresses through the MX port: after this many unknown ones, every RCPT gets 450. */
  maxUnknownRecipients: setting(
    'SMGW_SMTP_MAX_UNKNOWN_RECIPIENTS',
    integer(1, 1_000_000),
    '20',
    'unknown recipients one client may try per SMGW_SMTP_UNKNOWN_RECIPIENT_WINDOW on the MX port',
  ),
  /**
   * The same cap per network (IPv4 /24, IPv6 /48): per client alone, a /48 guessed 65,536 × 20 addresses an hour.
   * Over it every RCPT from the whole network gets 450 (a big provider's neighbours too): a setting for that reason.
   */
  maxUnknownRecipientsPerNetwork: setting(
    'SMGW_SMTP_MAX_UNKNOWN_RECIPIENTS_PER_NETWORK',
    integer(1, 1_000_000),
    '200',
    'unknown recipients one IPv4 /24 or IPv6 /48 may try per SMGW_SMTP_UNKNOWN_RECIPIENT_WINDOW on the MX port',
  ),
  unknownRecipientWindow: setting(
    'SMGW_SMTP_UNKNOWN_RECIPIENT_WINDOW',
    duration,
    '1h',
    'window of SMGW_SMTP_MAX_UNKNOWN_RECIPIENTS, counted from the first unknown recipient',
  ),
  /** SPF, DKIM and DMARC of mail on the MX port (SPEC.md "Mail authentication"); `off` for operators without DNS. */
  mailAuth: setting(
    'SMGW_MAIL_AUTH',
    oneOf(['on', 'off'] as const),
    'on',
    'evaluate SPF, DKIM and DMARC of inbound mail and add Authentication-Results',
  ),
  dmarcReject: setting(
    'SMGW_DMARC_REJECT',
    bool,
    'true',
    'refuse (550 5.7.1) inbound mail that fails DMARC of a p=reject domain; false only marks it',
  ),
  /** What a DNS failure (timeout, SERVFAIL) during DMARC means: the mark `dmarc=temperror`, or also a 451. */
  dnsFailure: setting(
    'SMGW_DNS_FAILURE',
    oneOf(['mark', 'defer'] as const),
    'mark',
    'DNS failure while evaluating DMARC: mark (temperror, accepted) or defer (451 4.4.3)',
  ),
  dnsResolvers: setting(
    'SMGW_DNS_RESOLVERS',
    dnsServerList,
    '',
    'DNS servers for SPF, DKIM and DMARC (ip or ip:port, comma-separated); empty: the system resolver',
  ),
  dnsTimeoutMs: setting('SMGW_DNS_TIMEOUT_MS', integer(50, 60_000), '5000', 'timeout of one DNS query'),
  /** How long ingest keeps a DNS answer of SPF, DKIM and DMARC (services/ingest/src/dns-cache.ts); 0: not at all. */
  dnsCacheSeconds: setting(
    'SMGW_DNS_CACHE_SECONDS',
    integer(0, 3600),
    '30',
    'how long DNS answers for SPF, DKIM and DMARC are kept (0: asked for every message)',
  ),
  maxRecipients: setting('SMGW_SMTP_MAX_RECIPIENTS', integer(1, 10000), '100', 'recipients per message'),
  /**
   * Against a stolen submission account flooding the queues and the citizens' portal mailboxes (whose quota all
   * agencies share): messages (counted at MAIL FROM) and recipients (at RCPT) per account and clock hour, over every
   * replica (services/ingest/src/rate-limits.ts). An agency clerk sends a few hundred a day at most.
   */
  submissionMessagesPerHour: setting(
    'SMGW_SUBMISSION_MESSAGES_PER_HOUR',
    integer(1, 1_000_000_000),
    '2000',
    'messages one submission account may send per hour (451 4.7.1 at MAIL FROM beyond)',
  ),
  submissionRecipientsPerHour: setting(
    'SMGW_SUBMISSION_RECIPIENTS_PER_HOUR',
    integer(1, 1_000_000_000),
    '5000',
    'recipients one submission account may address per hour (452 4.7.1 at RCPT beyond)',
  ),
  /**
   * Bytes of messages (as the client sends them, what SIZE= declares) per account and clock hour: the message and
   * recipient limits alone let a stolen account send 2000 × SMGW_MAX_MESSAGE_BYTES an hour (100 GB through the
   * queues, the blob store and the relay). 2 GiB is some 40 messages of the largest size, hundreds of a clerk's usual
   * ones. Counted at the end of DATA; at least SMGW_MAX_MESSAGE_BYTES (checkSubmissionByteLimits), or a message of
   * the largest size could never pass.
   */
  submissionBytesPerHour: setting(
    'SMGW_SUBMISSION_BYTES_PER_HOUR',
    integer(1024, 2 ** 50),
    '2147483648',
    'message bytes one submission account may send per hour (451 4.7.1 at the end of DATA, or at MAIL FROM by SIZE=, beyond)',
  ),
  /**
   * The same for a client of SMGW_SUBMISSION_NETWORKS that does not AUTH, per client address: an agency's mail server
   * sends for all its users, so more, but a compromised one is bounded too.
   */
  submissionNetworkMessagesPerHour: setting(
    'SMGW_SUBMISSION_NETWORK_MESSAGES_PER_HOUR',
    integer(1, 1_000_000_000),
    '20000',
    'messages one client address of SMGW_SUBMISSION_NETWORKS may send per hour without AUTH',
  ),
  submissionNetworkRecipientsPerHour: setting(
    'SMGW_SUBMISSION_NETWORK_RECIPIENTS_PER_HOUR',
    integer(1, 1_000_000_000),
    '50000',
    'recipients one client address of SMGW_SUBMISSION_NETWORKS may address per hour without AUTH',
  ),
  submissionNetworkBytesPerHour: setting(
    'SMGW_SUBMISSION_NETWORK_BYTES_PER_HOUR',
    integer(1024, 2 ** 50),
    '21474836480',
    'message bytes one client address of SMGW_SUBMISSION_NETWORKS may send per hour without AUTH',
  ),
  /** Postfix's smtpd_hard_error_limit (services/ingest/src/smtp-server-patches.ts, isErrorReply: what counts). */
  maxErrorsPerSession: setting(
    'SMGW_SMTP_MAX_ERRORS_PER_SESSION',
    integer(1, 100_000),
    '20',
    'error replies (4xx, 5xx) an SMTP session may get between accepted messages; then 421 4.7.0 and closed',
  ),
  commandRatePerMinute: setting(
    'SMGW_SMTP_COMMANDS_PER_MINUTE',
    integer(1, 10_000_000),
    '6000',
    'SMTP commands one client address may send per minute',
  ),
  /**
   * New TLS sessions (STARTTLS answered 220) per client address and minute on the MX port, over every replica
   * (services/ingest/src/rate-limits.ts takeTlsSession); 0: no limit (Postfix's smtpd_client_new_tls_session_rate_limit,
   * whose default is 0). Each handshake costs a signature of the server key (about 2.25 ms of CPU with RSA-3072), and
   * one client at 10 connections drove 52 a second: 120 a minute is 0.5 % of a core per client, and two a second for a
   * sending MTA that opens a connection per message, which caching MTAs (Postfix, Exchange) never come near. Beyond
   * it: 421 4.7.0 to STARTTLS, closed before any handshake (the client tries again later; a 454 would let an
   * opportunistic client carry on in the clear).
   */
  mxTlsSessionsPerMinute: setting(
    'SMGW_SMTP_TLS_SESSIONS_PER_MINUTE',
    integer(0, 10_000_000),
    '120',
    'new TLS sessions (STARTTLS) one client address may start per minute on the MX port (0: no limit)',
  ),
  /** The same per network (IPv4 /24, IPv6 /48): addresses of one network are cheap; a big provider shares a /24. */
  mxTlsSessionsPerMinutePerNetwork: setting(
    'SMGW_SMTP_TLS_SESSIONS_PER_MINUTE_PER_NETWORK',
    integer(0, 10_000_000),
    '600',
    'new TLS sessions one IPv4 /24 or IPv6 /48 may start per minute on the MX port, all its clients together (0: no limit)',
  ),
  /**
   * The same on the submission port, higher: an agency's mail server may open a connection per message, with many at
   * once (600 a minute is 36,000 an hour, more than SMGW_SUBMISSION_NETWORK_MESSAGES_PER_HOUR lets it send), and the
   * agencies' servers may share one network.
   */
  submissionTlsSessionsPerMinute: setting(
    'SMGW_SUBMISSION_TLS_SESSIONS_PER_MINUTE',
    integer(0, 10_000_000),
    '600',
    'new TLS sessions (STARTTLS) one client address may start per minute on the submission port (0: no limit)',
  ),
  submissionTlsSessionsPerMinutePerNetwork: setting(
    'SMGW_SUBMISSION_TLS_SESSIONS_PER_MINUTE_PER_NETWORK',
    integer(0, 10_000_000),
    '3000',
    'new TLS sessions one IPv4 /24 or IPv6 /48 may start per minute on the submission port (0: no limit)',
  ),
  /**
   * Skip smtp-server's fixed 100 ms early-talker pause for clients in SMGW_SUBMISSION_NETWORKS (trusted agency mail
   * servers that reconnect per message). Early talkers from everywhere else are still caught.
   */
  /** RFC 2920 for clients outside SMGW_SUBMISSION_NETWORKS without AUTH: content before the 354 → 554, closed. */
  forbidUnauthPipelining: setting(
    'SMGW_SMTP_FORBID_UNAUTH_PIPELINING',
    bool,
    'true',
    'close unauthenticated clients that send past DATA or STARTTLS before the reply (554 5.5.0)',
  ),
  fastGreetingForTrusted: setting(
    'SMGW_SMTP_FAST_GREETING_TRUSTED',
    bool,
    'true',
    'greet trusted networks without the 100 ms early-talker pause',
  ),
  /** Port of the /healthz, /readyz, /metrics server of a worker service (admin serves them on its own port). */
  healthPort: setting('SMGW_HEALTH_PORT', port, '0', 'health and metrics port of this service'),
  healthBind: setting('SMGW_HEALTH_BIND', text, '127.0.0.1', 'address the health server binds to'),
  deliverConnectionsPerDestination: setting(
    'SMGW_DELIVER_CONNECTIONS_PER_DESTINATION',
    integer(1, 100),
    '5',
    'pooled SMTP connections deliver keeps per destination',
  ),
  deliverTimeoutMs: setting('SMGW_DELIVER_TIMEOUT_MS', integer(1000, 3_600_000), '300000', 'SMTP timeout per attempt'),
  /** Where deliver's own SMTP client may use STARTTLS opportunistically; tests with self-signed sinks keep it. */
  deliverRequireTlsOutside: setting(
    'SMGW_DELIVER_REQUIRE_TLS_OUTSIDE',
    bool,
    'false',
    'refuse to hand outbound mail to a server without STARTTLS (the smarthost: without a certificate valid for its name)',
  ),
  /**
   * DKIM signing of the gateway's own mail (DSNs, notices, PIN mails): d= of the signature; unset, nothing is signed.
   * Only mail whose From domain is this domain or a subdomain of it is signed.
   */
  dkimDomain: setting(
    'SMGW_DKIM_DOMAIN',
    singleDomain,
    undefined,
    "signing domain (d=) of the gateway's own mail; unset: not signed",
  ),
  dkimSelector: setting(
    'SMGW_DKIM_SELECTOR',
    dkimSelector,
    'smgw',
    'DKIM selector (s=): the key is published at <selector>._domainkey.<SMGW_DKIM_DOMAIN>',
  ),
  /** Read and checked at start; secret: the value is a path, but what the parser returns holds the key. */
  dkimKey: setting(
    'SMGW_DKIM_KEY_FILE',
    dkimPrivateKeyFile,
    undefined,
    'PEM private key of the DKIM signature (RSA 2048+ or Ed25519); required with SMGW_DKIM_DOMAIN',
    { secret: true },
  ),
  /** How long a quarantined message is kept before the reaper purges it (and its blob, if nothing else uses it). */
  quarantineRetention: setting('SMGW_QUARANTINE_RETENTION', duration, '30d', 'how long quarantined messages are kept'),
  /** How often the lifecycle reaper runs its sweeps (expiry, retention, garbage collection). */
  reaperInterval: setting('SMGW_REAPER_INTERVAL', duration, '10m', 'how often the lifecycle reaper sweeps'),
  /** Portal mailbox inactivity, each from the start of the period (last login, else activation, else creation). */
  inactivityFirstWarning: setting(
    'SMGW_INACTIVITY_FIRST_WARNING',
    duration,
    '180d',
    'inactivity after which a portal mailbox gets its first warning',
  ),
  inactivitySecondWarning: setting(
    'SMGW_INACTIVITY_SECOND_WARNING',
    duration,
    '194d',
    'inactivity after which a portal mailbox gets its second warning',
  ),
  inactivityDeletion: setting(
    'SMGW_INACTIVITY_DELETION',
    duration,
    '208d',
    'inactivity after which a warned portal mailbox is deleted for good',
  ),
  inactivityMinMessageAge: setting(
    'SMGW_INACTIVITY_MIN_MESSAGE_AGE',
    duration,
    '30d',
    'an inactive mailbox is deleted only when its newest message is older than this',
  ),
  /** How long the trace (message rows, recipients, events, deliveries) of a finished message is kept. */
  traceRetention: setting('SMGW_TRACE_RETENTION', duration, '90d', 'how long the trace of finished messages is kept'),
  refusedMessageGrace: setting(
    'SMGW_REFUSED_MESSAGE_GRACE',
    duration,
    '1d',
    'how long the blob and trace of a message ingest answered 451 for (broker refused) are kept before collection',
  ),
  parkedRetention: setting(
    'SMGW_PARKED_RETENTION',
    duration,
    '30d',
    'how long a parked envelope waits for an operator before SMGW_PARKED_ACTION applies',
  ),
  parkedAction: setting(
    'SMGW_PARKED_ACTION',
    oneOf(['report', 'remove'] as const),
    'report',
    'parked envelopes past SMGW_PARKED_RETENTION: report (log and metric only) | remove (give the message up)',
  ),
  /** Who is told about a virus in inbound mail; unset: postmaster@ the (first) recipient's domain. */
  inboundVirusNoticeTo: setting(
    'SMGW_INBOUND_VIRUS_NOTICE_TO',
    text,
    undefined,
    'address told about viruses in inbound mail (default postmaster@<recipient domain>)',
  ),
  /**
   * A stranger who sends thousands of infected messages to an agency would make scan send its postmaster a notice
   * each: per notice address, hour and sender network (IPv4 /24, IPv6 /48) only this many go out, the last saying
   * so; the rest are in the quarantine listing and the trace (noticesWithheld). 0: no notices about inbound mail.
   */
  inboundVirusNoticesPerHour: setting(
    'SMGW_INBOUND_VIRUS_NOTICES_PER_HOUR',
    integer(0, 100_000),
    '10',
    'notices about viruses in inbound mail per notice address, hour and sender network (IPv4 /24, IPv6 /48)',
  ),
  /**
   * A botnet sends from many networks, each under SMGW_INBOUND_VIRUS_NOTICES_PER_HOUR: over all networks together only
   * this many notices per notice address and hour go out, the last saying so; the rest as above. 0: none.
   */
  inboundVirusNoticesPerHourTotal: setting(
    'SMGW_INBOUND_VIRUS_NOTICES_PER_HOUR_TOTAL',
    integer(0, 100_000),
    '50',
    'notices about viruses in inbound mail per notice address and hour, over all sender networks',
  ),
  /**
   * Revocation checking of certificates (key directory, encrypt): `require` refuses a certificate whose revocation
   * status cannot be established (fail closed), `prefer` checks what can be fetched, `off` does not check.
   */
  revocationMode: setting(
    'SMGW_REVOCATION_MODE',
    oneOf(['require', 'prefer', 'off'] as const),
    'require',
    'certificate revocation checking: require | prefer | off',
  ),
  /**
   * CRL and OCSP fetches go to public addresses only; these networks and host:port endpoints may be reached
   * although loopback, private, link-local or multicast (an internal CRL server).
   */
  revocationAllow: setting(
    'SMGW_REVOCATION_ALLOW',
    allowList,
    '',
    'networks (CIDR) or host:port that CRL/OCSP fetches may reach although not public',
  ),
} as const;

/**
 * The settings of every service that stores or reads message blobs (encrypted at rest under keys of the key store):
 * spread into its spec. Required there: without them no blob can be written or read.
 */
export const blobStoreSettings = {
  masterKey: setting('SMGW_MASTER_KEY', base64Key(32), undefined, settings.masterKey.help, {
    secret: true,
    required: true,
  }),
  masterKeyPrevious: settings.masterKeyPrevious,
  keyStoreDir: setting('SMGW_KEY_STORE_DIR', text, undefined, settings.keyStoreDir.help, { required: true }),
  blobDir: settings.blobDir,
  kekPeriod: settings.kekPeriod,
};
