// PostgreSQL, RabbitMQ, Redis and clamd of the run's own, on free ports in a temporary folder: the nemeses restart
// and stop them without touching the machine's shared servers, so a chaos run is safe next to other tests (and in
// CI). Debian's packages, started the way deploy/local/infrastructure.sh starts the shared ones; root is needed to
// run PostgreSQL and RabbitMQ as their own users.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from './gateway-processes.ts';
import { waitFor } from './wait.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TEST_SIGNATURES = join(ROOT, 'deploy/clamav/test-signatures');

/** One server the nemeses may stop, start and restart. */
export interface ServerControl {
  start(): Promise<void>;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

export interface RabbitMqControl extends ServerControl {
  /** rabbitmqctl against this node. */
  ctl(...args: string[]): Promise<string>;
  /** The node's Prometheus endpoint (rabbitmq_prometheus). */
  prometheusUrl: string;
}

export interface PrivateServers {
  /** DATABASE_URL, AMQP_URL, SMGW_RABBITMQ_API, REDIS_URL, CLAMD_URL and SMGW_CLAMD_STREAM_MAX_BYTES of these servers. */
  env: Record<string, string>;
  /** clamd's StreamMaxLength: longer messages are refused by clamd (and quarantined by scan). */
  clamdStreamMaxBytes: number;
  postgres: ServerControl;
  rabbitmq: RabbitMqControl;
  redis: ServerControl;
  clamd: ServerControl;
  /**
   * The main process of each server now (postmaster, beam.smp, redis-server, clamd), for the benchmark's CPU
   * accounting (it sums them with their children); a stopped server is missing.
   */
  pids(): Promise<Record<'postgres' | 'rabbitmq' | 'redis' | 'clamd', number | undefined>>;
  /** Stops every server and removes the folder. */
  close(): Promise<void>;
}

async function uidOf(user: string): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([run('id', ['-u', user]), run('id', ['-g', user])]);
  return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
}

/** Makes the folder (if missing) and hands it, or a file, to `user`. */
async function ownedBy(path: string, user: string, kind: 'folder' | 'file' = 'folder'): Promise<string> {
  if (kind === 'folder') await mkdir(path, { recursive: true });
  const { uid, gid } = await uidOf(user);
  await chown(path, uid, gid);
  return path;
}

async function postgresBin(): Promise<string> {
  const versions = (await readdir('/usr/lib/postgresql')).sort((a, b) => Number(a) - Number(b));
  const newest = versions.at(-1);
  if (!newest) throw new Error('no PostgreSQL server in /usr/lib/postgresql (apt-get install postgresql)');
  return `/usr/lib/postgresql/${newest}/bin`;
}

async function startPostgres(
  dir: string,
  durable: boolean,
  statementStats: boolean,
): Promise<{ control: ServerControl; url: string }> {
  const bin = await postgresBin();
  const port = await freePort();
  const data = join(dir, 'data');
  const asPostgres = (cmd: string, args: string[]) =>
    run('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args], { cwd: dir, timeout: 120_000 });
  // fsync off for the chaos suite: the nemeses kill processes, not the machine; the page cache survives them. The
  // benchmark keeps it on (`durable`), as Postfix fsyncs its queue files.
  const options =
    `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c max_connections=400 -c fsync=${durable ? 'on' : 'off'}` +
    (statementStats
      ? ' -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all -c pg_stat_statements.track_planning=on'
      : '');
  const pgCtl = (...args: string[]) => asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'postgres.log'), ...args]);
  await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  await pgCtl('-o', options, '-w', 'start');
  const admin = `postgres://postgres@127.0.0.1:${port}/postgres`;
  await run('psql', [admin, '-qc', 'create database smgw']);
  const control: ServerControl = {
    start: async () => {
      await pgCtl('-o', options, '-w', 'start');
    },
    stop: async () => {
      await pgCtl('-m', 'immediate', '-w', 'stop');
    },
    // Immediate: every backend is killed and the next start recovers from the WAL, as after a crash.
    restart: async () => {
      await pgCtl('-m', 'immediate', '-o', options, '-w', 'restart');
    },
  };
  return { control, url: `postgres://postgres@127.0.0.1:${port}/smgw` };
}

async function startRabbitMq(dir: string) {
  const [amqpPort, managementPort, prometheusPort, distPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const node = `smgwchaos${randomBytes(3).toString('hex')}@localhost`;
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'rabbitmq.conf'),
    [
      `management.tcp.port = ${managementPort}`,
      'management.tcp.ip = 127.0.0.1',
      `prometheus.tcp.port = ${prometheusPort}`,
      'prometheus.tcp.ip = 127.0.0.1',
      // The alarm nemesis lowers the watermark; this is where it goes back to.
      'vm_memory_high_watermark.relative = 0.4',
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, 'enabled_plugins'), '[rabbitmq_management,rabbitmq_prometheus].\n');
  await ownedBy(dir, 'rabbitmq');
  for (const f of ['rabbitmq.conf', 'enabled_plugins']) await ownedBy(join(dir, f), 'rabbitmq', 'file');
  // The node runs as the rabbitmq user with that user's Erlang cookie, so rabbitmqctl below can reach it.
  const env = {
    HOME: '/var/lib/rabbitmq',
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(amqpPort),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_PID_FILE: join(dir, 'pid'),
  };
  const asRabbit = async (cmd: string, args: string[], timeout = 150_000) =>
    (
      await run(
        'runuser',
        ['-u', 'rabbitmq', '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), cmd, ...args],
        { cwd: dir, timeout },
      )
    ).stdout;
  const ctl = (...args: string[]) => asRabbit('/usr/lib/rabbitmq/bin/rabbitmqctl', ['-n', node, ...args]);
  const api = `http://guest:guest@127.0.0.1:${managementPort}/api`;
  const start = async () => {
    await asRabbit('/usr/lib/rabbitmq/bin/rabbitmq-server', ['-detached']);
    // -detached returns before the node has registered; await_startup fails until it has.
    await waitFor(
      'the chaos RabbitMQ node to start',
      async () => {
        await ctl('await_startup', '--timeout', '120');
        return true;
      },
      {
        timeoutMs: 180_000,
        intervalMs: 1000,
      },
    ).catch(async (error: Error) => {
      // Why the node did not come up is in its own log, which goes with the temporary folder.
      const log = await readFile(join(dir, 'log', `${node}.log`), 'utf8').catch(() => '(no log)');
      throw new Error(`${error.message}\nlast lines of the node's log:\n${log.split('\n').slice(-30).join('\n')}`);
    });
    await waitFor(
      'the chaos RabbitMQ management API',
      async () =>
        (
          await fetch(`http://127.0.0.1:${managementPort}/api/overview`, {
            headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
          }).catch(() => undefined)
        )?.ok,
      { timeoutMs: 120_000, intervalMs: 500 },
    );
  };
  const stop = async () => {
    await ctl('shutdown').catch(() => {});
  };
  await start();
  const control: RabbitMqControl = {
    start,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    ctl,
    prometheusUrl: `http://127.0.0.1:${prometheusPort}`,
  };
  return { control, amqpUrl: `amqp://guest:guest@127.0.0.1:${amqpPort}`, api };
}

async function startRedis(dir: string): Promise<{ control: ServerControl; url: string }> {
  const port = await freePort();
  const args = [
    ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'yes'],
    ...['--dir', dir, '--pidfile', join(dir, 'redis.pid'), '--logfile', join(dir, 'redis.log')],
  ];
  const ping = async () => (await run('redis-cli', ['-p', String(port), 'ping'])).stdout.trim() === 'PONG';
  const start = async () => {
    await run('redis-server', args);
    await waitFor('the chaos Redis', ping, { timeoutMs: 30_000, intervalMs: 100 });
  };
  const stop = async () => {
    // Redis keeps nothing on disk here, as on the machine's shared one: a restart forgets every key.
    await run('redis-cli', ['-p', String(port), 'shutdown', 'nosave']).catch(() => {});
    await waitFor('the chaos Redis to stop', async () => !(await ping().catch(() => false)), {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
  };
  await start();
  return {
    control: {
      start,
      stop,
      restart: async () => {
        await stop();
        await start();
      },
    },
    url: `redis://127.0.0.1:${port}`,
  };
}

async function clamdPong(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(3000, () => socket.destroy());
    socket.on('connect', () => socket.end('zPING\0'));
    socket.on('data', (d) => {
      reply += d.toString();
    });
    socket.on('close', () => resolve(reply.replace(/\0/g, '') === 'PONG'));
    socket.on('error', () => resolve(false));
  });
}

interface ClamdOptions {
  streamMaxBytes: number;
  threads: number;
  /** clamd's TemporaryDirectory (default: its own, /tmp). */
  temporaryDirectory?: string;
}

async function startClamd(dir: string, options: ClamdOptions): Promise<{ control: ServerControl; url: string }> {
  const { streamMaxBytes, threads } = options;
  const port = await freePort();
  const db = join(dir, 'db');
  await mkdir(db, { recursive: true });
  // The project's test signatures only (EICAR and the ClamAV test signature): small and quick to load.
  for (const f of await readdir(TEST_SIGNATURES)) await copyFile(join(TEST_SIGNATURES, f), join(db, f));
  const conf = join(dir, 'clamd.conf');
  const pidFile = join(dir, 'clamd.pid');
  // As deploy/local/infrastructure.sh, but with a small StreamMaxLength so that "over clamd's limit" is a message
  // the SMTP size limit still lets in.
  await writeFile(
    conf,
    [
      `TCPSocket ${port}`,
      'TCPAddr 127.0.0.1',
      'Foreground false',
      `PidFile ${pidFile}`,
      `LogFile ${join(dir, 'clamd.log')}`,
      `DatabaseDirectory ${db}`,
      `StreamMaxLength ${streamMaxBytes}`,
      `MaxScanSize ${streamMaxBytes * 4}`,
      `MaxFileSize ${streamMaxBytes * 4}`,
      'MaxRecursion 16',
      'AlertExceedsMax yes',
      'AlertEncrypted yes',
      'ScanMail true',
      'ScanArchive true',
      `MaxThreads ${threads}`,
      ...(options.temporaryDirectory ? [`TemporaryDirectory ${options.temporaryDirectory}`] : []),
      '',
    ].join('\n'),
  );
  const start = async () => {
    await run('clamd', ['-c', conf], { timeout: 120_000 });
    await waitFor('the chaos clamd to answer PING', () => clamdPong(port), { timeoutMs: 120_000, intervalMs: 250 });
  };
  const stop = async () => {
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {}
    }
    await waitFor('the chaos clamd to stop', async () => !(await clamdPong(port)) && !alive(pid), {
      timeoutMs: 60_000,
      intervalMs: 100,
    });
  };
  await start();
  return {
    control: {
      start,
      stop,
      restart: async () => {
        await stop();
        await start();
      },
    },
    url: `tcp://127.0.0.1:${port}`,
  };
}

/** The process id on the first line of a pid file, if the file is there and the process alive. */
async function pidIn(file: string): Promise<number | undefined> {
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).split('\n')[0]?.trim());
  return alive(pid) ? pid : undefined;
}

function alive(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts the four servers (about 15 s, most of it RabbitMQ). Root only: PostgreSQL and RabbitMQ run as their own
 * users (runuser), as Debian's packages set them up.
 */
export async function startPrivateServers(
  options: {
    clamdStreamMaxBytes?: number;
    /** PostgreSQL with fsync on (default off: the chaos suite kills processes, never the machine). */
    durable?: boolean;
    /** clamd's MaxThreads (default 4). */
    clamdThreads?: number;
    /** PostgreSQL collects pg_stat_statements (the benchmark's --pg-stats). */
    statementStats?: boolean;
    /** clamd's TemporaryDirectory (default: clamd's own). */
    clamdTemporaryDirectory?: string;
  } = {},
): Promise<PrivateServers> {
  if (userInfo().uid !== 0) throw new Error('the chaos suite starts servers of its own and needs root');
  const clamdStreamMaxBytes = options.clamdStreamMaxBytes ?? 6 * 1024 * 1024;
  const dir = await mkdtemp('/tmp/smgw-chaos-');
  await chmod(dir, 0o755);
  const started: ServerControl[] = [];
  const close = async () => {
    await Promise.all(started.map((s) => s.stop().catch(() => {})));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const postgres = await startPostgres(
      await ownedBy(join(dir, 'postgres'), 'postgres'),
      options.durable ?? false,
      options.statementStats ?? false,
    );
    started.push(postgres.control);
    const redis = await startRedis(await ownedBy(join(dir, 'redis'), 'root'));
    started.push(redis.control);
    const clamd = await startClamd(await ownedBy(join(dir, 'clamd'), 'root'), {
      streamMaxBytes: clamdStreamMaxBytes,
      threads: options.clamdThreads ?? 4,
      temporaryDirectory: options.clamdTemporaryDirectory,
    });
    started.push(clamd.control);
    const rabbitmq = await startRabbitMq(join(dir, 'rabbitmq'));
    started.push(rabbitmq.control);
    return {
      env: {
        DATABASE_URL: postgres.url,
        AMQP_URL: rabbitmq.amqpUrl,
        SMGW_RABBITMQ_API: rabbitmq.api,
        REDIS_URL: redis.url,
        CLAMD_URL: clamd.url,
        // The scan stage stops at this clamd's StreamMaxLength itself (its own refusal can lose its answer).
        SMGW_CLAMD_STREAM_MAX_BYTES: String(clamdStreamMaxBytes),
      },
      clamdStreamMaxBytes,
      postgres: postgres.control,
      rabbitmq: rabbitmq.control,
      redis: redis.control,
      clamd: clamd.control,
      pids: async () => ({
        postgres: await pidIn(join(dir, 'postgres/data/postmaster.pid')),
        rabbitmq: await pidIn(join(dir, 'rabbitmq/pid')),
        redis: await pidIn(join(dir, 'redis/redis.pid')),
        clamd: await pidIn(join(dir, 'clamd/clamd.pid')),
      }),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
