// STARTTLS on both listeners against the real PostgreSQL, RabbitMQ and Redis: the TLS policy (versions, forward
// secrecy, renegotiation) with an operator's RSA certificate chain, and what a man in the middle can slip in before
// the handshake (CVE-2011-0411, STARTTLS command injection) when the pipelining guard does not close the session
// first (a trusted network, or SMGW_SMTP_FORBID_UNAUTH_PIPELINING=false).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type tls from 'node:tls';
import { promisify } from 'node:util';
import { createSubmissionAccount } from '@smgw/submission-accounts';
import type { RunningIngest } from '../src/service.ts';
import { createTestWorld, type TestWorld } from './harness.ts';
import { SmtpTestClient } from './smtp-client.ts';

const execFileAsync = promisify(execFile);
const plain = (user: string, password: string) => Buffer.from(`\u0000${user}\u0000${password}`).toString('base64');

/**
 * A root, an intermediate and an RSA leaf for smgw.test, as an operator gives them: SMGW_TLS_CERT_FILE holds the leaf
 * and the intermediate.
 */
async function makeRsaChain(dir: string): Promise<{ certFile: string; keyFile: string; rootFile: string }> {
  const openssl = (...args: string[]) => execFileAsync('openssl', args, { cwd: dir, timeout: 30_000 });
  const newKey = ['-newkey', 'rsa:2048', '-nodes', '-days', '2'];
  await writeFile(join(dir, 'ca.ext'), 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n');
  await writeFile(join(dir, 'leaf.ext'), 'subjectAltName=DNS:smgw.test\nextendedKeyUsage=serverAuth\n');
  await openssl('req', '-x509', ...newKey, '-keyout', 'root.key', '-out', 'root.pem', '-subj', '/CN=Root');
  /** A key and a certificate `name`.pem for `cn`, signed by `issuer`. */
  const issue = async (name: string, cn: string, issuer: string, ext: string) => {
    await openssl('req', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    const ca = ['-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-days', '2'];
    await openssl('x509', '-req', '-in', `${name}.csr`, ...ca, '-extfile', ext, '-out', `${name}.pem`);
  };
  await issue('int', 'Intermediate', 'root', 'ca.ext');
  await issue('leaf', 'smgw.test', 'int', 'leaf.ext');
  const { stdout: leaf } = await openssl('x509', '-in', 'leaf.pem');
  const { stdout: intermediate } = await openssl('x509', '-in', 'int.pem');
  await writeFile(join(dir, 'chain.pem'), leaf + intermediate);
  return { certFile: join(dir, 'chain.pem'), keyFile: join(dir, 'leaf.key'), rootFile: join(dir, 'root.pem') };
}

/** Opens a session, says EHLO and does STARTTLS with these client options; the handshake's error if it fails. */
async function tryStartTls(port: number, options: tls.ConnectionOptions) {
  const { client } = await SmtpTestClient.open(port);
  assert.equal((await client.command('EHLO client.example')).code, 250);
  try {
    assert.equal((await client.startTls(options)).code, 220);
    return { client, error: undefined };
  } catch (err) {
    client.destroy();
    return { client, error: err as Error & { code?: string } };
  }
}

describe('STARTTLS with an operator RSA certificate chain', () => {
  let world: TestWorld;
  let ingest: RunningIngest;
  let dir: string;
  let rootFile: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'smgw-ingest-tls-test-'));
    const chain = await makeRsaChain(dir);
    rootFile = chain.rootFile;
    world = await createTestWorld();
    ({ ingest } = await world.start({
      SMGW_SUBMISSION_NETWORKS: '10.0.0.0/8',
      SMGW_TLS_CERT_FILE: chain.certFile,
      SMGW_TLS_KEY_FILE: chain.keyFile,
    }));
  });
  after(async () => {
    await world.close();
    await rm(dir, { recursive: true, force: true });
  });

  const ports = () =>
    [
      ['inbound', ingest.inboundPort],
      ['submission', ingest.submissionPort],
    ] as const;

  it('serves the leaf and its intermediate, which a client trusting only the root verifies for SMGW_HOSTNAME', async () => {
    for (const [listener, port] of ports()) {
      const { client, error } = await tryStartTls(port, {
        rejectUnauthorized: true,
        ca: await readFile(rootFile),
        servername: 'smgw.test',
      });
      assert.equal(error, undefined, `${listener}: ${error?.message}`);
      const chain = client.tlsSocket?.getPeerCertificate(true);
      assert.equal(chain?.subject.CN, 'smgw.test');
      assert.equal(chain?.issuerCertificate?.subject.CN, 'Intermediate');
      await client.quit();
    }
  });

  it('takes TLS 1.3 and TLS 1.2 with forward secrecy (ECDHE)', async () => {
    for (const [listener, port] of ports()) {
      for (const options of [{}, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }] as const) {
        const { client, error } = await tryStartTls(port, options);
        assert.equal(error, undefined, `${listener} ${JSON.stringify(options)}: ${error?.message}`);
        assert.equal((await client.command('EHLO client.example')).code, 250);
        await client.quit();
      }
    }
  });

  it('refuses TLS 1.2 cipher suites without forward secrecy (RSA key transport), which an RSA key made possible', async () => {
    for (const [listener, port] of ports()) {
      for (const ciphers of ['AES128-GCM-SHA256', 'AES256-SHA256', 'AES128-SHA']) {
        const { error } = await tryStartTls(port, { maxVersion: 'TLSv1.2', ciphers });
        assert.ok(error, `${listener} took ${ciphers}`);
      }
    }
  });

  it('refuses TLS 1.2 CBC suites with SHA-1 MACs', async () => {
    for (const [, port] of ports()) {
      const { error } = await tryStartTls(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA' });
      assert.ok(error);
    }
  });

  it('refuses TLS 1.0 and 1.1, also from a client willing to use them at OpenSSL security level 0', async () => {
    for (const [listener, port] of ports()) {
      for (const version of ['TLSv1', 'TLSv1.1'] as const) {
        const { error } = await tryStartTls(port, {
          minVersion: version,
          maxVersion: version,
          ciphers: 'DEFAULT:@SECLEVEL=0',
        });
        assert.ok(error, `${listener} took ${version}`);
      }
    }
  });

  it('issues no TLS 1.2 session ticket and resumes no TLS 1.2 session (every session keeps forward secrecy)', async () => {
    for (const [listener, port] of ports()) {
      const first = await tryStartTls(port, { maxVersion: 'TLSv1.2' });
      assert.equal(first.error, undefined);
      const socket = first.client.tlsSocket;
      assert.ok(socket);
      // A ticket would hold the session's master secret under a key that lives as long as the process.
      assert.equal(socket.getTLSTicket(), undefined, `${listener} issued a session ticket`);
      const session = socket.getSession();
      await first.client.quit();

      const second = await tryStartTls(port, { maxVersion: 'TLSv1.2', session });
      assert.equal(second.error, undefined);
      assert.equal(second.client.tlsSocket?.isSessionReused(), false, `${listener} resumed a TLS 1.2 session`);
      await second.client.quit();
    }
  });

  it('resumes a TLS 1.3 session only with a fresh key exchange, if at all', async () => {
    for (const [listener, port] of ports()) {
      const first = await tryStartTls(port, { minVersion: 'TLSv1.3' });
      assert.equal(first.error, undefined);
      // TLS 1.3 sends its tickets after the handshake, before the reply to the EHLO inside TLS.
      assert.equal((await first.client.command('EHLO client.example')).code, 250);
      const session = first.client.tlsSocket?.getSession();
      await first.client.quit();
      const again = await tryStartTls(port, { minVersion: 'TLSv1.3', session });
      assert.equal(again.error, undefined);
      if (again.client.tlsSocket?.isSessionReused()) {
        // OpenSSL takes psk_dhe_ke only (no SSL_OP_ALLOW_NO_DHE_KEX): a resumed session has its own key exchange
        // (X25519MLKEM768 or ECDHE), so the ticket key opens no recorded traffic.
        const keyExchange = again.client.tlsSocket.getEphemeralKeyInfo();
        assert.ok(keyExchange && 'name' in keyExchange, `${listener} resumed without a key exchange`);
      }
      await again.client.quit();
    }
  });

  it('refuses a renegotiation the client starts (each one a handshake of the server key for nothing)', async () => {
    for (const [listener, port] of ports()) {
      const { client, error } = await tryStartTls(port, { maxVersion: 'TLSv1.2' });
      assert.equal(error, undefined);
      assert.equal((await client.command('EHLO client.example')).code, 250);
      const socket = client.tlsSocket;
      assert.ok(socket);
      const renegotiated = await new Promise<Error | null>((resolve) => {
        socket.once('error', resolve);
        socket.renegotiate({}, (err) => resolve(err));
      });
      assert.ok(renegotiated, `${listener} renegotiated`);
      client.destroy();
    }
  });
});

describe('STARTTLS command injection (what arrived in the clear with STARTTLS never runs inside TLS)', () => {
  let world: TestWorld;
  /** 127.0.0.1 is trusted (no pipelining guard, no AUTH needed). */
  let trusted: RunningIngest;
  /** 127.0.0.1 must AUTH after STARTTLS, and the pipelining guard is off. */
  let unguarded: RunningIngest;
  const password = 'a long enough secret';

  before(async () => {
    world = await createTestWorld();
    ({ ingest: trusted } = await world.start());
    ({ ingest: unguarded } = await world.start({
      SMGW_SUBMISSION_NETWORKS: '10.0.0.0/8',
      SMGW_SMTP_FORBID_UNAUTH_PIPELINING: 'false',
    }));
    await createSubmissionAccount(world.db.pool, {
      username: 'kanzlei@behoerde.example',
      password,
      senderDomains: ['behoerde.example'],
    });
  });
  after(() => world.close());

  it('does not authenticate a submission session by an AUTH sent in the clear right after STARTTLS', async () => {
    const { client } = await SmtpTestClient.open(unguarded.submissionPort);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    const reply = await client.startTls(
      {},
      `AUTH PLAIN ${plain('kanzlei@behoerde.example', password)}\r\nMAIL FROM:<clerk@behoerde.example>\r\n`,
    );
    assert.equal(reply.code, 220);
    // No reply to the injected lines, in the clear or inside TLS: the first reply inside TLS is the one to EHLO.
    const ehlo = await client.command('EHLO client.example');
    assert.equal(ehlo.code, 250, ehlo.text);
    assert.match(ehlo.text, /AUTH PLAIN LOGIN/);
    assert.equal(
      (await client.command('MAIL FROM:<clerk@behoerde.example>')).text,
      '530 5.7.0 Authentication required',
    );
    await client.quit();
  });

  it('runs none of more than a hundred lines sent in the clear with STARTTLS (the parser yields between them)', async () => {
    const { client } = await SmtpTestClient.open(unguarded.submissionPort);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    const injected = `${'NOOP\r\n'.repeat(150)}EHLO evil.example\r\nAUTH PLAIN ${plain('kanzlei@behoerde.example', password)}\r\n`;
    assert.equal((await client.startTls({}, injected)).code, 220);
    const noop = await client.command('NOOP');
    assert.equal(noop.text, '250 2.0.0 OK');
    assert.equal((await client.command('MAIL FROM:<clerk@behoerde.example>')).code, 503);
    await client.quit();
  });

  it('forgets on a trusted network what came before TLS: the EHLO, and a transaction sent with STARTTLS', async () => {
    const { client } = await SmtpTestClient.open(trusted.inboundPort);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    const injected = 'MAIL FROM:<a@sender.example>\r\nRCPT TO:<x@behoerde.example>\r\nDATA\r\n';
    assert.equal((await client.startTls({}, injected)).code, 220);
    assert.equal((await client.command('RCPT TO:<x@behoerde.example>')).text, '503 5.5.1 Error: send HELO/EHLO first');
    assert.equal((await client.command('EHLO client.example')).code, 250);
    assert.equal((await client.command('RCPT TO:<x@behoerde.example>')).code, 503);
    await client.quit();
    assert.deepEqual(await world.takeInboundEnvelopes(), []);
  });

  it('refuses AUTH on submission before TLS after RSET and after a refused STARTTLS, and after TLS until EHLO', async () => {
    const auth = `AUTH PLAIN ${plain('kanzlei@behoerde.example', password)}`;
    const { client } = await SmtpTestClient.open(unguarded.submissionPort);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    assert.equal((await client.command('RSET')).code, 250);
    assert.equal((await client.command(auth)).code, 500);
    assert.equal((await client.command('STARTTLS now')).code, 501);
    assert.equal((await client.command(auth)).code, 500);
    assert.equal((await client.command('MAIL FROM:<clerk@behoerde.example>')).code, 530);
    assert.equal((await client.startTls()).code, 220);
    assert.equal((await client.command(auth)).text, '503 5.5.1 Error: send HELO/EHLO first');
    assert.equal((await client.command('EHLO client.example')).code, 250);
    assert.equal((await client.command(auth)).code, 235);
    await client.quit();
  });
});
