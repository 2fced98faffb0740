// Notices of changes to a rarely changed table (LISTEN/NOTIFY), for caches that must not outlive a change by more
// than the notice's trip: a trigger calls pg_notify(channel) and every listener hears it when the change commits.
// A notice sent while a listener is not connected is lost, so a cache may be trusted only while `listening`; every
// notice and every (re)connection bumps `generation`, so a reader can tell whether a snapshot it took is still
// current. A listener reconnects on its own (1 s, doubling to 30 s) and never throws at its user. A connection that
// dies without a word (a half-open TCP connection after a failover or a dropped NAT entry) would hear nothing while
// seeming to listen: TCP keepalive is on, the listener asks `select 1` every 30 s and counts a connection that does
// not answer within 10 s as lost, and readUntilChanged reads again after a minute whatever it heard.
import pg from 'pg';

export interface ChangeListener {
  /** True while LISTEN is in force: no notice can have been missed since `generation` last changed. */
  readonly listening: boolean;
  /** Grows with every notice, connection and lost connection. */
  readonly generation: number;
  close(): Promise<void>;
}

export interface ChangeListenerOptions {
  url: string;
  /** The NOTIFY channel (a plain identifier). */
  channel: string;
  applicationName?: string;
  /** First wait before reconnecting (doubling up to maxRetryMs); default 1 s. */
  retryMs?: number;
  maxRetryMs?: number;
  /** Told when the connection is lost or cannot be made (the listener retries by itself). */
  onError?: (err: Error) => void;
  /** How often a listening connection is asked whether it is still there (default 30 s), and how long it has. */
  checkEveryMs?: number;
  checkTimeoutMs?: number;
}

/** The socket under a pg client, to end a connection that no longer answers (pg has no public call for it). */
const socketOf = (client: pg.Client) =>
  (client as unknown as { connection?: { stream?: { unref?: () => void; destroy?: () => void } } }).connection?.stream;

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

export function listenForChanges(options: ChangeListenerOptions): ChangeListener {
  if (!CHANNEL.test(options.channel)) throw new Error(`bad channel name ${JSON.stringify(options.channel)}`);
  const firstRetryMs = options.retryMs ?? 1000;
  const maxRetryMs = options.maxRetryMs ?? 30_000;
  let listening = false;
  let generation = 0;
  let closed = false;
  let client: pg.Client | undefined;
  let retryMs = firstRetryMs;
  let retry: NodeJS.Timeout | undefined;
  let check: NodeJS.Timeout | undefined;
  const checkEveryMs = options.checkEveryMs ?? 30_000;
  const checkTimeoutMs = options.checkTimeoutMs ?? 10_000;

  const lost = (err: Error, from: pg.Client) => {
    if (client !== from) return;
    client = undefined;
    listening = false;
    generation += 1;
    if (check) clearInterval(check);
    check = undefined;
    from.removeAllListeners('notification');
    from.end().catch(() => {});
    socketOf(from)?.destroy?.();
    if (closed) return;
    options.onError?.(err);
    retry = setTimeout(connect, retryMs);
    retry.unref();
    retryMs = Math.min(retryMs * 2, maxRetryMs);
  };

  const connect = () => {
    retry = undefined;
    if (closed) return;
    const connection = new pg.Client({
      connectionString: options.url,
      application_name: options.applicationName ?? 'smgw-listener',
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
    });
    client = connection;
    connection.on('error', (err) => lost(err, connection));
    connection.on('end', () => lost(new Error('the listening connection ended'), connection));
    connection.on('notification', () => {
      generation += 1;
    });
    connection
      .connect()
      .then(() => connection.query(`listen ${options.channel}`))
      .then(() => {
        if (client !== connection) return;
        // Whatever changed before this moment was not heard: a new generation.
        generation += 1;
        listening = true;
        retryMs = firstRetryMs;
        // An idle listener must not keep its process alive.
        socketOf(connection)?.unref?.();
        check = setInterval(() => {
          const silent = setTimeout(
            () => lost(new Error(`the listening connection did not answer within ${checkTimeoutMs} ms`), connection),
            checkTimeoutMs,
          );
          silent.unref();
          connection.query('select 1').then(
            () => clearTimeout(silent),
            (err: Error) => {
              clearTimeout(silent);
              lost(err, connection);
            },
          );
        }, checkEveryMs);
        check.unref();
      })
      .catch((err: Error) => lost(err, connection));
  };

  connect();
  return {
    get listening() {
      return listening;
    },
    get generation() {
      return generation;
    },
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      if (check) clearInterval(check);
      const open = client;
      client = undefined;
      listening = false;
      generation += 1;
      await open?.end().catch(() => {});
    },
  };
}

/**
 * `read()` answered from its last result while `changes` has heard nothing since that result was read, and for at
 * most `maxAgeMs` (default a minute: the bound on what a notice lost unnoticed could cost); read again after a
 * notice, and every time while not listening (a notice may have been missed). A result read while a notice arrived
 * is used by the callers waiting for it and not kept. Callers asking while a read is under way share it.
 */
export function readUntilChanged<T>(
  changes: Pick<ChangeListener, 'listening' | 'generation'>,
  read: () => Promise<T>,
  options: { maxAgeMs?: number; now?: () => number } = {},
): () => Promise<T> {
  const maxAgeMs = options.maxAgeMs ?? 60_000;
  const now = options.now ?? (() => performance.now());
  let kept: { generation: number; value: T; readAt: number } | undefined;
  let reading: { generation: number; value: Promise<T> } | undefined;
  return () => {
    if (!changes.listening) return read();
    const generation = changes.generation;
    if (kept?.generation === generation && now() - kept.readAt < maxAgeMs) return Promise.resolve(kept.value);
    if (reading?.generation === generation) return reading.value;
    const started = { generation, value: read(), readAt: now() };
    reading = started;
    started.value.then(
      (value) => {
        if (changes.listening && changes.generation === started.generation) {
          kept = { generation, value, readAt: started.readAt };
        }
        if (reading === started) reading = undefined;
      },
      () => {
        if (reading === started) reading = undefined;
      },
    );
    return started.value;
  };
}
