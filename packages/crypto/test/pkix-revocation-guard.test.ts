// The revocation fetcher cannot be steered by strangers (issue 8, finding 3): a certificate names the URLs, so
// every target is checked on the address actually connected to, redirects are not followed, answers are capped,
// URLs per certificate and requests at once are bounded, and nothing is fetched for a path that does not reach one
// of our trust anchors. The listeners here count connections, so "refused" means "never connected".
import assert from 'node:assert/strict';
import type { webcrypto } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import ipaddr from 'ipaddr.js';
import {
  createRevocationFetcher,
  NOTHING_ALLOWED,
  type RevocationAllow,
  RevocationHttpError,
  refusedAddress,
  requestRevocationData,
  validateCertificatePathFetchingRevocation,
} from '../src/pkix/index.ts';
import { EMAIL_PROTECTION, type Issued, issue, rsaKeys } from './pkix-test-pki.ts';

const START = new Date('2026-03-01T12:00:00Z');

interface CountingServer {
  server: Server;
  port: number;
  connections: number;
  requests: string[];
  /** What to answer; default 404. */
  answer: (url: string) => { status: number; headers?: Record<string, string>; body?: Buffer };
}

async function countingServer(): Promise<CountingServer> {
  const state: CountingServer = {
    server: createServer((request, response) => {
      state.requests.push(request.url ?? '');
      const { status, headers, body } = state.answer(request.url ?? '');
      response.writeHead(status, headers).end(body);
    }),
    port: 0,
    connections: 0,
    requests: [],
    answer: () => ({ status: 404 }),
  };
  state.server.on('connection', () => state.connections++);
  await new Promise<void>((resolve) => state.server.listen(0, '127.0.0.1', resolve));
  state.port = (state.server.address() as AddressInfo).port;
  return state;
}

const only = (port: number): RevocationAllow => ({ networks: [], endpoints: [{ host: '127.0.0.1', port }] });

describe('revocation targets', () => {
  const refused = [
    '127.0.0.1',
    '127.1.2.3',
    '10.0.0.1',
    '172.16.5.4',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '64:ff9b::a00:1',
    '2002:a00:1::1',
  ];
  for (const address of refused) {
    it(`refuses ${address} unless listed`, () => {
      assert.match(refusedAddress(address, 80, address, NOTHING_ALLOWED) ?? '', /not listed in SMGW_REVOCATION_ALLOW/);
    });
  }

  for (const address of ['8.8.8.8', '2a00:1450:4001:80b::200e']) {
    it(`lets the public address ${address} through`, () => {
      assert.equal(refusedAddress(address, 80, address, NOTHING_ALLOWED), undefined);
    });
  }

  it('lets a listed network or a listed host:port through, and only that port', () => {
    const allow: RevocationAllow = {
      networks: [ipaddr.parseCIDR('10.1.0.0/16')],
      endpoints: [{ host: 'crl.intern.example', port: 8080 }],
    };
    assert.equal(refusedAddress('10.1.2.3', 80, '10.1.2.3', allow), undefined);
    assert.ok(refusedAddress('10.2.0.1', 80, '10.2.0.1', allow));
    assert.equal(refusedAddress('10.9.9.9', 8080, 'crl.intern.example', allow), undefined);
    assert.ok(refusedAddress('10.9.9.9', 8081, 'crl.intern.example', allow));
    assert.ok(refusedAddress('10.9.9.9', 8080, 'other.intern.example', allow));
  });
});

describe('requestRevocationData', () => {
  let target: CountingServer;
  let elsewhere: CountingServer;

  before(async () => {
    [target, elsewhere] = await Promise.all([countingServer(), countingServer()]);
  });
  after(async () => {
    for (const s of [target, elsewhere]) {
      s.server.closeAllConnections();
      await new Promise((resolve) => s.server.close(resolve));
    }
  });

  const get = (url: string, allow: RevocationAllow, maxBytes = 1024) =>
    requestRevocationData({ url, method: 'GET', maxBytes, timeoutMs: 2000, allow });

  it('never connects to loopback, by address or by a name that resolves there, unless listed', async () => {
    const before = target.connections;
    for (const url of [
      `http://127.0.0.1:${target.port}/x.crl`,
      `http://localhost:${target.port}/x.crl`,
      `http://[::ffff:127.0.0.1]:${target.port}/x.crl`,
      `http://2130706433:${target.port}/x.crl`,
    ]) {
      await assert.rejects(get(url, NOTHING_ALLOWED), (err: unknown) => {
        assert.ok(err instanceof RevocationHttpError, String(err));
        assert.equal(err.code, 'REVOCATION_URL_REFUSED', `${url}: ${err.message}`);
        return true;
      });
    }
    assert.equal(target.connections, before);
  });

  it('refuses other schemes and URLs with credentials without connecting', async () => {
    for (const url of ['file:///etc/passwd', 'ldap://127.0.0.1/cn=x', `http://u:p@127.0.0.1:${target.port}/`]) {
      await assert.rejects(get(url, only(target.port)), { code: 'REVOCATION_URL_REFUSED' });
    }
  });

  it('fetches from a listed endpoint', async () => {
    target.answer = () => ({ status: 200, body: Buffer.from('crl bytes') });
    const body = await get(`http://127.0.0.1:${target.port}/x.crl`, only(target.port));
    assert.equal(Buffer.from(body).toString(), 'crl bytes');
  });

  it('does not follow a redirect, not even to another listed endpoint', async () => {
    target.answer = () => ({ status: 302, headers: { location: `http://127.0.0.1:${elsewhere.port}/y.crl` } });
    const allow: RevocationAllow = { networks: [[ipaddr.parse('127.0.0.1'), 32]], endpoints: [] };
    await assert.rejects(get(`http://127.0.0.1:${target.port}/x.crl`, allow), /HTTP 302/);
    assert.equal(elsewhere.connections, 0);
  });

  it('gives up on an answer over its size cap, declared or streamed', async () => {
    target.answer = () => ({ status: 200, body: Buffer.alloc(5000, 1) });
    await assert.rejects(get(`http://127.0.0.1:${target.port}/x.crl`, only(target.port), 1024), /larger than 1024/);
  });
});

describe('the revocation fetcher', () => {
  let server: CountingServer;
  let keys: webcrypto.CryptoKeyPair;
  let root: Issued;
  let ca: Issued;

  before(async () => {
    server = await countingServer();
    keys = await rsaKeys();
    root = await issue({ name: 'Guard Root', keys, serial: '01', ca: true }, START);
    ca = await issue({ name: 'Guard CA', keys, issuer: root, serial: '02', ca: true }, START);
  });
  after(async () => {
    server.server.closeAllConnections();
    await new Promise((resolve) => server.server.close(resolve));
  });

  it('fetches at most two CRL URLs of a certificate that names a thousand', async () => {
    const base = `http://127.0.0.1:${server.port}`;
    const urls = Array.from({ length: 1000 }, (_, i) => `${base}/crl-${i}`);
    const leaf = await issue(
      { name: 'Many URLs', keys, issuer: ca, serial: '10', extendedKeyUsage: [EMAIL_PROTECTION], crlUrl: urls },
      START,
    );
    const requestsBefore = server.requests.length;
    const fetcher = createRevocationFetcher({ now: () => START, timeoutMs: 2000, allow: only(server.port) });
    const fetched = await fetcher.fetchFor(leaf.der, [ca.der], [root.der]);
    assert.equal(server.requests.length - requestsBefore, 2);
    assert.equal(fetched.problems.length, 2);
  });

  it('fetches nothing for a certificate whose path does not reach a trust anchor, whatever it names', async () => {
    const strangerKeys = await rsaKeys();
    const strangerRoot = await issue({ name: 'Stranger Root', keys: strangerKeys, serial: '01', ca: true }, START);
    const base = `http://127.0.0.1:${server.port}`;
    const leaf = await issue(
      {
        name: 'Stranger',
        keys: strangerKeys,
        issuer: strangerRoot,
        serial: '20',
        extendedKeyUsage: [EMAIL_PROTECTION],
        ocspUrl: `${base}/ocsp`,
        crlUrl: [`${base}/a.crl`, `${base}/b.crl`],
      },
      START,
    );
    const connectionsBefore = server.connections;
    const fetcher = createRevocationFetcher({ now: () => START, timeoutMs: 2000, allow: only(server.port) });
    const result = await validateCertificatePathFetchingRevocation(
      {
        endEntity: leaf.der,
        intermediates: [strangerRoot.der, ca.der],
        trustAnchors: [{ certificate: root.der }],
        time: START,
        purpose: 'emailProtection',
        revocation: 'require',
      },
      fetcher,
    );
    assert.equal(result.ok, false);
    assert.equal(server.connections, connectionsBefore);
  });

  it('fetches only for the validated path, not for extra certificates in the bag', async () => {
    const base = `http://127.0.0.1:${server.port}`;
    const leaf = await issue(
      { name: 'Good', keys, issuer: ca, serial: '30', extendedKeyUsage: [EMAIL_PROTECTION], crlUrl: `${base}/ok.crl` },
      START,
    );
    const extra = await issue(
      { name: 'Extra', keys, issuer: ca, serial: '31', crlUrl: `${base}/extra.crl`, ca: true },
      START,
    );
    const before = server.requests.length;
    const fetcher = createRevocationFetcher({ now: () => START, timeoutMs: 2000, allow: only(server.port) });
    const result = await validateCertificatePathFetchingRevocation(
      {
        endEntity: leaf.der,
        intermediates: [extra.der, ca.der],
        trustAnchors: [{ certificate: root.der }],
        time: START,
        purpose: 'emailProtection',
        revocation: 'prefer',
      },
      fetcher,
    );
    assert.ok(result.ok, result.ok ? '' : result.reason);
    assert.deepEqual(server.requests.slice(before), ['/ok.crl']);
    assert.equal(result.path.length, 3);
  });
});
