// Revocation fetching against a local OCSP responder and CRL server started by the test.
import assert from 'node:assert/strict';
import type { webcrypto } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import ipaddr from 'ipaddr.js';
import * as pkijs from 'pkijs';
import {
  createRevocationFetcher,
  type PathValidationInput,
  type RevocationAllow,
  validateCertificatePathFetchingRevocation,
} from '../src/pkix/index.ts';
import { crlOf, EMAIL_PROTECTION, type Issued, issue, ocspResponseFor, rsaKeys } from './pkix-test-pki.ts';

/** The test's own responder is on loopback: listed, as an operator lists an internal CRL server. */
const LOOPBACK_LISTED: RevocationAllow = { networks: [[ipaddr.parse('127.0.0.1'), 32]], endpoints: [] };
const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const START = new Date('2026-03-01T12:00:00Z');

async function body(request: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

describe('validateCertificatePathFetchingRevocation', () => {
  let server: Server;
  let base: string;
  let keys: webcrypto.CryptoKeyPair;
  let root: Issued;
  let ca: Issued;
  const leaves = new Map<string, Issued>();
  const revokedSerials = new Set<string>();
  const hits = { ocsp: 0, crl: 0 };
  let stall = false;
  let clock = START;

  before(async () => {
    server = createServer((request, response) => {
      void (async () => {
        if (stall) return; // never answers: the client's timeout must end the wait
        if (request.url === '/ca.crl') {
          hits.crl++;
          const crl = await crlOf(ca, [...revokedSerials], {
            thisUpdate: new Date(clock.getTime() - HOUR),
            nextUpdate: new Date(clock.getTime() + DAY),
          });
          response.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(crl);
          return;
        }
        if (request.url === '/ocsp' && request.method === 'POST') {
          hits.ocsp++;
          const ocspRequest = pkijs.OCSPRequest.fromBER(await body(request));
          const serial = Buffer.from(
            ocspRequest.tbsRequest.requestList[0]?.reqCert.serialNumber.valueBlock.valueHexView ?? [],
          ).toString('hex');
          const leaf = leaves.get(serial);
          if (!leaf) {
            response.writeHead(404).end();
            return;
          }
          const answer = await ocspResponseFor(leaf, ca, revokedSerials.has(serial) ? 'revoked' : 'good', {
            thisUpdate: new Date(clock.getTime() - HOUR),
            nextUpdate: new Date(clock.getTime() + DAY),
          });
          response.writeHead(200, { 'content-type': 'application/ocsp-response' }).end(answer);
          return;
        }
        response.writeHead(404).end();
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    keys = await rsaKeys();
    root = await issue({ name: 'Fetch Test Root', keys, serial: '01', ca: true }, START);
    ca = await issue({ name: 'Fetch Test CA', keys, issuer: root, serial: '02', ca: true }, START);
    for (const [serial, urls] of [
      ['10', { ocspUrl: `${base}/ocsp`, crlUrl: `${base}/ca.crl` }],
      ['11', { ocspUrl: `${base}/ocsp`, crlUrl: `${base}/ca.crl` }],
      ['12', { crlUrl: `${base}/ca.crl` }],
    ] as const) {
      leaves.set(
        serial,
        await issue(
          { name: `Leaf ${serial}`, keys, issuer: ca, serial, extendedKeyUsage: [EMAIL_PROTECTION], ...urls },
          START,
        ),
      );
    }
    revokedSerials.add('11');
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function input(serial: string): PathValidationInput {
    return {
      endEntity: (leaves.get(serial) as Issued).der,
      intermediates: [ca.der],
      trustAnchors: [{ certificate: root.der }],
      time: clock,
      purpose: 'emailProtection',
      // The root is the anchor; the CA's own status comes from a CRL of the root handed in directly.
      crls: [],
      revocation: 'require',
    };
  }

  async function rootCrl(): Promise<Uint8Array> {
    return crlOf(root, [], {
      thisUpdate: new Date(clock.getTime() - HOUR),
      nextUpdate: new Date(clock.getTime() + DAY),
    });
  }

  it('fetches an OCSP answer and accepts a good certificate', async () => {
    const fetcher = createRevocationFetcher({ now: () => clock, timeoutMs: 2000, allow: LOOPBACK_LISTED });
    const result = await validateCertificatePathFetchingRevocation(
      { ...input('10'), crls: [await rootCrl()] },
      fetcher,
    );
    assert.ok(result.ok, result.ok ? '' : result.reason);
    assert.deepEqual(result.revocation, ['good-ocsp', 'good-crl']);
  });

  it('refuses a certificate the fetched OCSP answer reports revoked', async () => {
    const fetcher = createRevocationFetcher({ now: () => clock, timeoutMs: 2000, allow: LOOPBACK_LISTED });
    const result = await validateCertificatePathFetchingRevocation(
      { ...input('11'), crls: [await rootCrl()] },
      fetcher,
    );
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.code, 'REVOKED');
  });

  it('fetches the CRL from the distribution point when there is no OCSP responder', async () => {
    const fetcher = createRevocationFetcher({ now: () => clock, timeoutMs: 2000, allow: LOOPBACK_LISTED });
    const result = await validateCertificatePathFetchingRevocation(
      { ...input('12'), crls: [await rootCrl()] },
      fetcher,
    );
    assert.ok(result.ok, result.ok ? '' : result.reason);
    assert.deepEqual(result.revocation, ['good-crl', 'good-crl']);
  });

  it('answers from its cache until nextUpdate, then fetches again', async () => {
    const fetcher = createRevocationFetcher({ now: () => clock, timeoutMs: 2000, allow: LOOPBACK_LISTED });
    const crls = [await rootCrl()];
    await validateCertificatePathFetchingRevocation({ ...input('10'), crls }, fetcher);
    const before = { ...hits };
    const again = await validateCertificatePathFetchingRevocation({ ...input('10'), crls }, fetcher);
    assert.ok(again.ok);
    assert.deepEqual(hits, before);
    clock = new Date(START.getTime() + DAY + HOUR);
    try {
      const later = await validateCertificatePathFetchingRevocation(
        { ...input('10'), crls: [await rootCrl()] },
        fetcher,
      );
      assert.ok(later.ok, later.ok ? '' : later.reason);
      assert.equal(hits.ocsp, before.ocsp + 1);
      assert.equal(hits.crl, before.crl + 1);
    } finally {
      clock = START;
    }
  });

  it('fails closed with REVOCATION_UNKNOWN when the responder and CRL server do not answer in time', async () => {
    const fetcher = createRevocationFetcher({ now: () => clock, timeoutMs: 200, allow: LOOPBACK_LISTED });
    stall = true;
    try {
      const result = await validateCertificatePathFetchingRevocation(
        { ...input('10'), crls: [await rootCrl()] },
        fetcher,
      );
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.code, 'REVOCATION_UNKNOWN');
      assert.equal(result.fetchProblems.length, 2);
      assert.match(result.fetchProblems.join(' '), /OCSP .*CRL|CRL .*OCSP/);
    } finally {
      stall = false;
    }
  });
});
