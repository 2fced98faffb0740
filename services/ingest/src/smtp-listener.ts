// One SMTP listener (inbound MX or submission) on smtp-server: the session hooks call the policies, limits and
// acceptMessage; this file only translates between smtp-server's callbacks and those plain functions.
import { type Cidr, inNetworks, MAX_ADDRESS_OCTETS, withNormalDomain } from '@smgw/config';
import type { Pool } from '@smgw/db';
import type { Logger } from '@smgw/observability';
import {
  type AuthenticatedAccount,
  currentSubmissionAccount,
  type SubmissionAccount,
  verifySubmissionLogin,
} from '@smgw/submission-accounts';
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerAuthentication,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from 'smtp-server';
import { type AcceptDeps, acceptMessage } from './accept-message.ts';
import { BareLineEndingGuard } from './bare-line-ending-guard.ts';
import type { IngestMetrics } from './metrics.ts';
import type { AuthAttempt, RateLimits, SubmissionCount, SubmissionSender, TakenAuthAttempt } from './rate-limits.ts';
import { decideRecipient, type Listener } from './recipient-policy.ts';
import type { RecipientVerification } from './recipient-verification.ts';
import {
  decideInboundSender,
  decideSubmissionSender,
  mayAppearAsInboundAuthor,
  mayUseSenderAddress,
} from './sender-policy.ts';
import {
  type LimitReplyCode,
  limitRefusal,
  queuedReply,
  type ReplyCode,
  refusal,
  type SmtpReplyError,
} from './smtp-replies.ts';
import { attachConnectionHooks, guardTlsSocket } from './smtp-server-patches.ts';
import { SMTP_TLS_POLICY, type TlsCredentials } from './tls.ts';

/** How long stopping lets messages that are being received finish before their sessions are closed. */
export const DRAIN_TIMEOUT_MS = 60_000;

// Session limits against clients that keep a session open without end (slow-loris: a byte or a NOOP every 59 s
// keeps smtp-server's 60 s idle timeout from firing; 50 addresses at 20 sessions each fill SMGW_SMTP_MAX_CLIENTS).
// Constants: they bound what a client may take, not how much mail an agency gets, so nothing to tune.
/** A command line must arrive whole within this of our last reply (RFC 5321 §4.5.3.2.7: the server's 5 minutes). */
export const COMMAND_DEADLINE_MS = 5 * 60_000;
/**
 * A message (354 to final dot) may take 10 minutes, plus 1 minute for each MiB received, counted up to
 * SMGW_MAX_MESSAGE_BYTES: after the first 10 minutes that is an average of 1 MiB a minute (about 140 kbit/s), so a
 * 50 MiB message over a slow line still passes (60 minutes at most), while a client trickling bytes is cut off
 * after 10 minutes. Smaller is not kinder to anyone: the whole message has to come in one go anyway.
 */
export const DATA_DEADLINE_BASE_MS = 10 * 60_000;
export const DATA_DEADLINE_PER_MIB_MS = 60_000;
/**
 * NOOP, RSET, HELP, VRFY, EXPN, HELO, EHLO per session between two accepted messages (Postfix's
 * smtpd_junk_command_limit is 100 and only adds to an error count; a real MTA sends two or three per message).
 */
export const MAX_JUNK_COMMANDS = 20;
/**
 * `452 4.5.3 Too many recipients` replies a session may get between accepted messages before each further one counts
 * as an error (SMGW_SMTP_MAX_ERRORS_PER_SESSION): a client that sends more recipients than we take is told to send
 * the rest in another transaction, which is no error of its own (Postfix's smtpd_recipient_overshoot_limit).
 */
export const RECIPIENT_OVERSHOOT_LIMIT = 1000;

export interface ListenerOptions {
  /**
   * TESTS ONLY: shorter session deadlines (COMMAND_DEADLINE_MS, DATA_DEADLINE_BASE_MS, DATA_DEADLINE_PER_MIB_MS),
   * so a test does not wait minutes. Never set from configuration or by main.ts.
   */
  testOnlyDeadlines?: { commandMs: number; dataBaseMs: number; dataPerMiBMs: number };
  /**
   * TESTS ONLY: the clock the per-minute windows of new TLS sessions are read by (Date.now otherwise), so a test is
   * not cut by a minute turning and can let a window pass. Never set from configuration or by main.ts.
   */
  testOnlyClock?: () => number;
}

export interface ListenerSettings {
  hostname: string;
  internalDomains: string[];
  submissionNetworks: Cidr[];
  maxMessageBytes: number;
  maxRecipients: number;
  maxErrorsPerSession: number;
  maxClients: number;
  mxAgencySenderExceptions: string[];
  fastGreetingForTrusted: boolean;
  forbidUnauthPipelining: boolean;
}

export interface ListenerDeps {
  settings: ListenerSettings;
  tls: TlsCredentials;
  pool: Pool;
  accept: Omit<AcceptDeps, 'log'>;
  rateLimits: RateLimits;
  recipientVerification: RecipientVerification;
  metrics: IngestMetrics;
  log: Logger;
}

/** What we keep per session beside smtp-server's own session object. */
interface SessionState {
  /** openConnection counted this session (so onClose uncounts it). */
  counted: boolean;
  closed: boolean;
}

export interface SmtpListener {
  listener: Listener;
  server: SMTPServer;
  /** onData calls still running (a message being stored, recorded, published). */
  inFlight: Set<Promise<void>>;
}

export function createSmtpListener(
  listener: Listener,
  deps: ListenerDeps,
  listenerOptions: ListenerOptions = {},
): SmtpListener {
  const { settings, rateLimits, metrics } = deps;
  const log = deps.log.child({ listener });
  const sessions = new WeakMap<SMTPServerSession, SessionState>();
  const inFlight = new Set<Promise<void>>();
  const stateOf = (session: SMTPServerSession) => {
    let state = sessions.get(session);
    if (!state) {
      state = { counted: false, closed: false };
      sessions.set(session, state);
    }
    return state;
  };
  const trusted = (ip: string) => inNetworks(ip, settings.submissionNetworks);
  const sessionLog = (session: SMTPServerSession) => log.child({ session: session.id, ip: session.remoteAddress });
  const refuse = (
    session: SMTPServerSession,
    code: ReplyCode,
    detail: Record<string, unknown> = {},
    cause?: unknown,
  ) => {
    const level = code === 'REDIS_UNAVAILABLE' || code === 'ACCOUNT_DISABLED' ? 'warn' : 'info';
    sessionLog(session)[level]({ code, ...detail, ...(cause ? { err: cause } : {}) }, `refused: ${code}`);
    return refusal(code, cause);
  };

  const options: SMTPServerOptions = {
    name: settings.hostname,
    key: deps.tls.key,
    cert: deps.tls.cert,
    ...SMTP_TLS_POLICY,
    size: settings.maxMessageBytes,
    // smtp-server answers 421 to clients beyond this many at once on this listener.
    maxClients: settings.maxClients,
    hideENHANCEDSTATUSCODES: false,
    hideDSN: false,
    // Addresses travel on to agency servers and MTAs that may not speak SMTPUTF8; not offered for now.
    hideSMTPUTF8: true,
    disableReverseLookup: true,
    // smtp-server's own deadline for sessions at close; ours (DRAIN_TIMEOUT_MS, in service.ts) comes first.
    closeTimeout: DRAIN_TIMEOUT_MS + 5000,
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: false,
    // Submission decides in onMailFrom (trusted network or AUTH); the MX listener has no AUTH at all.
    authOptional: true,
    disabledCommands: listener === 'inbound' ? ['AUTH'] : [],
    // smtp-server's own lines (connections, TLS, AUTH results) go to our log; it adds component: 'smtp-server'.
    logger: log as unknown as SMTPServerOptions['logger'],

    onConnect(session, callback) {
      const state = stateOf(session);
      // AUTH is neither offered nor taken before STARTTLS: a client must not be tempted to send its password in
      // the clear (AUTH PLAIN carries it in the command itself). onSecure offers it once TLS is up.
      if (listener === 'submission' && !session.secure) session.disabledCommands = ['AUTH'];
      rateLimits.openConnection(session.remoteAddress).then(
        (allowed) => {
          if (!allowed) return callback(refuse(session, 'TOO_MANY_CONNECTIONS'));
          state.counted = true;
          metrics.connections.inc({ listener });
          // The client left while we asked Redis: give the slot back at once.
          if (state.closed) releaseConnection(session, state);
          callback();
        },
        (err: unknown) => callback(refuse(session, 'REDIS_UNAVAILABLE', {}, err)),
      );
    },

    onSecure(socket, session, callback) {
      if (listener === 'submission') session.disabledCommands = [];
      guardTlsSocket(session, socket);
      callback();
    },

    onClose(session) {
      const state = stateOf(session);
      state.closed = true;
      releaseConnection(session, state);
    },

    onAuth(auth: SMTPServerAuthentication, session, callback) {
      authenticate(auth, session).then(
        (account) => callback(null, { user: account }),
        (err: unknown) => callback(err as Error),
      );
    },

    onMailFrom(address: SMTPServerAddress, session, callback) {
      if (listener === 'inbound') {
        const inbound = decideInboundSender(
          address.address,
          settings.internalDomains,
          settings.mxAgencySenderExceptions,
        );
        if (inbound.accept) return callback();
        return callback(refuse(session, inbound.code, { mailFrom: loggedAddress(address.address) }));
      }
      const decide = (account: SubmissionAccount | undefined) => {
        const decision = decideSubmissionSender(
          { address: address.address, trustedNetwork: trusted(session.remoteAddress), account },
          settings.internalDomains,
        );
        if (!decision.accept) {
          return callback(
            refuse(session, decision.code, { mailFrom: loggedAddress(address.address), user: account?.username }),
          );
        }
        // A sender that may send is counted: a message an hour more (after the checks, so refused ones do not count),
        // unless the size it declares already does not fit in its hour's bytes (nothing counted then).
        const declared = Number((address.args as { SIZE?: string }).SIZE ?? 0);
        declaredSizeFits(session, declared).then(async (refused) =>
          callback(refused ?? (await countSubmission(session, 'messages'))),
        );
      };
      const authenticated = session.user as AuthenticatedAccount | undefined;
      if (!authenticated) return decide(undefined);
      // The account as it is now, not as it was at AUTH: a session can be kept open for days (NOOP, RSET), and an
      // operator who disables the account, changes its password or its addresses must reach it too.
      currentSubmissionAccount(deps.pool, authenticated.username).then(
        (current) => {
          if (!current || current.passwordStamp !== authenticated.passwordStamp) {
            // Logged out: the client has to AUTH again, which a disabled account or the old password cannot.
            session.user = undefined;
            return callback(
              refuse(session, 'ACCOUNT_DISABLED', {
                user: authenticated.username,
                reason: current ? 'password changed' : 'disabled or removed',
              }),
            );
          }
          // The message of this transaction (sender here, From and Sender at DATA) is judged by these rights.
          session.user = current;
          decide(current);
        },
        (err: unknown) => callback(refuse(session, 'AUTH_UNAVAILABLE', { user: authenticated.username }, err)),
      );
    },

    onRcptTo(address: SMTPServerAddress, session, callback) {
      // One spelling per mailbox (the domain's A-label): a U-label and its A-label given as two recipients went out
      // twice, and the key directory (A-labels) knew only one of them. smtp-server lists the address as it is here.
      address.address = withNormalDomain(address.address);
      const sameMailbox = (r: SMTPServerAddress) => r.address.toLowerCase() === address.address.toLowerCase();
      const known = session.envelope.rcptTo.some(sameMailbox);
      if (!known && session.envelope.rcptTo.length >= settings.maxRecipients) {
        return callback(refuse(session, 'TOO_MANY_RECIPIENTS', { limit: settings.maxRecipients }));
      }
      // smtp-server folds a repeated address into its earlier entry only when the client spelled it the same way; a
      // mailbox written another way replaces its entry here, so spellings can neither repeat a recipient nor grow the
      // list past SMGW_SMTP_MAX_RECIPIENTS (full-width letters alone give a domain thousands of spellings).
      const accepted = () => {
        if (known) session.envelope.rcptTo = session.envelope.rcptTo.filter((r) => !sameMailbox(r));
        callback();
      };
      const decision = decideRecipient(listener, address.address, settings.internalDomains);
      if (!decision.accept) return callback(refuse(session, decision.code, { rcptTo: loggedAddress(address.address) }));
      // The MX port takes only recipients the agencies' relay knows (recipient-verification.ts); submission does not
      // ask, but counts a recipient an hour more for its sender (a mailbox named again was counted already).
      if (listener !== 'inbound') {
        if (known) return accepted();
        return void countSubmission(session, 'recipients').then((refused) =>
          refused ? callback(refused) : accepted(),
        );
      }
      deps.recipientVerification.check(session.remoteAddress, address.address).then(
        (check) =>
          check.accept
            ? accepted()
            : callback(refuse(session, check.code, { rcptTo: address.address, reason: check.reason })),
        (err: unknown) => callback(refuse(session, 'REDIS_UNAVAILABLE', {}, err)),
      );
    },

    onData(stream, session, callback) {
      const work = receive(stream, session).then(
        (reply) => callback(null, reply),
        (err: unknown) => callback(err as Error),
      );
      const tracked = work.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    },
  };

  const server = new SMTPServer(options);
  quietLevelsNotLogged(server, log);
  attachConnectionHooks(server, {
    greetImmediately: (ip) => settings.fastGreetingForTrusted && trusted(ip),
    forbidUnauthPipelining: (ip) => settings.forbidUnauthPipelining && !trusted(ip),
    onPipeliningViolation: (session, violation) => {
      sessionLog(session).info({ code: 'SMTP_PIPELINING_VIOLATION', violation }, 'refused: protocol synchronization');
    },
    sessionLimits: {
      commandMs: listenerOptions.testOnlyDeadlines?.commandMs ?? COMMAND_DEADLINE_MS,
      dataBaseMs: listenerOptions.testOnlyDeadlines?.dataBaseMs ?? DATA_DEADLINE_BASE_MS,
      dataPerMiBMs: listenerOptions.testOnlyDeadlines?.dataPerMiBMs ?? DATA_DEADLINE_PER_MIB_MS,
      dataMaxBytes: settings.maxMessageBytes,
      maxJunkCommands: MAX_JUNK_COMMANDS,
      maxErrors: settings.maxErrorsPerSession,
      recipientOvershootLimit: RECIPIENT_OVERSHOOT_LIMIT,
    },
    onSessionLimit: (session, limit) => refuse(session, limit),
    beforeCommand: async (session, command) => {
      try {
        if (!(await rateLimits.countCommand(session.remoteAddress))) return refuse(session, 'COMMAND_RATE_EXCEEDED');
        if (!session.secure && startsTls(command)) return await takeTlsSession(session);
        return undefined;
      } catch (err) {
        return refuse(session, 'REDIS_UNAVAILABLE', {}, err);
      }
    },
  });
  // smtp-server emits connection-level errors (TLS handshakes, sockets); unhandled they would end the process.
  server.on('error', (err: Error & { code?: string }) => {
    log.warn({ code: 'SMTP_SESSION_ERROR', err, errorCode: err.code }, 'SMTP session error');
  });

  /**
   * Counts the new TLS session a STARTTLS asks for, before smtp-server answers 220 and starts the handshake; the
   * refusal (421, closed) when the client or its network has had its limit of them this minute on this listener,
   * logged naming which limit and counted in a metric. Redis errors are thrown (the caller answers 421 4.3.0).
   */
  async function takeTlsSession(session: SMTPServerSession): Promise<SmtpReplyError | undefined> {
    const now = listenerOptions.testOnlyClock?.() ?? Date.now();
    const grant = await rateLimits.takeTlsSession(session.remoteAddress, listener, now);
    if (grant.allowed) return undefined;
    metrics.tlsSessionsLimited.inc({ listener, limit: grant.limit });
    return refuse(session, 'TLS_SESSION_RATE_EXCEEDED', { limit: grant.limit, max: grant.max });
  }

  /**
   * Counts a message (at MAIL FROM) or a recipient (at RCPT) of a submission session's sender: its account, else its
   * client address (a trusted network without AUTH). The refusal when that is over the sender's hourly limit, logged
   * as a warning naming the account or address (a stolen account shows itself here) and counted in a metric.
   */
  async function countSubmission(
    session: SMTPServerSession,
    kind: SubmissionCount,
  ): Promise<SmtpReplyError | undefined> {
    const code = kind === 'messages' ? 'SUBMISSION_MESSAGE_LIMIT' : 'SUBMISSION_RECIPIENT_LIMIT';
    return judgeSubmission(session, code, {}, (sender) => rateLimits.countSubmission(kind, sender));
  }

  /**
   * The refusal at MAIL FROM of a message whose declared SIZE= no longer fits in its sender's bytes of the hour
   * (counting nothing: the real size is counted at the end of DATA, by acceptMessage). Without SIZE=, no question.
   */
  async function declaredSizeFits(session: SMTPServerSession, declared: number) {
    if (!declared) return undefined;
    return judgeSubmission(session, 'SUBMISSION_BYTE_LIMIT', { declaredSize: declared }, (sender) =>
      rateLimits.submissionBytesFit(sender, declared),
    );
  }

  /** A submission session's sender: its account, else its client address (a trusted network without AUTH). */
  function submissionSender(session: SMTPServerSession): SubmissionSender {
    const account = session.user as SubmissionAccount | undefined;
    return account ? { account: account.username } : { ip: session.remoteAddress };
  }

  /**
   * Asks an hourly limit of a submission session's sender; the refusal when it is reached, logged as a warning
   * naming the account or address (a stolen account shows itself here) and counted in a metric.
   */
  async function judgeSubmission(
    session: SMTPServerSession,
    code: LimitReplyCode,
    detail: Record<string, unknown>,
    ask: (sender: SubmissionSender) => Promise<{ allowed: boolean; max: number }>,
  ): Promise<SmtpReplyError | undefined> {
    const sender = submissionSender(session);
    let counted: { allowed: boolean; max: number };
    try {
      counted = await ask(sender);
    } catch (err) {
      return refuse(session, 'REDIS_UNAVAILABLE', {}, err);
    }
    if (counted.allowed) return undefined;
    countLimited(code, sender);
    const user = 'account' in sender ? sender.account : undefined;
    sessionLog(session).warn({ code, user, max: counted.max, ...detail }, `refused: ${code}`);
    return limitRefusal(code, counted.max);
  }

  function countLimited(code: LimitReplyCode, sender: SubmissionSender) {
    const limit = LIMITS_BY_CODE[code];
    metrics.submissionLimited.inc({ limit, sender: 'account' in sender ? 'account' : 'network' });
  }

  function releaseConnection(session: SMTPServerSession, state: SessionState) {
    if (!state.counted) return;
    state.counted = false;
    metrics.connections.dec({ listener });
    rateLimits.closeConnection(session.remoteAddress).catch((err: unknown) => {
      sessionLog(session).warn({ code: 'REDIS_UNAVAILABLE', err }, 'cannot uncount a closed connection');
    });
  }

  async function authenticate(auth: SMTPServerAuthentication, session: SMTPServerSession) {
    const username = auth.username ?? '';
    if ((auth.method !== 'PLAIN' && auth.method !== 'LOGIN') || typeof auth.password !== 'string') {
      throw refuse(session, 'AUTH_FAILED', { user: username, method: auth.method });
    }
    // Counted per client and per account before the password is checked (rate-limits.ts): parallel guesses cannot all
    // pass, from one address or from many.
    let attempt: AuthAttempt;
    try {
      attempt = await rateLimits.takeAuthAttempt(session.remoteAddress, username);
    } catch (err) {
      throw refuse(session, 'REDIS_UNAVAILABLE', {}, err);
    }
    if (!attempt.taken) throw refuse(session, 'AUTH_RATE_LIMITED', { user: username, limit: attempt.limit });
    let account: AuthenticatedAccount | undefined;
    try {
      account = await verifySubmissionLogin(deps.pool, { username, password: auth.password });
    } catch (err) {
      // Not the client's failure: its attempt goes back.
      await giveBackAttempt(session, attempt, { succeeded: false });
      throw refuse(session, 'AUTH_UNAVAILABLE', {}, err);
    }
    if (!account) throw refuse(session, 'AUTH_FAILED', { user: username });
    await giveBackAttempt(session, attempt, { succeeded: true });
    sessionLog(session).info({ user: account.username }, 'authenticated');
    return account;
  }

  async function giveBackAttempt(
    session: SMTPServerSession,
    attempt: TakenAuthAttempt,
    outcome: { succeeded: boolean },
  ) {
    await rateLimits.returnAuthAttempt(attempt, outcome).catch((err: unknown) => {
      sessionLog(session).warn({ code: 'REDIS_UNAVAILABLE', err }, 'cannot give back a login attempt');
    });
  }

  async function receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const started = process.hrtime.bigint();
    const guard = new BareLineEndingGuard();
    // smtp-server's stream must be read to its end whatever happens, or the client never gets its reply; so it is
    // piped (not handed to the blob store, which destroys a source it gives up on) and drained on failure.
    const onGone = (err?: Error) => {
      if (!stream.readableEnded)
        guard.destroy(err ?? Object.assign(new Error('client went away'), { code: 'ECONNECTION' }));
    };
    stream.on('error', onGone);
    stream.once('close', () => onGone());
    // The guard's error reaches acceptMessage through the blob store's read of it; this listener only keeps an
    // error raised before that read starts from being an uncaught 'error' event.
    guard.on('error', () => {});
    stream.pipe(guard);

    const account = session.user as SubmissionAccount | undefined;
    const envelope = session.envelope;
    const outcome = await acceptMessage(
      { ...deps.accept, log },
      {
        listener,
        mailFrom: envelope.mailFrom ? envelope.mailFrom.address : '',
        recipients: envelope.rcptTo.map((r) => ({ address: r.address, notify: r.dsn?.notify, orcpt: r.dsn?.orcpt })),
        ret: envelope.dsn?.ret,
        envid: envelope.dsn?.envid,
        client: {
          ip: session.remoteAddress,
          helo: session.hostNameAppearsAs || '',
          ehlo: session.openingCommand === 'EHLO',
          user: account?.username,
          tls: session.secure,
          tlsCipher: session.tlsOptions
            ? `${session.tlsOptions.version}:${session.tlsOptions.standardName ?? session.tlsOptions.name}`
            : undefined,
        },
        body: guard,
        sizeExceeded: () => stream.sizeExceeded,
        clientBytes: () => stream.byteLength,
        countBytes:
          listener === 'submission'
            ? (bytes: number) => rateLimits.countSubmissionBytes(submissionSender(session), bytes)
            : undefined,
        mayUseAddress:
          listener === 'submission'
            ? (address: string) =>
                mayUseSenderAddress(
                  { trustedNetwork: trusted(session.remoteAddress), account },
                  address,
                  settings.internalDomains,
                )
            : (address: string) =>
                mayAppearAsInboundAuthor(address, settings.internalDomains, settings.mxAgencySenderExceptions),
      },
    );
    if (outcome.kind === 'refused') {
      stream.unpipe(guard);
      if (!stream.readableEnded && !stream.destroyed) stream.resume();
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    metrics.acceptDuration.observe({ listener }, seconds);
    if (outcome.kind === 'refused') {
      metrics.messages.inc({ listener, outcome: outcome.code });
      if (outcome.reply === 'SUBMISSION_BYTE_LIMIT' && outcome.max !== undefined) {
        countLimited(outcome.reply, submissionSender(session));
        throw limitRefusal(outcome.reply, outcome.max);
      }
      throw refusal(outcome.reply);
    }
    metrics.messages.inc({ listener, outcome: 'accepted' });
    metrics.bytes.inc({ listener }, outcome.blob.size);
    return queuedReply(outcome.messageId);
  }

  return { listener, server, inFlight };
}

/**
 * Whether a command line is a STARTTLS that smtp-server would answer 220 (and start a handshake) in a session not yet
 * secure, read as smtp-server reads it: the verb up to the first space (any case), then no argument (it answers 501
 * to one and starts nothing).
 */
export function startsTls(command: Buffer): boolean {
  const line = command.toString('latin1');
  return line.split(' ')[0]?.toUpperCase() === 'STARTTLS' && line.trim().split(/\s+/).length === 1;
}

/** The `limit` label of smgw_ingest_submission_limited_total for each hourly limit's refusal. */
const LIMITS_BY_CODE = {
  SUBMISSION_MESSAGE_LIMIT: 'messages',
  SUBMISSION_RECIPIENT_LIMIT: 'recipients',
  SUBMISSION_BYTE_LIMIT: 'bytes',
} as const satisfies Record<LimitReplyCode, string>;

const SMTP_SERVER_LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/**
 * smtp-server builds a log entry for every command and reply (debug) and three per connection (info), and only then
 * hands it to our logger, which drops what its level does not write: those levels become no-ops on smtp-server's
 * logger, so nothing is built for them.
 */
export function quietLevelsNotLogged(server: SMTPServer, log: Logger): void {
  for (const level of SMTP_SERVER_LOG_LEVELS) {
    if (!log.isLevelEnabled(level)) server.logger[level] = () => {};
  }
}

/**
 * An address as a refusal logs it: its first MAX_ADDRESS_OCTETS characters and its length, so a stranger's RCPT TO of
 * 16,000 characters (refused as RECIPIENT_TOO_LONG) does not go whole into a log line each time it is tried.
 */
export function loggedAddress(address: string): string {
  if (address.length <= MAX_ADDRESS_OCTETS) return address;
  return `${address.slice(0, MAX_ADDRESS_OCTETS)}… (${address.length} characters)`;
}
