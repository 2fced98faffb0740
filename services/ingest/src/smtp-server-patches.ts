// Three small changes to smtp-server's private SMTPConnection, for the servers ingest starts and no others:
//
// 1. Fast greeting: smtp-server always waits 100 ms before the greeting to catch early talkers (LIBRARY-NOTES.md
//    §1) and has no option for it. For a client `greetImmediately` approves (trusted agency networks), `init` sets
//    up the socket and greets at once; every other client keeps the pause and gets `421 You talk too soon`.
// 2. A hook before every command (`beforeCommand`), for the per-client command rate: smtp-server has no such hook.
// 3. Our own enhanced status codes: smtp-server puts a generic one in front of every reply text (550 → 5.1.1), so a
//    reply text that starts with its own code ("5.7.1 Relaying denied") is sent as written.
// 4. Pipelining rules for unauthenticated clients (`forbidUnauthPipelining`, pipelining-guard.ts): a listener on the
//    raw socket, registered before smtp-server pipes it into its parser, sees each chunk first; a client that sends
//    content before our 354 (or anything after STARTTLS before the handshake) gets 554 5.5.0 and is closed, and the
//    chunk never reaches the parser.
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
  beforeCommand?: (session: SMTPServerSession) => Promise<{ responseCode: number; message: string } | undefined>;
  /** Enforce RFC 2920's pipelining rules on this (unauthenticated, untrusted) client. */
  forbidUnauthPipelining?: (remoteAddress: string) => boolean;
  /** Told of each client closed for breaking them (for the log). */
  onPipeliningViolation?: (session: SMTPServerSession, violation: PipeliningViolation) => void;
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
  return problems;
}

// The private members the patches touch (declared in smtp-server's own types, but not public API).
type Connection = SMTPConnection & {
  _server: SMTPServer;
  _socket: NodeJS.ReadableStream & { on(event: 'data', listener: (chunk: Buffer) => void): unknown };
  _parser: { isClosed: boolean } | false;
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
    if (!beforeCommand || !this._ready || this._upgrading || this._closing || this._closed) {
      return originalOnCommand.call(this, command, callback);
    }
    const next = () => callback?.();
    beforeCommand(this.session).then(
      (refusal) => {
        if (this._closing || this._closed) return next();
        if (!refusal) return originalOnCommand.call(this, command, callback);
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
    if (typeof data === 'string' && ENHANCED_CODE_PREFIX.test(data) && hooksByServer.has(this._server)) {
      return originalSend.call(this, code, data, false);
    }
    return originalSend.call(this, code, data, context);
  };
  installed = true;
}
