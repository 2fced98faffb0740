// amavisd-new of the benchmark's own: one config file (`amavisd -c`), its own folders and ports, virus scanning only
// (spam, banned files, bad headers and DKIM off), asking the clamd the gateway uses, so both scan with the same
// signatures.
import { execFile } from 'node:child_process';
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { alive } from './postfix.ts';

const run = promisify(execFile);

export interface AmavisOptions {
  dir: string;
  /** Where amavis takes mail from Postfix (smtp-amavis). */
  port: number;
  /** Postfix's reinjection smtpd: where clean mail goes on. */
  reinjectPort: number;
  clamdPort: number;
  /** Child processes ($max_servers), each taking one message at a time. */
  processes: number;
}

/** The Perl config file: Debian's defaults are not read (`-c`), so everything amavis needs is here. */
export function amavisConfig(o: AmavisOptions): string {
  return `use strict;
$MYHOME = '${join(o.dir, 'var')}';
$TEMPBASE = '${join(o.dir, 'var/tmp')}';
$db_home = '${join(o.dir, 'var/db')}';
$pid_file = '${join(o.dir, 'var/amavisd.pid')}';
$lock_file = '${join(o.dir, 'var/amavisd.lock')}';
$daemon_user = 'amavis';
$daemon_group = 'amavis';
$mydomain = 'bench.test';
$myhostname = 'amavis.bench.test';
@local_domains_maps = ( ['.behoerde.example'] );
$max_servers = ${o.processes};
$max_requests = 1000;
$child_timeout = 1200;
$inet_socket_bind = '127.0.0.1';
$inet_socket_port = ${o.port};
@inet_acl = qw(127.0.0.1);
$forward_method = 'smtp:[127.0.0.1]:${o.reinjectPort}';
$notify_method = 'smtp:[127.0.0.1]:${o.reinjectPort}';
$do_syslog = 0;
$LOGFILE = '${join(o.dir, 'var/amavis.log')}';
$log_level = 0;
$sa_spam_subject_tag = undef;
# Virus scanning only: the classic gateway's job that the gateway's scan stage also does.
@bypass_spam_checks_maps = (1);
@bypass_banned_checks_maps = (1);
@bypass_header_checks_maps = (1);
$enable_dkim_verification = 0;
$enable_dkim_signing = 0;
# No result cache: every message is scanned, as the gateway scans every message.
$enable_db = 0;
$enable_global_cache = 0;
$final_virus_destiny = D_DISCARD;
$QUARANTINEDIR = undef;
$virus_quarantine_to = undef;
$virus_admin = undef;
$warnvirussender = 0;
$warnvirusrecip = 0;
@av_scanners = (
  ['ClamAV-clamd', \\&ask_daemon, ["CONTSCAN {}\\n", '127.0.0.1:${o.clamdPort}'],
    qr/\\bOK$/m, qr/\\bFOUND$/m, qr/^.*?: (?!Infected Archive)(.*) FOUND$/m ],
);
@av_scanners_backup = ();
1;
`;
}

export interface AmavisInstance {
  pid(): Promise<number | undefined>;
  logFile: string;
  stop(): Promise<void>;
}

export async function startAmavis(o: AmavisOptions): Promise<AmavisInstance> {
  const { stdout } = await run('id', ['-u', 'amavis']);
  const uid = Number(stdout);
  const gid = Number((await run('id', ['-g', 'amavis'])).stdout);
  // amavisd refuses a config file in a folder its user could write: the config stays root's, the rest is amavis's.
  await mkdir(join(o.dir, 'conf'), { recursive: true, mode: 0o755 });
  for (const sub of ['var', 'var/tmp', 'var/db']) {
    await mkdir(join(o.dir, sub), { recursive: true });
    await chown(join(o.dir, sub), uid, gid);
  }
  const conf = join(o.dir, 'conf/amavisd.conf');
  await writeFile(conf, amavisConfig(o));
  // Daemonizes; ready when its port answers (the caller waits).
  await run('amavisd', ['-c', conf], { timeout: 60_000 });
  const pid = async () => {
    const n = Number((await readFile(join(o.dir, 'var/amavisd.pid'), 'utf8').catch(() => '')).trim());
    return n > 0 && alive(n) ? n : undefined;
  };
  return {
    pid,
    logFile: join(o.dir, 'var/amavis.log'),
    async stop() {
      const n = await pid();
      if (!n) return;
      process.kill(n, 'SIGTERM');
      for (let i = 0; i < 200 && alive(n); i++) await new Promise((r) => setTimeout(r, 100));
      if (alive(n)) process.kill(n, 'SIGKILL');
    },
  };
}
