import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  ConfigError,
  describeConfig,
  dkimSigningOf,
  inAddressesOrDomains,
  inDomains,
  inNetworks,
  loadConfig,
  normalizeDomain,
  settings,
} from '../src/index.ts';

describe('settings', () => {
  it('uses the defaults of SPEC.md when nothing is set', () => {
    const c = loadConfig(
      {
        db: settings.databaseUrl,
        inbound: settings.smtpInboundPort,
        submission: settings.smtpSubmissionPort,
        domains: settings.internalDomains,
        relay: settings.internalRelay,
        max: settings.maxMessageBytes,
        quota: settings.mailboxQuotaBytes,
        smarthost: settings.smarthost,
      },
      {},
    );
    assert.equal(c.db, 'postgres://postgres@127.0.0.1:5432/smgw');
    assert.equal(c.inbound, 2525);
    assert.equal(c.submission, 2587);
    assert.deepEqual(c.domains, ['behoerde.example']);
    assert.deepEqual(c.relay, [{ host: '127.0.0.1', port: 2526 }]);
    assert.equal(c.max, 52428800);
    assert.equal(c.quota, 31457280);
    assert.equal(c.smarthost, undefined);
  });

  it("uses SPEC.md's defaults for the doors an outside test reaches (URLs, ports, networks, retention)", () => {
    const c = loadConfig(
      {
        amqp: settings.amqpUrl,
        redis: settings.redisUrl,
        clamd: settings.clamdUrl,
        portal: settings.portalPort,
        admin: settings.adminPort,
        networks: settings.submissionNetworks,
        publicUrl: settings.publicUrl,
        retention: settings.messageRetention,
      },
      {},
    );
    assert.equal(settings.amqpUrl.fallback, 'amqp://guest:guest@127.0.0.1:5672');
    assert.equal(settings.redisUrl.fallback, 'redis://127.0.0.1:6379');
    assert.equal(settings.clamdUrl.fallback, 'tcp://127.0.0.1:3310');
    assert.ok(c.amqp && c.redis && c.clamd);
    assert.equal(c.portal, 8080);
    assert.equal(c.admin, 8081);
    assert.equal(settings.submissionNetworks.fallback, '127.0.0.0/8');
    assert.ok(inNetworks('127.0.0.1', c.networks) && !inNetworks('10.0.0.1', c.networks));
    assert.equal(settings.publicUrl.fallback, 'http://127.0.0.1:8080');
    assert.equal(c.retention, 7 * 86_400_000);
    assert.equal(settings.revocationAllow.fallback, '');
    assert.equal(settings.adminToken.fallback, undefined, 'no fixed token: ./smgw up generates one');
    assert.equal(settings.masterKey.fallback, undefined, 'no fixed master key: ./smgw up generates one');
  });

  it('names the variable and the problem of a malformed setting', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ SMGW_SMTP_INBOUND_PORT: '99999' }, /^SMGW_SMTP_INBOUND_PORT: must be between 0 and 65535/],
      [{ AMQP_URL: 'http://x' }, /^AMQP_URL: must start with amqp: or amqps:/],
      [{ SMGW_SMARTHOST: 'nohost' }, /^SMGW_SMARTHOST: must be host:port/],
      [{ SMGW_INTERNAL_DOMAINS: 'bad domain' }, /^SMGW_INTERNAL_DOMAINS: "bad domain" is not a domain/],
      [{ SMGW_SUBMISSION_NETWORKS: '10.0.0.0/99' }, /^SMGW_SUBMISSION_NETWORKS: "10.0.0.0\/99" is not a network/],
      [{ SMGW_DELIVER_RETRY_LADDER: '5m,soon' }, /^SMGW_DELIVER_RETRY_LADDER: "soon" is not a delay/],
    ];
    for (const [env, expected] of cases) {
      assert.throws(
        () =>
          loadConfig(
            {
              a: settings.smtpInboundPort,
              b: settings.amqpUrl,
              c: settings.smarthost,
              d: settings.internalDomains,
              e: settings.submissionNetworks,
              f: settings.deliverRetryLadder,
            },
            env,
          ),
        (err: unknown) => err instanceof ConfigError && expected.test(err.message),
      );
    }
  });

  it('hides secrets in messages and in the printed configuration', () => {
    const spec = { token: settings.adminToken, key: settings.masterKey };
    assert.throws(() => loadConfig(spec, {}), /SMGW_ADMIN_TOKEN: is required/);
    assert.throws(
      () => loadConfig(spec, { SMGW_ADMIN_TOKEN: 't', SMGW_MASTER_KEY: 'c2hvcnQ=' }),
      (err: unknown) =>
        err instanceof ConfigError && err.message.includes('(hidden)') && !err.message.includes('c2hvcnQ='),
    );
    const c = loadConfig(spec, { SMGW_ADMIN_TOKEN: 'secret-token-of-at-least-32-characters' });
    assert.deepEqual(describeConfig(spec, c), { SMGW_ADMIN_TOKEN: '(hidden)', SMGW_MASTER_KEY: null });
  });

  it('stops a service at start with one line naming the bad variable', () => {
    const script = `import { loadConfigOrExit, settings } from '${new URL('../src/index.ts', import.meta.url).pathname}';
      loadConfigOrExit('demo', { port: settings.smtpInboundPort });`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, SMGW_SMTP_INBOUND_PORT: 'twenty-five' },
      encoding: 'utf8',
    });
    assert.equal(run.status, 78);
    assert.equal(run.stderr, 'demo: bad setting SMGW_SMTP_INBOUND_PORT: must be a whole number (got "twenty-five")\n');
  });

  it('refuses an admin token shorter than 32 characters or with white space, naming the variable', () => {
    const spec = { token: settings.adminToken };
    for (const token of ['short', 'x'.repeat(31), ` ${'x'.repeat(40)}`, `${'x'.repeat(20)} ${'x'.repeat(20)}`]) {
      assert.throws(() => loadConfig(spec, { SMGW_ADMIN_TOKEN: token }), /SMGW_ADMIN_TOKEN/, JSON.stringify(token));
    }
    assert.equal(loadConfig(spec, { SMGW_ADMIN_TOKEN: 'x'.repeat(32) }).token, 'x'.repeat(32));
  });

  it('compares domains after IDNA, case and trailing-dot normalisation', () => {
    const table: [string, string][] = [
      ['Behoerde.Example.', 'behoerde.example'],
      ['bücher.example', 'xn--bcher-kva.example'],
      ['XN--BCHER-KVA.example', 'xn--bcher-kva.example'],
      ['a..example', ''],
      ['example..', ''],
      ['', ''],
    ];
    for (const [raw, normal] of table) assert.equal(normalizeDomain(raw), normal, raw);
    const domains = loadConfig(
      { d: settings.internalDomains },
      { SMGW_INTERNAL_DOMAINS: 'Bücher.example,*.Amt.example' },
    ).d;
    assert.deepEqual(domains, ['xn--bcher-kva.example', '*.amt.example']);
    assert.ok(inDomains('a@bücher.example.', domains));
    assert.ok(inDomains('a@x.AMT.example', domains));
  });

  it('reads exception lists of addresses and domains, possibly empty', () => {
    const spec = { e: settings.mxAgencySenderExceptions };
    assert.deepEqual(loadConfig(spec, {}).e, []);
    const list = loadConfig(spec, { SMGW_MX_AGENCY_SENDER_EXCEPTIONS: 'News@Behoerde.example, *.extern.example' }).e;
    assert.deepEqual(list, ['news@behoerde.example', '*.extern.example']);
    assert.ok(inAddressesOrDomains('NEWS@behoerde.example.', list));
    assert.ok(inAddressesOrDomains('x@a.extern.example', list));
    assert.ok(!inAddressesOrDomains('chef@behoerde.example', list));
    assert.throws(() => loadConfig(spec, { SMGW_MX_AGENCY_SENDER_EXCEPTIONS: 'a%b@behoerde.example' }));
  });

  it('reads DNS servers as node:dns takes them (the system resolver when empty), and mail authentication on', () => {
    const spec = { servers: settings.dnsResolvers, auth: settings.mailAuth, reject: settings.dmarcReject };
    assert.deepEqual(loadConfig(spec, {}), { servers: [], auth: 'on', reject: true });
    const servers = loadConfig(spec, { SMGW_DNS_RESOLVERS: '192.0.2.53, 127.0.0.1:5353, [2001:db8::53]:53, ::1' });
    assert.deepEqual(servers.servers, ['192.0.2.53', '127.0.0.1:5353', '[2001:db8::53]:53', '::1']);
    for (const bad of ['dns.example', '192.0.2.53:0', '[::1]:70000', '300.1.1.1']) {
      assert.throws(() => loadConfig(spec, { SMGW_DNS_RESOLVERS: bad }), /SMGW_DNS_RESOLVERS/, bad);
    }
    assert.throws(() => loadConfig(spec, { SMGW_MAIL_AUTH: 'maybe' }), /SMGW_MAIL_AUTH/);
  });

  it('matches agency domains exactly or by wildcard, and networks by CIDR', () => {
    const domains = ['behoerde.example', '*.sachsen.de'];
    assert.ok(inDomains('amt@behoerde.example', domains));
    assert.ok(inDomains('amt@BEHOERDE.EXAMPLE', domains));
    assert.ok(inDomains('x@lra.sachsen.de', domains));
    assert.ok(!inDomains('x@sachsen.de', domains));
    assert.ok(!inDomains('x@evilbehoerde.example', domains));
    assert.ok(!inDomains('x@behoerde.example.evil.org', domains));
    const nets = loadConfig({ n: settings.submissionNetworks }, { SMGW_SUBMISSION_NETWORKS: '10.1.0.0/16,::1' }).n;
    assert.ok(inNetworks('10.1.2.3', nets));
    assert.ok(inNetworks('::ffff:10.1.2.3', nets));
    assert.ok(inNetworks('::1', nets));
    assert.ok(!inNetworks('10.2.0.1', nets));
    assert.ok(!inNetworks('not an ip', nets));
  });
});

describe('DKIM signing settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smgw-dkim-config-'));
  const pemFile = (name: string, pem: string) => {
    const file = join(dir, name);
    writeFileSync(file, pem);
    return file;
  };
  const pkcs8 = (key: { export(o: { type: 'pkcs8'; format: 'pem' }): string | Buffer }) =>
    key.export({ type: 'pkcs8', format: 'pem' }).toString();
  const rsa2048 = pemFile('rsa2048.pem', pkcs8(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey));
  const ed25519 = pemFile('ed25519.pem', pkcs8(generateKeyPairSync('ed25519').privateKey));
  const spec = { dkimDomain: settings.dkimDomain, dkimSelector: settings.dkimSelector, dkimKey: settings.dkimKey };

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('signs nothing without SMGW_DKIM_DOMAIN', () => {
    assert.equal(dkimSigningOf(loadConfig(spec, {})), undefined);
  });

  it('reads an RSA key of 2048 bits or an Ed25519 key, and hides it in the printed configuration', () => {
    const table: [string, string][] = [
      [rsa2048, 'rsa-sha256'],
      [ed25519, 'ed25519-sha256'],
    ];
    for (const [file, algorithm] of table) {
      const env = { SMGW_DKIM_DOMAIN: 'Gateway.Example', SMGW_DKIM_KEY_FILE: file };
      const config = loadConfig(spec, env);
      const signing = dkimSigningOf(config);
      assert.equal(signing?.domain, 'gateway.example');
      assert.equal(signing?.selector, 'smgw');
      assert.equal(signing?.key.algorithm, algorithm);
      assert.equal(describeConfig(spec, config).SMGW_DKIM_KEY_FILE, '(hidden)');
    }
  });

  it('refuses a missing, malformed or weak key file, naming SMGW_DKIM_KEY_FILE', () => {
    const ecKey = pemFile('ec.pem', pkcs8(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
    const rsa1024 = pemFile('rsa1024.pem', pkcs8(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey));
    const cases: [string, RegExp][] = [
      [join(dir, 'missing.pem'), /^SMGW_DKIM_KEY_FILE: cannot read .*missing\.pem \(ENOENT\)/],
      [pemFile('garbage.pem', 'not a key'), /^SMGW_DKIM_KEY_FILE: .*garbage\.pem holds no PEM private key/],
      [ecKey, /^SMGW_DKIM_KEY_FILE: .*ec\.pem holds a ec key, not RSA or Ed25519/],
      [rsa1024, /^SMGW_DKIM_KEY_FILE: .*rsa1024\.pem holds an RSA key of 1024 bits, fewer than 2048/],
    ];
    for (const [file, expected] of cases) {
      assert.throws(
        () => loadConfig(spec, { SMGW_DKIM_DOMAIN: 'gateway.example', SMGW_DKIM_KEY_FILE: file }),
        (err: unknown) => err instanceof ConfigError && expected.test(err.message),
        file,
      );
    }
  });

  it('refuses a signing domain without key file, and a malformed domain or selector', () => {
    assert.throws(
      () => dkimSigningOf(loadConfig(spec, { SMGW_DKIM_DOMAIN: 'gateway.example' })),
      (err: unknown) => err instanceof ConfigError && /^SMGW_DKIM_KEY_FILE: is required/.test(err.message),
    );
    assert.throws(() => loadConfig(spec, { SMGW_DKIM_DOMAIN: 'not a domain' }), /SMGW_DKIM_DOMAIN: /);
    assert.throws(() => loadConfig(spec, { SMGW_DKIM_DOMAIN: '*.gateway.example' }), /SMGW_DKIM_DOMAIN: /);
    assert.throws(() => loadConfig(spec, { SMGW_DKIM_SELECTOR: 'a;b' }), /SMGW_DKIM_SELECTOR: /);
  });

  it('stops a service at start with one line when the signing domain has no key', () => {
    const script = `import { dkimSigningOf, exitOnConfigError, loadConfigOrExit, settings } from '${new URL('../src/index.ts', import.meta.url).pathname}';
      const config = loadConfigOrExit('demo', { dkimDomain: settings.dkimDomain, dkimSelector: settings.dkimSelector, dkimKey: settings.dkimKey });
      exitOnConfigError('demo', () => dkimSigningOf(config));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, SMGW_DKIM_DOMAIN: 'gateway.example', SMGW_DKIM_KEY_FILE: '' },
      encoding: 'utf8',
    });
    assert.equal(run.status, 78);
    assert.equal(run.stderr, 'demo: bad setting SMGW_DKIM_KEY_FILE: is required when SMGW_DKIM_DOMAIN is set\n');
  });
});
