import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import {
  ConfigError,
  describeConfig,
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
