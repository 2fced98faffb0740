// Keys, certificates and key-directory rows for encrypt's tests: a test CA and recipient certificates made by the
// real openssl, OpenPGP keys made by the real gpg, all in temporary directories (never committed). Not a test file.
import { spawn } from 'node:child_process';
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlobStore } from '@smgw/blob-store';
import { allowList } from '@smgw/config';
import { createRevocationFetcher, inspectPublicKey, startDecryptionWorkers } from '@smgw/crypto';
import {
  createTestPki,
  type KeySpec,
  type LeafOptions,
  type TestCa,
  type TestCertificate,
  type TestPki,
} from '@smgw/crypto/testing';
import type { Pool } from '@smgw/db';
import { type Direction, type Envelope, newMessageId } from '@smgw/envelope';
import { cachedKeyDirectory } from '@smgw/key-directory';
import type { HandlerContext } from '@smgw/mq';
import { createLogger } from '@smgw/observability';
import { sealSecret } from '@smgw/secrets';
import { envelopeFixture, startTestGateway, type TestGateway } from '@smgw/testing';
import type { EncryptDeps } from '../src/encrypt-envelope.ts';

export const testLogger = createLogger('encrypt-test', 'silent');
export const MASTER_KEY = Buffer.alloc(32, 7);
/** One pool for a test file's handlers: workers start when first needed and do not keep the process alive idle. */
export const decryptionWorkers = startDecryptionWorkers({ size: 2 });

/** What the encrypt handler needs, for tests: revocation off unless a test asks, clock fixed at the call. */
export function encryptDeps(
  pool: Pool,
  blobStore: BlobStore,
  overrides: Partial<EncryptDeps> = {},
  // Generous: a loaded CI machine must not turn a slow local CRL server into REVOCATION_UNKNOWN; tests that want a
  // timeout pass a short one.
  fetchTimeoutMs = 10_000,
): EncryptDeps {
  const now = new Date();
  return {
    pool,
    // Not listening for changes: the trust anchors and who signs are read for every message.
    keyDirectory: cachedKeyDirectory(pool, { listening: false, generation: 0 }),
    blobStore,
    // The tests' CRL and OCSP servers listen on loopback: listed, as an operator lists an internal CRL server.
    fetcher: createRevocationFetcher({ now: () => now, timeoutMs: fetchTimeoutMs, allow: allowList('127.0.0.1') }),
    revocationMode: 'off',
    maxEncryptedBytes: 10 * 1024 * 1024,
    hostname: 'smgw.test',
    masterKey: MASTER_KEY,
    maxMessageBytes: 1024 * 1024,
    internalDomains: ['behoerde.example'],
    decryptionWorkers,
    decryptionCpuLimitMs: 60_000,
    now: () => now,
    ...overrides,
  };
}

export function handlerContext(overrides: Partial<HandlerContext> = {}): HandlerContext {
  return { attempt: 0, lastAttempt: false, log: testLogger, signal: new AbortController().signal, ...overrides };
}

// The test PKI is shared with the portal's tests (@smgw/crypto/testing); encrypt's tests import it from here.
export { createTestPki, type KeySpec, type LeafOptions, type TestCa, type TestCertificate, type TestPki };

/** An HTTP server answering every request with the CRL `current()` returns. */
export async function startCrlServer(current: () => Promise<Buffer>): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((_req, res) => {
    current().then(
      (der) => {
        res.writeHead(200, { 'content-type': 'application/pkix-crl' });
        res.end(der);
      },
      () => {
        res.writeHead(500);
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/ca.crl`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface GpgHome {
  home: string;
  gpg(args: string[], input?: Buffer | string): Promise<{ code: number; stdout: Buffer; stderr: string }>;
  generateKey(email: string, kind?: 'cv25519' | 'rsa3072', expire?: string): Promise<string>;
  exportPublic(fingerprint: string): Promise<string>;
  exportSecret(fingerprint: string): Promise<string>;
  close(): Promise<void>;
}

const GPG_KEY_PARAMETERS = {
  cv25519: [
    'Key-Type: EDDSA',
    'Key-Curve: ed25519',
    'Key-Usage: sign,cert',
    'Subkey-Type: ECDH',
    'Subkey-Curve: cv25519',
  ],
  rsa3072: ['Key-Type: RSA', 'Key-Length: 3072', 'Key-Usage: sign,cert', 'Subkey-Type: RSA', 'Subkey-Length: 3072'],
};

export async function createGpgHome(): Promise<GpgHome> {
  const home = await mkdtemp(join(tmpdir(), 'smgw-gpg-'));
  const env = { ...process.env, GNUPGHOME: home, LC_ALL: 'C' };
  const exec = (command: string, args: string[], input?: Buffer | string) =>
    new Promise<{ code: number; stdout: Buffer; stderr: string }>((resolve, reject) => {
      const child = spawn(command, args, { env });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.on('error', reject);
      child.on('close', (code) =>
        resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }),
      );
      child.stdin.on('error', () => {});
      child.stdin.end(input ?? '');
    });
  const gpg = (args: string[], input?: Buffer | string) =>
    exec('gpg', ['--batch', '--no-tty', '--yes', '--trust-model', 'always', '--status-fd', '2', ...args], input);
  const mustGpg = async (args: string[], input?: Buffer | string) => {
    const result = await gpg(args, input);
    if (result.code !== 0) throw new Error(`gpg ${args.join(' ')} failed: ${result.stderr}`);
    return result;
  };
  return {
    home,
    gpg,
    async generateKey(email, kind = 'cv25519', expire = '0') {
      const parameters = [
        '%no-protection',
        ...GPG_KEY_PARAMETERS[kind],
        'Subkey-Usage: encrypt',
        `Name-Real: ${email}`,
        `Name-Email: ${email}`,
        `Expire-Date: ${expire}`,
        '%commit',
        '',
      ].join('\n');
      const result = await mustGpg(['--gen-key'], parameters);
      const fingerprint = /KEY_CREATED \S+ ([0-9A-F]+)/.exec(result.stderr)?.[1];
      if (!fingerprint) throw new Error(`gpg did not report the new key: ${result.stderr}`);
      return fingerprint;
    },
    async exportPublic(fingerprint) {
      return (await mustGpg(['--armor', '--export', fingerprint])).stdout.toString('utf8');
    },
    async exportSecret(fingerprint) {
      return (await mustGpg(['--armor', '--export-secret-keys', fingerprint])).stdout.toString('utf8');
    },
    async close() {
      await exec('gpgconf', ['--kill', 'gpg-agent']);
      await rm(home, { recursive: true, force: true });
    },
  };
}

// Key-directory rows, written the way packages/db/migrations/008_key_directory.sql describes them.

export async function insertTrustAnchor(pool: Pool, der: Buffer): Promise<void> {
  const cert = new X509Certificate(der);
  await pool.query(
    `insert into trust_anchors (fingerprint, subject, der, not_before, not_after, added_by)
     values ($1, $2, $3, $4, $5, 'test') on conflict do nothing`,
    [
      createHash('sha256').update(der).digest('hex'),
      cert.subject,
      der,
      new Date(cert.validFrom),
      new Date(cert.validTo),
    ],
  );
}

export async function insertCertificate(pool: Pool, certificate: TestCertificate): Promise<void> {
  const cert = new X509Certificate(certificate.der);
  await pool.query(
    `insert into certificates (fingerprint, subject, addresses, issuer, serial, not_before, not_after, der, source)
     values ($1, $2, $3, $4, $5, $6, $7, $8, 'admin')`,
    [
      certificate.fingerprint,
      cert.subject,
      [certificate.address.toLowerCase()],
      cert.issuer,
      cert.serialNumber,
      new Date(cert.validFrom),
      new Date(cert.validTo),
      certificate.der,
    ],
  );
}

export async function insertPgpKey(
  pool: Pool,
  armored: string,
  state: 'pending' | 'approved' | 'rejected',
): Promise<string> {
  const info = await inspectPublicKey(armored);
  await pool.query(
    `insert into pgp_keys (fingerprint, armored, addresses, algorithm, expires_at, state, source, state_changed_by,
                           state_changed_at, approved_addresses)
     values ($1, $2, $3, $4, $5, $6, 'imported', $7, $8, $9)`,
    [
      info.fingerprint,
      info.armored,
      info.addresses,
      info.algorithm,
      info.expires,
      state,
      state === 'pending' ? null : 'test-operator',
      state === 'pending' ? null : new Date(),
      state === 'approved' ? info.addresses : [],
    ],
  );
  return info.fingerprint;
}

/** An agency with one address holding one private key (sealed under MASTER_KEY). */
export async function insertAgencyKey(
  pool: Pool,
  address: string,
  key:
    | { kind: 'smime'; certificate: TestCertificate }
    | { kind: 'pgp'; fingerprint: string; publicArmored: string; secretArmored: string },
  masterKey: Buffer = MASTER_KEY,
): Promise<void> {
  const domain = address.split('@')[1] ?? '';
  const agencyId = newMessageId();
  await pool.query(`insert into agencies (id, name) values ($1, $2)`, [agencyId, `Agency ${agencyId}`]);
  await pool.query(`insert into agency_domains (domain, agency_id) values ($1, $2) on conflict do nothing`, [
    domain,
    agencyId,
  ]);
  await pool.query(`insert into agency_addresses (address, agency_id) values ($1, $2)`, [address, agencyId]);
  if (key.kind === 'smime') {
    const pkcs8 = createPrivateKey(key.certificate.keyPem).export({ format: 'der', type: 'pkcs8' });
    const fingerprint = key.certificate.fingerprint;
    await pool.query(
      `insert into agency_keys (id, address, kind, fingerprint, certificate, private_key_sealed)
       values ($1, $2, 'smime', $3, $4, $5)`,
      [
        newMessageId(),
        address,
        fingerprint,
        key.certificate.der,
        sealSecret(masterKey, pkcs8, { aad: `${address}|${fingerprint}` }),
      ],
    );
  } else {
    await pool.query(
      `insert into agency_keys (id, address, kind, fingerprint, public_armored, private_key_sealed)
       values ($1, $2, 'pgp', $3, $4, $5)`,
      [
        newMessageId(),
        address,
        key.fingerprint,
        key.publicArmored,
        sealSecret(masterKey, Buffer.from(key.secretArmored), { aad: `${address}|${key.fingerprint}` }),
      ],
    );
  }
}

export function testEnvelope(
  blob: Envelope['blob'],
  direction: Direction,
  overrides: Partial<Envelope> = {},
): Envelope {
  return envelopeFixture({
    direction,
    mailFrom: direction === 'inbound' ? 'absender@extern.example' : 'clerk@behoerde.example',
    recipients: direction === 'outbound' ? ['citizen@mail.example'] : ['poststelle@behoerde.example'],
    client: { listener: direction === 'inbound' ? 'inbound' : 'submission', ip: '127.0.0.1', helo: 'test', tls: false },
    blob,
    // What is left of the slip when the message reaches encrypt (scan is left out for inbound here).
    itinerary: ['encrypt', 'deliver'],
    ...overrides,
  });
}

/** The inner entity every outbound test sends: what the recipient must get back byte for byte. */
export const INNER_ENTITY = Buffer.from(
  'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' +
    'Sehr geehrte Frau Müller,\r\n\r\nanbei Ihr Bescheid.\r\n',
  'utf8',
);

export function outboundMail(to: string[], subject = 'Ihr Bescheid'): Buffer {
  return Buffer.concat([
    Buffer.from(
      [
        'Received: from client.behoerde.example by smgw.test; Mon, 02 Mar 2026 10:00:01 +0100',
        'From: Sachbearbeitung <clerk@behoerde.example>',
        `To: ${to.join(', ')}`,
        `Subject: ${subject}`,
        'Date: Mon, 02 Mar 2026 10:00:00 +0100',
        'Message-ID: <bescheid-1@behoerde.example>',
        'X-Internal-Routing: zimmer 4711',
        'MIME-Version: 1.0',
        '',
      ].join('\r\n'),
    ),
    INNER_ENTITY,
  ]);
}

/**
 * The gateway as real processes (ingest → encrypt → scan → deliver) with `address` holding an S/MIME key of the test
 * PKI, as a captured message to that agency would have been encrypted to.
 */
export async function startDecryptingGateway(
  address: string,
  caName: string,
  env: Record<string, string> = {},
): Promise<{ gw: TestGateway; pki: TestPki; ca: TestCa; agency: TestCertificate }> {
  const [gw, pki] = await Promise.all([
    startTestGateway({ services: ['ingest', 'encrypt', 'scan', 'deliver'], env }),
    createTestPki(),
  ]);
  const ca = await pki.ca(caName);
  const agency = await pki.leaf(ca, address, { key: 'rsa-2048' });
  await insertAgencyKey(gw.db.pool, address, { kind: 'smime', certificate: agency }, gw.masterKey);
  return { gw, pki, ca, agency };
}

/** What a sender on the internet sends an agency: `entity` S/MIME-encrypted by openssl (AES-256-CBC) to `to`'s key. */
export async function opensslEncrypted(
  pki: TestPki,
  certificate: TestCertificate | TestCertificate[],
  entity: Buffer,
  outer: { to: string; subject: string; file: string },
): Promise<Buffer> {
  const file = await pki.file(`${outer.file}.eml`, entity);
  return pki.openssl([
    'cms',
    '-encrypt',
    '-in',
    file,
    '-aes256',
    '-from',
    'buerger@example.org',
    '-to',
    outer.to,
    '-subject',
    outer.subject,
    ...[certificate].flat().map((c) => c.certPath),
  ]);
}
