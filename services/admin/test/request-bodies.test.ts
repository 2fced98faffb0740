// Key material as users send it: `curl --data-binary @ca.pem` (application/x-www-form-urlencoded, taken raw: the
// '+' of base64 must survive), application/x-pem-file, application/pgp-keys, application/octet-stream for PKCS#12;
// and every refusal's HTTP status agrees with its error.code.
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { codeOfStatus } from '../src/problem.ts';
import { type ApiAnswer, type ApiRequest, callAdminApi, startTestAdmin, type TestAdmin } from './harness.ts';
import { createGpgKeys, createKeyMaterial, type GpgKeys, type KeyMaterial } from './key-material.ts';

const TOKEN = 'test-token-request-bodies-0123456789';
const CURL_DEFAULT = 'application/x-www-form-urlencoded';

describe('admin API request bodies', () => {
  let testAdmin: TestAdmin;
  let km: KeyMaterial;
  let gpgKeys: GpgKeys;
  let agencyId: string;
  const api = (method: string, path: string, request: ApiRequest = {}): Promise<ApiAnswer> =>
    callAdminApi(testAdmin.base, TOKEN, method, path, request);
  const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase();

  before(async () => {
    km = createKeyMaterial(undefined);
    gpgKeys = createGpgKeys();
    testAdmin = await startTestAdmin(TOKEN, { masterKey: randomBytes(32) });
    const agency = await api('POST', '/agencies', {
      body: JSON.stringify({ name: 'Bauamt West', domains: ['bauamt-west.example'] }),
      type: 'application/json',
    });
    agencyId = agency.body.id;
    const address = await api('POST', `/agencies/${agencyId}/addresses`, {
      body: JSON.stringify({ address: 'poststelle@bauamt-west.example' }),
      type: 'application/json',
    });
    assert.equal(address.status, 201, JSON.stringify(address.body));
  });

  after(async () => {
    await testAdmin?.stop();
    km?.cleanup();
    gpgKeys?.cleanup();
  });

  it("takes a PEM trust anchor as curl --data-binary sends it, raw: the base64's '+' survives", async () => {
    const pem = km.root.certPem;
    assert.match(pem, /\+/, 'the test PEM has a + to lose');
    const answer = await api('POST', '/trust-anchors', { body: pem, type: CURL_DEFAULT });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal(answer.body.fingerprint, fingerprintOf(pem));
  });

  it('takes a PEM trust anchor as application/x-pem-file, application/pem-certificate-chain and text/plain', async () => {
    for (const type of [
      'application/x-pem-file',
      'application/pem-certificate-chain',
      'text/plain',
      'text/plain; charset=utf-8',
    ]) {
      const answer = await api('POST', '/trust-anchors', { body: km.intermediate.certPem, type });
      assert.ok([200, 201].includes(answer.status), `${type}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.fingerprint, fingerprintOf(km.intermediate.certPem), type);
    }
  });

  it('takes an armored public key as curl sends it and as application/pgp-keys', async () => {
    for (const type of [CURL_DEFAULT, 'application/pgp-keys']) {
      const answer = await api('POST', '/pgp-keys', { body: gpgKeys.usable, type });
      assert.ok([200, 201].includes(answer.status), `${type}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.fingerprint, gpgKeys.usableFingerprint, type);
    }
  });

  it("takes an agency's PKCS#12 file as curl sends it and as application/octet-stream", async () => {
    const keys = `/agencies/${agencyId}/addresses/poststelle@bauamt-west.example/keys`;
    for (const [n, type] of [CURL_DEFAULT, 'application/octet-stream'].entries()) {
      const leaf = km.leaf(km.intermediate, { cn: `Poststelle ${n}`, email: 'poststelle@bauamt-west.example' });
      const answer = await api('POST', keys, {
        body: km.pkcs12(leaf, 'geheim', [km.intermediate]),
        type,
        headers: { 'x-smgw-key-password': 'geheim' },
      });
      assert.equal(answer.status, 201, `${type}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.keys[0].kind, 'smime', type);
    }
  });

  it("takes an agency's armored OpenPGP private key as curl sends it", async () => {
    const keys = `/agencies/${agencyId}/addresses/poststelle@bauamt-west.example/keys`;
    const answer = await api('POST', keys, { body: gpgKeys.usableSecret, type: CURL_DEFAULT });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal(answer.body.keys[0].kind, 'pgp');
    assert.equal(answer.body.keys[0].fingerprint, gpgKeys.usableFingerprint);
  });

  it('answers 415 UNSUPPORTED_MEDIA_TYPE naming the accepted types to a body of another type', async () => {
    const cases: { what: string; path: string; request: ApiRequest; named: string[] }[] = [
      {
        what: 'an image as a trust anchor',
        path: '/trust-anchors',
        request: { body: km.root.certPem, type: 'image/png' },
        named: ['application/x-pem-file', 'text/plain', CURL_DEFAULT],
      },
      {
        what: 'bytes as a trust anchor',
        path: '/trust-anchors',
        request: { body: km.root.certPem, type: 'application/octet-stream' },
        named: ['application/x-pem-file', 'text/plain', CURL_DEFAULT],
      },
      {
        what: 'no content-type at all',
        path: '/certificates',
        request: { body: new TextEncoder().encode(km.root.certPem) },
        named: ['application/x-pem-file'],
      },
      {
        what: 'JSON as an OpenPGP key',
        path: '/pgp-keys',
        request: { body: JSON.stringify({ key: gpgKeys.usable }), type: 'application/json' },
        named: ['application/pgp-keys', 'text/plain', CURL_DEFAULT],
      },
      {
        what: 'a PEM where JSON is expected',
        path: '/agencies',
        request: { body: km.root.certPem, type: 'application/x-pem-file' },
        named: ['application/json'],
      },
      {
        what: 'text where JSON is expected',
        path: '/agencies',
        request: { body: 'name=Bauamt', type: 'text/plain' },
        named: ['application/json'],
      },
    ];
    for (const { what, path, request, named } of cases) {
      const answer = await api('POST', path, request);
      assert.equal(answer.status, 415, `${what}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error.code, 'UNSUPPORTED_MEDIA_TYPE', what);
      for (const type of named) assert.ok(answer.body.error.message.includes(type), `${what} names ${type}`);
    }
  });

  it('answers 413 PAYLOAD_TOO_LARGE to a body over the limit', async () => {
    const answer = await api('POST', '/trust-anchors', {
      body: `${km.root.certPem}${'x'.repeat(1024 * 1024)}`,
      type: 'application/x-pem-file',
    });
    assert.equal(answer.status, 413);
    assert.equal(answer.body.error.code, 'PAYLOAD_TOO_LARGE');
  });

  it("agrees with fastify's own refusals: bad JSON 400, an unknown route or method 404", async () => {
    const badJson = await api('POST', '/agencies', { body: '{"name":', type: 'application/json' });
    assert.deepEqual([badJson.status, badJson.body.error.code], [400, 'BAD_REQUEST']);
    const unknownRoute = await api('GET', '/nothing-here');
    assert.deepEqual([unknownRoute.status, unknownRoute.body.error.code], [404, 'NOT_FOUND']);
    const unknownMethod = await api('DELETE', '/trust-anchors');
    assert.deepEqual([unknownMethod.status, unknownMethod.body.error.code], [404, 'NOT_FOUND']);
  });

  it('names a failure without a code of its own after its status', () => {
    const table: [number, string][] = [
      [400, 'BAD_REQUEST'],
      [404, 'NOT_FOUND'],
      [405, 'METHOD_NOT_ALLOWED'],
      [413, 'PAYLOAD_TOO_LARGE'],
      [415, 'UNSUPPORTED_MEDIA_TYPE'],
      [500, 'INTERNAL_ERROR'],
      [503, 'INTERNAL_ERROR'],
    ];
    for (const [status, code] of table) assert.equal(codeOfStatus(status), code, String(status));
  });
});
