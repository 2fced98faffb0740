// A Postfix instance of the benchmark's own: its own config directory (`postfix -c`), queue and data folders and
// loopback ports; the machine's /etc/postfix is never touched and no system service is started.
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PostfixOptions {
  /** The instance's folder: config, queue, data and log below it. */
  dir: string;
  name: string;
  /** Where smtpd listens (127.0.0.1). */
  smtpPort: number;
  /** Where every message goes (smtp-sink). */
  relayPort: number;
  /** With a content filter: amavisd-new's port and the reinjection smtpd's port (amavis forwards there). */
  contentFilter?: { amavisPort: number; reinjectPort: number; processes: number };
}

/** The domain the benchmark's recipients are in: relayed, never delivered locally. */
export const BENCH_DOMAIN = 'behoerde.example';

/** main.cf: a relay for BENCH_DOMAIN from loopback to `relayPort`, logging into its own file. */
export function postfixMainCf(o: PostfixOptions): string {
  return [
    'compatibility_level = 3.6',
    `queue_directory = ${join(o.dir, 'queue')}`,
    `data_directory = ${join(o.dir, 'data')}`,
    'meta_directory = /etc/postfix',
    'command_directory = /usr/sbin',
    'daemon_directory = /usr/lib/postfix/sbin',
    'shlib_directory = /usr/lib/postfix',
    'mail_owner = postfix',
    'setgid_group = postdrop',
    `maillog_file = ${join(o.dir, 'maillog')}`,
    `maillog_file_prefixes = ${o.dir}`,
    `myhostname = ${o.name}.bench.test`,
    'mydomain = bench.test',
    'myorigin = $myhostname',
    'mydestination =',
    'local_transport = error:no local delivery here',
    'alias_maps =',
    'alias_database =',
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    `relay_domains = ${BENCH_DOMAIN}`,
    `relayhost = [127.0.0.1]:${o.relayPort}`,
    'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
    // No DNS anywhere: the client is loopback, the next hop an address.
    'smtpd_peername_lookup = no',
    'smtp_dns_support_level = disabled',
    'message_size_limit = 52428800',
    'biff = no',
    'smtputf8_enable = no',
    ...(o.contentFilter ? [`content_filter = smtp-amavis:[127.0.0.1]:${o.contentFilter.amavisPort}`] : []),
    '',
  ].join('\n');
}

/** master.cf: Debian's services, none chrooted, smtpd on `smtpPort`, and amavis's pair with a content filter. */
export function postfixMasterCf(o: PostfixOptions): string {
  const lines = [
    `${o.smtpPort} inet n - n - - smtpd`,
    'pickup unix n - n 60 1 pickup',
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'flush unix n - n 1000? 0 flush',
    'proxymap unix - - n - - proxymap',
    'proxywrite unix - - n - 1 proxymap',
    'smtp unix - - n - - smtp',
    'relay unix - - n - - smtp',
    'showq unix n - n - - showq',
    'error unix - - n - - error',
    'retry unix - - n - - error',
    'discard unix - - n - - discard',
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
  ];
  const cf = o.contentFilter;
  if (cf) {
    // As amavisd-new's README.postfix: to amavis over SMTP, and back in on a second smtpd that filters nothing.
    lines.push(
      `smtp-amavis unix - - n - ${cf.processes} smtp`,
      '  -o smtp_data_done_timeout=1200',
      '  -o smtp_send_xforward_command=yes',
      '  -o smtp_tls_security_level=none',
      `127.0.0.1:${cf.reinjectPort} inet n - n - - smtpd`,
      '  -o content_filter=',
      '  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters,no_address_mappings',
      '  -o smtpd_helo_restrictions=',
      '  -o smtpd_client_restrictions=',
      '  -o smtpd_sender_restrictions=',
      '  -o smtpd_relay_restrictions=permit_mynetworks,reject',
      '  -o smtpd_recipient_restrictions=permit_mynetworks,reject',
      '  -o mynetworks=127.0.0.0/8',
      '  -o smtpd_authorized_xforward_hosts=127.0.0.0/8',
    );
  }
  return `${lines.join('\n')}\n`;
}

export interface PostfixInstance {
  name: string;
  smtpPort: number;
  /** The master process (its children are smtpd, cleanup, qmgr, smtp…). */
  masterPid(): Promise<number | undefined>;
  stop(): Promise<void>;
}

export async function startPostfix(o: PostfixOptions): Promise<PostfixInstance> {
  const config = join(o.dir, 'config');
  for (const sub of ['config', 'queue', 'data']) await mkdir(join(o.dir, sub), { recursive: true });
  await chmod(o.dir, 0o755);
  // The queue's own folders get their owners from `postfix check`; the data folder (master.lock) must be Postfix's.
  const uid = Number((await run('id', ['-u', 'postfix'])).stdout);
  await chown(join(o.dir, 'data'), uid, 0);
  await writeFile(join(config, 'main.cf'), postfixMainCf(o));
  await writeFile(join(config, 'master.cf'), postfixMasterCf(o));
  // Without a terminal, postfix says why it failed only in its log file.
  const postfix = (...args: string[]) =>
    run('postfix', ['-c', config, ...args], { timeout: 60_000 }).catch(async (err) => {
      const log = await readFile(join(o.dir, 'maillog'), 'utf8').catch(() => '');
      throw new Error(`postfix -c ${config} ${args.join(' ')} failed: ${log.split('\n').slice(-5).join(' | ') || err}`);
    });
  // check creates the queue and data folders with Postfix's owners and modes.
  await postfix('check');
  await postfix('start');
  const masterPid = async () => {
    const pid = Number((await readFile(join(o.dir, 'queue/pid/master.pid'), 'utf8').catch(() => '')).trim());
    return pid > 0 ? pid : undefined;
  };
  return {
    name: o.name,
    smtpPort: o.smtpPort,
    masterPid,
    async stop() {
      await postfix('stop').catch(() => {});
      // postfix stop returns once master has the signal; wait until it and its children are gone.
      const pid = await masterPid();
      for (let i = 0; pid && i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    },
  };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
