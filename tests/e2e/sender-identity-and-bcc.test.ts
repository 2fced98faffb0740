// Who may speak for whom, and who sees whom, through the whole gateway as real processes (issue 8, findings 5 and
// 6): an account sends only as the addresses it owns (envelope and From), the From address chooses the signing key,
// and a Bcc recipient gets an encrypted copy of its own while no Bcc field leaves. The key material is made by
// openssl and handed in through the operator CLI; openssl opens and verifies what reaches the outside.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { assertQueued, type SunkMessage, startTestGateway, type TestGateway, waitFor } from '@smgw/testing';
import nodemailer from 'nodemailer';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PASSWORD = 'ein langes Kennwort 123';

describe('sender identity and Bcc through the gateway', () => {
  let gw: TestGateway;
  let dir: string;

  const openssl = async (args: string[]) => (await run('openssl', args, { cwd: dir, encoding: 'buffer' })).stdout;

  /** A leaf for `address` under the test CA: emailProtection, the address in subjectAltName. */
  async function leaf(address: string): Promise<{ cert: string; key: string }> {
    const name = address.replace(/[^a-z0-9]/gi, '_');
    await writeFile(
      join(dir, `${name}.ext`),
      `subjectAltName=email:${address}\nextendedKeyUsage=emailProtection\n` +
        'keyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n',
    );
    await openssl([
      ...['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`],
      ...['-subj', `/CN=${address}`],
    ]);
    await openssl([
      ...['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial'],
      ...['-days', '30', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`],
    ]);
    return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  }

  /** The operator CLI as a process, against this gateway's admin API. */
  async function smgw(...args: string[]): Promise<string> {
    const { stdout } = await run('node', ['services/admin/src/cli.ts', ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        SMGW_ADMIN_URL: `http://127.0.0.1:${gw.adminPort}/api/v1`,
        SMGW_ADMIN_TOKEN: gw.adminToken,
        SMGW_ACCOUNT_PASSWORD: PASSWORD,
      },
    });
    return stdout;
  }

  const certs: Record<string, { cert: string; key: string }> = {};

  before(async () => {
    gw = await startTestGateway({ env: { SMGW_REVOCATION_MODE: 'off' } });
    dir = await mkdtemp(join(tmpdir(), 'smgw-e2e-identity-'));
    await openssl([
      ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30'],
      ...['-subj', '/CN=E2E Identity CA', '-addext', 'basicConstraints=critical,CA:TRUE'],
      ...['-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    ]);
    for (const address of [
      'buerger@example.org',
      'kollegin@example.org',
      'geheim@example.net',
      'clerk@behoerde.example',
      'leitung@behoerde.example',
    ]) {
      certs[address] = await leaf(address);
    }
    await smgw('trust', 'add', join(dir, 'ca.pem'));
    for (const recipient of ['buerger@example.org', 'kollegin@example.org', 'geheim@example.net']) {
      await smgw('cert', 'add', certs[recipient]?.cert ?? '');
    }
    const agency = JSON.parse(await smgw('agency', 'add', 'Amt', '--domain', 'behoerde.example', '--json')) as {
      id: string;
    };
    for (const address of ['clerk@behoerde.example', 'leitung@behoerde.example']) {
      const p12 = join(dir, `${address}.p12`);
      const { cert, key } = certs[address] ?? { cert: '', key: '' };
      await openssl(['pkcs12', '-export', '-inkey', key, '-in', cert, '-passout', 'pass:p12', '-out', p12]);
      await smgw('agency', 'address', agency.id, address);
      await smgw('agency', 'key', agency.id, address, p12, '--password', 'p12');
    }
    await smgw('agency', 'signing', agency.id, 'on');
    // The clerk owns her address and the head's (she writes for her), nothing else of the agency.
    await smgw(
      ...['account', 'add', 'clerk@behoerde.example'],
      ...['--address', 'clerk@behoerde.example', '--address', 'leitung@behoerde.example'],
    );
  });
  after(async () => {
    await gw?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A submission session as the clerk: STARTTLS (the gateway's self-signed certificate) and AUTH. */
  const clerk = () =>
    nodemailer.createTransport({
      host: '127.0.0.1',
      port: gw.submissionPort,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: { user: 'clerk@behoerde.example', pass: PASSWORD },
    });

  const messageCount = async () => Number((await gw.db.pool.query('select count(*) from messages')).rows[0].count);

  it('refuses an address the account does not own, as envelope sender and in From, and keeps nothing', async () => {
    const before = await messageCount();
    const transport = clerk();
    const raw = (from: string) =>
      Buffer.from(`From: ${from}\r\nTo: buerger@example.org\r\nSubject: Weisung\r\n\r\nim Auftrag\r\n`);
    await assert.rejects(
      transport.sendMail({
        envelope: { from: 'chefin@behoerde.example', to: ['buerger@example.org'] },
        raw: raw('chefin@behoerde.example'),
      }),
      (err: { responseCode?: number; response?: string }) =>
        err.responseCode === 550 && /5\.7\.1/.test(err.response ?? ''),
    );
    for (const from of [
      'Chefin <chefin@behoerde.example>',
      'clerk@behoerde.example, chefin@behoerde.example',
      '"clerk@behoerde.example" <chefin@behoerde.example>',
    ]) {
      await assert.rejects(
        transport.sendMail({
          envelope: { from: 'clerk@behoerde.example', to: ['buerger@example.org'] },
          raw: raw(from),
        }),
        (err: { responseCode?: number; response?: string }) =>
          err.responseCode === 550 && /5\.7\.1 From or Sender/.test(err.response ?? ''),
        from,
      );
    }
    transport.close();
    assert.equal(await messageCount(), before, 'nothing recorded');
    assert.equal(gw.smarthost.messages.length, 0, 'nothing sent');
  });

  it('signs with the key of the From address and gives the Bcc recipient a copy of its own, with no Bcc outside', async () => {
    const transport = clerk();
    const info = await transport.sendMail({
      envelope: {
        from: 'clerk@behoerde.example',
        to: ['buerger@example.org', 'kollegin@example.org', 'geheim@example.net'],
      },
      raw: Buffer.from(
        [
          'From: Die Amtsleitung <leitung@behoerde.example>',
          'To: buerger@example.org',
          'Cc: kollegin@example.org',
          'Bcc: geheim@example.net',
          'Subject: Bescheid',
          'Message-ID: <e2e-identity@behoerde.example>',
          'MIME-Version: 1.0',
          'Content-Type: text/plain; charset=utf-8',
          '',
          'Ihr Bescheid, gezeichnet von der Amtsleitung.',
          '',
        ].join('\r\n'),
      ),
    });
    transport.close();
    assertQueued(info.response);
    const copyFor = (recipient: string) =>
      waitFor(
        `the copy for ${recipient} at the smarthost`,
        () =>
          gw.smarthost.messages.find(
            (m) => m.rcptTo.includes(recipient) && m.raw.includes(Buffer.from('e2e-identity@behoerde.example')),
          ),
        { timeoutMs: 60_000, intervalMs: 250 },
      );
    const named = await copyFor('buerger@example.org');
    const bcc = await copyFor('geheim@example.net');
    assert.deepEqual([...named.rcptTo].sort(), ['buerger@example.org', 'kollegin@example.org']);
    assert.deepEqual(bcc.rcptTo, ['geheim@example.net']);

    const recipientInfos = async (message: SunkMessage) => {
      const file = join(dir, `copy-${Math.random()}.eml`);
      await writeFile(file, message.raw);
      const printed = (await openssl(['cms', '-cmsout', '-print', '-in', file])).toString('latin1');
      return (printed.match(/d\.(ktri|kari|kekri|pwri|ori):/g) ?? []).length;
    };
    assert.equal(await recipientInfos(named), 2, 'To and Cc share a copy');
    assert.equal(await recipientInfos(bcc), 1, 'the Bcc copy names only its recipient');

    for (const [message, recipient] of [
      [named, 'kollegin@example.org'],
      [bcc, 'geheim@example.net'],
    ] as const) {
      assert.doesNotMatch(message.raw.toString('latin1').split('\r\n\r\n')[0] ?? '', /^bcc:/im);
      const file = join(dir, `${recipient}.eml`);
      await writeFile(file, message.raw);
      const { cert, key } = certs[recipient] ?? { cert: '', key: '' };
      const signed = join(dir, `${recipient}.signed.eml`);
      await openssl(['cms', '-decrypt', '-in', file, '-recip', cert, '-inkey', key, '-out', signed]);
      const signer = join(dir, `${recipient}.signer.pem`);
      const content = await openssl([
        ...['cms', '-verify', '-in', signed, '-CAfile', join(dir, 'ca.pem'), '-purpose', 'any'],
        ...['-signer', signer],
      ]);
      assert.match(content.toString(), /gezeichnet von der Amtsleitung/);
      const signerCert = await openssl(['x509', '-in', signer, '-noout', '-ext', 'subjectAltName']);
      assert.match(signerCert.toString(), /email:leitung@behoerde\.example/, 'signed with the head’s key');
      assert.doesNotMatch(signerCert.toString(), /clerk@/);
      assert.doesNotMatch((await readFile(signed)).toString('latin1'), /geheim@example\.net/);
    }
    assert.ok(!named.raw.includes(Buffer.from('geheim@example.net')), 'the named copy never names the Bcc recipient');
  });
});
