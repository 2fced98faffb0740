// Small changes to smtp-server's private SMTPConnection, for the servers ingest starts and no others:
//
// 1. Fast greeting: smtp-server always waits 100 ms before the greeting to catch early talkers (LIBRARY-NOTES.md
//    §1) and has no option for it. For a client `greetImmediately` approves (trusted agency networks), `init` sets
//    up the socket and greets at once; every other client keeps the pause and gets `421 You talk too soon`.
// 2. A hook before every command (`beforeCommand`), for the per-client command rate and the new TLS sessions (a
//    STARTTLS refused there is answered before smtp-server sends its 220 and starts the handshake): smtp-server has
//    no such hook.
// 3. Our own enhanced status codes: smtp-server puts a generic one in front of every reply text (550 → 5.1.1), so a
//    reply text that starts with its own code ("5.7.1 Relaying denied") is sent as written.
// 4. Pipelining rules for unauthenticated clients (`forbidUnauthPipelining`, pipelining-guard.ts): a listener on the
//    raw socket, registered before smtp-server pipes it into its parser, sees each chunk first; a client that sends
//    content before our 354 (or anything after STARTTLS before the handshake) gets 554 5.5.0 and is closed, and the
//    chunk never reaches the parser.
// 5. Session limits (`sessionLimits`) against clients that hold a session open without end (slow-loris):
//    smtp-server's only timeout is socketTimeout, restarted by every byte. A command line must arrive whole within
//    `commandMs` of our last reply (a TLS handshake after STARTTLS too); the message after the 354 within
//    `dataBaseMs` plus `dataPerMiBMs` per MiB received (counted up to `dataMaxBytes`); and at most
//    `maxJunkCommands` commands that deliver nothing (JUNK_COMMANDS) may come between two accepted messages, and at
//    most `maxErrors` error replies (ERROR_REPLIES; Postfix's smtpd_hard_error_limit): a refused command resets the
//    command deadline as any other does, so without the error limit a client refusing itself a recipient every few
//    minutes held its session for ever. Beyond any of them the client gets the 421 `onSessionLimit` gives and is
//    closed (after an error, at once: nothing it pipelined after it runs); a message cut off is not accepted.
//
// This leans on internals, so smtp-server is pinned to one exact version and `installSmtpServerPatches` refuses to
// run (SMTP_SERVER_INCOMPATIBLE) when the version or the shape of the patched methods is not what was checked.
import type { SMTPServer, SMTPServerSession } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection';
import smtpServerPackage from 'smtp-server/package.json' with { type: 'json' };
import { PipeliningGuard, type PipeliningViolation } from './pipelining-guard.ts';

export const SUPPORTED_SMTP_SERVER_VERSION = '3.21.6';

export class SmtpServerIncompatibleError extends Error {
  readonly code = 'SMTP_SERVER_INCOMPATIBLE';
  constructor(detail: string) {
    super(
      `smtp-server ${smtpServerPackage.version} does not look like ${SUPPORTED_SMTP_SERVER_VERSION}, ` +
        `which ingest patches (${detail}); re-check services/ingest/src/smtp-server-patches.ts before upgrading`,
    );
    this.name = 'SmtpServerIncompatibleError';
  }
}

export interface ConnectionHooks {
  /** Greet this client without the 100 ms early-talker pause. */
  greetImmediately?: (remoteAddress: string) => boolean;
  /**
   * Runs before smtp-server handles a command; resolve to an error to answer with instead (`responseCode`,
   * `message`; a 421 also closes the connection), or undefined to go on.
   */
  beforeCommand?: (
    session: SMTPServerSession,
    command: Buffer,
  ) => Promise<{ responseCode: number; message: string } | undefined>;
  /** Enforce RFC 2920's pipelining rules on this (unauthenticated, untrusted) client. */
  forbidUnauthPipelining?: (remoteAddress: string) => boolean;
  /** Told of each client closed for breaking them (for the log). */
  onPipeliningViolation?: (session: SMTPServerSession, violation: PipeliningViolation) => void;
  /** Deadlines and the junk command limit of every session (see 5. above). */
  sessionLimits?: SessionLimits;
  /** The 421 (`responseCode` 421, `message`) for a session over one of them; it is sent and the session closed. */
  onSessionLimit?: (session: SMTPServerSession, limit: SessionLimit) => { responseCode: number; message: string };
}

export interface SessionLimits {
  /** How long a command line may take to arrive whole, from our last reply (or the greeting). */
  commandMs: number;
  /** How long the message after the 354 may take to arrive, to its final dot, before any bytes count... */
  dataBaseMs: number;
  /** ...and how much longer for each MiB of it received, */
  dataPerMiBMs: number;
  /** ...counting at most this many bytes (the size limit: more cannot buy time). */
  dataMaxBytes: number;
  /** Junk commands (JUNK_COMMANDS) a session may send between accepted messages; the next one gets the 421. */
  maxJunkCommands: number;
  /** Error replies (see isErrorReply) a session may get between accepted messages; the 421 follows the last. */
  maxErrors: number;
  /** 452 replies (too many recipients) between accepted messages that are no error yet (see isErrorReply). */
  recipientOvershootLimit: number;
}

export type SessionLimit = 'COMMAND_TIMEOUT' | 'DATA_TIMEOUT' | 'JUNK_COMMAND_LIMIT' | 'ERROR_LIMIT';

/**
 * Commands that deliver nothing, which a client can repeat to keep a session alive (Postfix's
 * smtpd_junk_command_limit counts NOOP, VRFY, ETRN, RSET). HELO and EHLO reset the transaction as RSET does;
 * EXPN has no handler in smtp-server (it counts it as unrecognised, too). A real MTA sends a few per message.
 */
export const JUNK_COMMANDS: ReadonlySet<string> = new Set(['NOOP', 'RSET', 'HELP', 'VRFY', 'EXPN', 'HELO', 'EHLO']);

/**
 * Whether a reply is one of the client's errors, as Postfix counts them for smtpd_hard_error_limit: every 4xx and 5xx
 * answer to a command (bad syntax, bad sequence, unknown command, refused sender or recipient, failed AUTH, a refused
 * message, and our own temporary failures, which Postfix counts too), except
 * - a 421, which ends the session anyway;
 * - a 452 (RFC 5321 §4.5.3.1.10: too many recipients, the only 452 ingest or smtp-server sends) while the session has
 *   had no more than `overshootLimit` of them: the client sends the rest in its next transaction (Postfix's
 *   smtpd_recipient_overshoot_limit); `overshoots` counts this one too.
 */
export function isErrorReply(code: number, overshoots: number, overshootLimit: number): boolean {
  if (code < 400 || code === 421) return false;
  if (code === 452) return overshoots > overshootLimit;
  return true;
}

const hooksByServer = new WeakMap<SMTPServer, ConnectionHooks>();

/** Makes the patches apply to `server` with these hooks. */
export function attachConnectionHooks(server: SMTPServer, hooks: ConnectionHooks): void {
  hooksByServer.set(server, hooks);
}

const ENHANCED_CODE_PREFIX = /^[245]\.\d{1,3}\.\d{1,3} /;

// The methods as smtp-server ships them, taken before any patch (so the check also works after installing).
const PRISTINE = {
  init: SMTPConnection.prototype.init,
  _setListeners: SMTPConnection.prototype._setListeners,
  connectionReady: SMTPConnection.prototype.connectionReady,
  _onCommand: SMTPConnection.prototype._onCommand,
  send: SMTPConnection.prototype.send,
  _onTimeout: SMTPConnection.prototype._onTimeout,
  handler_DATA: SMTPConnection.prototype.handler_DATA,
};

/**
 * What differs from the smtp-server the patches were written against (3.21.6, dist/esm/smtp-connection.js);
 * empty when the patches fit.
 */
export function smtpServerShapeProblems(
  prototype: object = PRISTINE,
  version: string = smtpServerPackage.version,
): string[] {
  const proto = prototype as Record<string, unknown>;
  const source = (name: string) => (typeof proto[name] === 'function' ? String(proto[name]) : '');
  const problems: string[] = [];
  if (version !== SUPPORTED_SMTP_SERVER_VERSION) problems.push(`version ${version}`);
  if (
    !/setTimeout\(\(\) => this\.connectionReady\(\), 100\)/.test(source('init')) ||
    !/this\._setListeners\(/.test(source('init'))
  ) {
    problems.push('init() no longer sets the 100 ms greeting timer through _setListeners');
  }
  if (typeof proto._setListeners !== 'function' || (proto._setListeners as () => void).length !== 1) {
    problems.push('_setListeners(callback) is gone');
  } else if (!source('_setListeners').includes('this._socket.pipe(this._parser)')) {
    problems.push('_setListeners no longer pipes the socket into the parser');
  }
  if (typeof proto.connectionReady !== 'function') problems.push('connectionReady() is gone');
  if (!/this\._server\.options\.maxClients && this\._server\.connections\.size > /.test(source('init'))) {
    problems.push('init() no longer checks maxClients against connections.size');
  }
  const onCommand = source('_onCommand');
  if (!onCommand.includes('if (this._upgrading)') || !onCommand.includes('if (!this._ready)')) {
    problems.push('_onCommand(command, callback) changed');
  }
  if (!source('send').includes('this._getEnhancedStatusCode(code, context)')) {
    problems.push('send(code, data, context) no longer takes the enhanced status code from its context');
  }
  // The session limits read when the client owes us input as smtp-server's own idle timeout does, when a message
  // is being received (the parser's data mode and byte count), and which reply accepted a message.
  if (
    !source('_onTimeout').includes(
      'this._handlerPending || (this._dataStream && this._parser && !this._parser._dataMode)',
    )
  ) {
    problems.push('_onTimeout() no longer tells when the client waits for us');
  }
  const data = source('handler_DATA');
  if (!data.includes('parser.startDataMode(') || !data.includes('parser.dataBytes') || !data.includes("'DATA_OK'")) {
    problems.push(
      'handler_DATA no longer starts the data mode of its parser and answers an accepted message with DATA_OK',
    );
  }
  if (!onCommand.includes('this._nextHandler'))
    problems.push('_onCommand no longer continues AUTH through _nextHandler');
  return problems;
}

// The private members the patches touch (declared in smtp-server's own types, but not public API).
type Connection = SMTPConnection & {
  _server: SMTPServer;
  _socket: NodeJS.ReadableStream & {
    on(event: 'data', listener: (chunk: Buffer) => void): unknown;
    once(event: 'close' | 'finish', listener: () => void): unknown;
    writableFinished: boolean;
    destroyed: boolean;
    destroy(): void;
  };
  _parser: { isClosed: boolean; _dataMode: boolean; dataBytes: number } | false;
};

const pipeliningGuards = new WeakMap<SMTPConnection, PipeliningGuard>();
const guardedSessions = new WeakMap<SMTPServerSession, { connection: Connection; hooks: ConnectionHooks }>();

/** Watches the client's raw bytes before the parser does (see 4. above). */
function guardPipelining(connection: Connection, hooks: ConnectionHooks): void {
  guardedSessions.set(connection.session, { connection, hooks });
  watchSocket(connection, connection._socket, hooks);
}

/**
 * After STARTTLS the client speaks on a new TLS socket: call this from onSecure, before its callback (smtp-server
 * pipes the TLS socket into the parser after it), so the rules hold inside TLS too, from its first byte.
 */
export function guardTlsSocket(session: SMTPServerSession, socket: Connection['_socket']): void {
  const guarded = guardedSessions.get(session);
  if (guarded) watchSocket(guarded.connection, socket, guarded.hooks);
}

function watchSocket(connection: Connection, socket: Connection['_socket'], hooks: ConnectionHooks): void {
  const guard = new PipeliningGuard();
  pipeliningGuards.set(connection, guard);
  socket.on('data', (chunk: Buffer) => {
    if (pipeliningGuards.get(connection) !== guard) return; // the socket before STARTTLS: TLS records now
    if (connection.session.user || connection._closing || connection._closed) return;
    const violation = guard.received(chunk);
    if (!violation) return;
    if (connection._parser) connection._parser.isClosed = true;
    hooks.onPipeliningViolation?.(connection.session, violation);
    connection.send(554, '5.5.0 Error: SMTP protocol synchronization');
    connection.close();
  });
}

/** A session's deadline and its counts since the last accepted message (see 5. above). */
interface SessionClock {
  limits: SessionLimits;
  timer?: NodeJS.Timeout;
  /** When the message after the 354 began to arrive; undefined outside DATA. */
  dataStarted?: number;
  junkCommands: number;
  errors: number;
  recipientOvershoots: number;
}

const clocks = new WeakMap<SMTPConnection, SessionClock>();
const MIB = 1024 * 1024;

function startClock(connection: Connection, limits: SessionLimits): void {
  const clock: SessionClock = { limits, junkCommands: 0, errors: 0, recipientOvershoots: 0 };
  clocks.set(connection, clock);
  // The raw socket closes last (after a TLS socket on top of it): nothing is timed after that.
  connection._socket.once('close', () => clearTimeout(clock.timer));
}

/**
 * After each reply and each command handled: the next deadline. In DATA (the parser reads the message) that of the
 * message, started once; otherwise that of the next command line, started again from now.
 */
function armDeadline(connection: Connection): void {
  const clock = clocks.get(connection);
  if (!clock || connection._closing || connection._closed) return;
  const parser = connection._parser;
  if (parser !== false && parser._dataMode) {
    if (clock.dataStarted !== undefined) return;
    clock.dataStarted = Date.now();
    setClockTimer(connection, clock, clock.limits.dataBaseMs);
    return;
  }
  clock.dataStarted = undefined;
  setClockTimer(connection, clock, clock.limits.commandMs);
}

function setClockTimer(connection: Connection, clock: SessionClock, ms: number): void {
  clearTimeout(clock.timer);
  clock.timer = setTimeout(() => deadlineReached(connection, clock), ms);
  clock.timer.unref();
}

function deadlineReached(connection: Connection, clock: SessionClock): void {
  if (connection._closing || connection._closed) return;
  const parser = connection._parser;
  if (clock.dataStarted !== undefined) {
    // The final dot came: the client waits for our reply now, which starts its next deadline.
    if (parser === false || !parser._dataMode) return;
    const { dataBaseMs, dataPerMiBMs, dataMaxBytes } = clock.limits;
    const allowed = dataBaseMs + (dataPerMiBMs * Math.min(parser.dataBytes, dataMaxBytes)) / MIB;
    const left = clock.dataStarted + allowed - Date.now();
    if (left > 0) setClockTimer(connection, clock, left);
    else endSession(connection, 'DATA_TIMEOUT');
    return;
  }
  // The client waits for us (a handler such as recipient verification, or the message being stored): not its time.
  // A TLS handshake after STARTTLS is the client's, though smtp-server counts it as the handler's.
  const waitsForUs = connection._handlerPending || (connection._dataStream && parser && !parser._dataMode);
  if (waitsForUs && !connection._upgrading) setClockTimer(connection, clock, clock.limits.commandMs);
  else endSession(connection, 'COMMAND_TIMEOUT');
}

/** The 421 of a session limit, then closed at once: a client that does not close its side holds nothing. */
function endSession(connection: Connection, limit: SessionLimit): void {
  const hooks = hooksByServer.get(connection._server);
  const reply = hooks?.onSessionLimit?.(connection.session, limit) ?? {
    responseCode: 421,
    message: 'Error: session limit exceeded',
  };
  if (connection._parser) connection._parser.isClosed = true;
  const socket = connection._socket;
  connection.send(reply.responseCode, reply.message);
  connection.close();
  // close() ends the socket and waits for the client's FIN; a message being received stays open until then.
  if (socket.writableFinished || socket.destroyed) socket.destroy();
  else socket.once('finish', () => socket.destroy());
}

/** Counts a command line that arrived; true when it is one junk command too many (the session has been ended). */
function overJunkLimit(connection: Connection, command: Buffer): boolean {
  const clock = clocks.get(connection);
  // A continuation line of AUTH is no command.
  if (!clock || connection._nextHandler) return false;
  const verb = (command || '').toString('latin1').split(' ')[0]?.toUpperCase() ?? '';
  if (!JUNK_COMMANDS.has(verb)) return false;
  clock.junkCommands++;
  if (clock.junkCommands <= clock.limits.maxJunkCommands) return false;
  clearTimeout(clock.timer);
  endSession(connection, 'JUNK_COMMAND_LIMIT');
  return true;
}

/**
 * Counts a reply just sent; true when it is the session's last error (then the session has been ended). Replies
 * outside a session's commands (the greeting's refusal, a 421) and those of a session already ending are not counted.
 */
function endedByErrorLimit(connection: Connection, code: number): boolean {
  const clock = clocks.get(connection);
  const parser = connection._parser;
  if (!clock || !connection._ready || connection._closing || connection._closed || !parser || parser.isClosed) {
    return false;
  }
  if (code === 452) clock.recipientOvershoots++;
  if (!isErrorReply(code, clock.recipientOvershoots, clock.limits.recipientOvershootLimit)) return false;
  clock.errors++;
  if (clock.errors < clock.limits.maxErrors) return false;
  clearTimeout(clock.timer);
  endSession(connection, 'ERROR_LIMIT');
  return true;
}

let installed = false;

/** Installs the patches once per process. Throws SmtpServerIncompatibleError if smtp-server changed. */
export function installSmtpServerPatches(): void {
  if (installed) return;
  const problems = smtpServerShapeProblems();
  if (problems.length > 0) throw new SmtpServerIncompatibleError(problems.join('; '));
  const proto = SMTPConnection.prototype;
  const originalInit = PRISTINE.init;
  const originalOnCommand = PRISTINE._onCommand;
  const originalSend = PRISTINE.send;

  proto.init = function init(this: Connection) {
    const hooks = hooksByServer.get(this._server);
    if (hooks?.sessionLimits) startClock(this, hooks.sessionLimits);
    // Registered before init pipes the socket into the parser, so the guard sees every chunk first.
    if (hooks?.forbidUnauthPipelining?.(this.remoteAddress)) guardPipelining(this, hooks);
    if (!hooks?.greetImmediately?.(this.remoteAddress)) return originalInit.call(this);
    this._setListeners(() => {
      // The same client cap the original init applies before its pause (SMGW_SMTP_MAX_CLIENTS).
      const { maxClients } = this._server.options;
      if (maxClients && this._server.connections.size > maxClients) {
        return this.send(421, `${this.name} Too many connected clients, try again in a moment`, false);
      }
      this.connectionReady();
    });
  };

  proto._onCommand = function _onCommand(this: Connection, command: Buffer, callback?: () => void) {
    const beforeCommand = hooksByServer.get(this._server)?.beforeCommand;
    // Before the greeting, during a TLS handshake or at shutdown smtp-server's own rules answer (or stay silent).
    if (!this._ready || this._upgrading || this._closing || this._closed) {
      return originalOnCommand.call(this, command, callback);
    }
    if (overJunkLimit(this, command)) return;
    // The line arrived whole; once it is handled (the parser reads again) the next deadline starts.
    const clock = clocks.get(this);
    if (clock) clearTimeout(clock.timer);
    const handled = () => {
      armDeadline(this);
      callback?.();
    };
    if (!beforeCommand) return originalOnCommand.call(this, command, handled);
    const next = () => handled();
    beforeCommand(this.session, command).then(
      (refusal) => {
        if (this._closing || this._closed) return next();
        if (!refusal) return originalOnCommand.call(this, command, handled);
        this.send(refusal.responseCode, refusal.message);
        next();
      },
      () => {
        this.send(421, '4.3.0 Temporary failure, please retry');
        next();
      },
    );
  };

  proto.send = function send(
    this: Connection,
    code: number,
    data?: string | string[] | null,
    context?: string | false,
  ) {
    pipeliningGuards.get(this)?.replied(code);
    const clock = clocks.get(this);
    // Counted again from each message accepted, as Postfix counts its junk commands and errors.
    if (clock && code === 250 && context === 'DATA_OK') {
      clock.junkCommands = 0;
      clock.errors = 0;
      clock.recipientOvershoots = 0;
    }
    const ownCode = typeof data === 'string' && ENHANCED_CODE_PREFIX.test(data) && hooksByServer.has(this._server);
    const sent = originalSend.call(this, code, data, ownCode ? false : context);
    if (clock && !endedByErrorLimit(this, code)) armDeadline(this);
    return sent;
  };
  installed = true;
}
