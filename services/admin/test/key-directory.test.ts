import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { allowList } from '@smgw/config';
import { createRevocationFetcher, readPemCertificates } from '@smgw/crypto';
import { isMessageId } from '@smgw/envelope';
import { acceptRecipientCertificate, addPgpKey, agencyKeyAad } from '@smgw/key-directory';
import { createFolderMailboxKeyStore, ensureMailbox } from '@smgw/mailbox-store';
import { openSecret } from '@smgw/secrets';
import type { TestDatabase } from '@smgw/testing';
import { runCli } from '../src/cli.ts';
import type { RunningAdmin } from '../src/service.ts';
import {
  type ApiAnswer,
  type ApiRequest,
  callAdminApi,
  captureStderr,
  captureStdout,
  startTestAdmin,
  type TestAdmin,
} from './harness.ts';
import { createGpgKeys, createKeyMaterial, type GpgKeys, type KeyMaterial } from './key-material.ts';

const TOKEN = 'test-token-key-directory-0123456789';
const MASTER_KEY = randomBytes(32);

describe('the key directory in the admin API', () => {
  let db: TestDatabase;
  let testAdmin: TestAdmin;
  let adminWithoutMasterKey: RunningAdmin;
  let crlServer: Server;
  let km: KeyMaterial;
  let gpgKeys: GpgKeys;
  /** The test's CRL server (loopback), as an operator lists theirs in SMGW_REVOCATION_ALLOW. */
  let crlAllow: ReturnType<typeof allowList>;
  let base: string;
  /** The CRL server answers 503 until this is set: revocation cannot be checked before. */
  let crlsServed = false;
  const crls = new Map<string, Buffer>();

  const api = (method: string, path: string, request: ApiRequest = {}, at = base): Promise<ApiAnswer> =>
    callAdminApi(at, TOKEN, method, path, request);
  const json = (value: unknown) => ({ body: JSON.stringify(value), type: 'application/json' });
  const pem = (text: string) => ({ body: text, type: 'application/x-pem-file' });

  before(async () => {
    crlServer = createServer((req, res) => {
      const der = crls.get(req.url ?? '');
      if (!crlsServed || !der) return res.writeHead(503).end();
      res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(der);
    });
    await new Promise<void>((resolve) => crlServer.listen(0, '127.0.0.1', resolve));
    const crlPort = (crlServer.address() as AddressInfo).port;
    crlAllow = allowList(`127.0.0.1:${crlPort}`);
    km = createKeyMaterial(`http://127.0.0.1:${crlPort}/`);
    crls.set('/root.crl', km.crl(km.root));
    crls.set('/intermediate.crl', km.crl(km.intermediate));
    gpgKeys = createGpgKeys();

    // The test's CRL server is on loopback: reachable only because it is listed, as an operator lists theirs.
    testAdmin = await startTestAdmin(TOKEN, {
      masterKey: MASTER_KEY,
      revocationMode: 'require',
      revocationAllow: crlAllow,
    });
    ({ db, base } = testAdmin);
    adminWithoutMasterKey = await testAdmin.startAnother({ masterKey: undefined });
  });

  after(async () => {
    await testAdmin?.stop();
    await new Promise((resolve) => crlServer?.close(resolve));
    km?.cleanup();
    gpgKeys?.cleanup();
  });

  it('answers 401 without a bearer token', async () => {
    for (const [method, path] of [
      ['GET', '/trust-anchors'],
      ['POST', '/certificates'],
      ['GET', '/pgp-keys'],
      ['POST', '/agencies'],
    ] as const) {
      const answer = await api(method, path, { token: null });
      assert.equal(answer.status, 401, `${method} ${path}`);
      assert.equal(answer.body.error.code, 'UNAUTHORIZED');
    }
  });

  it('adds a CA as trust anchor, lists it, and answers 200 with the same one when it is added again', async () => {
    const added = await api('POST', '/trust-anchors', {
      ...pem(km.root.certPem),
      headers: { 'x-smgw-operator': 'j.schmidt' },
    });
    assert.equal(added.status, 201);
    assert.equal(added.body.subject, 'CN=root');
    assert.equal(added.body.addedBy, 'j.schmidt');
    assert.match(added.body.fingerprint, /^[0-9a-f]{64}$/);

    const again = await api('POST', '/trust-anchors', { body: km.root.certPem, type: 'text/plain' });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, added.body);

    const list = await api('GET', '/trust-anchors');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.anchors, [added.body]);
  });

  it('refuses a certificate that is not a CA as trust anchor with 422 NOT_A_CA', async () => {
    const leaf = km.leaf(km.intermediate, { cn: 'Not A CA', email: 'nota@example.org' });
    const answer = await api('POST', '/trust-anchors', pem(leaf.certPem));
    assert.equal(answer.status, 422);
    assert.equal(answer.body.error.code, 'NOT_A_CA');
  });

  it('refuses a body that is not PEM with 400, and a JSON body with 415', async () => {
    assert.equal((await api('POST', '/trust-anchors', pem('hello'))).body.error.code, 'BAD_CERTIFICATE');
    const asJson = await api('POST', '/certificates', json({ pem: 'x' }));
    assert.equal(asJson.status, 415);
    assert.equal(asJson.body.error.code, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('refuses a certificate whose revocation status cannot be fetched with 422 REVOCATION_UNKNOWN', async () => {
    const leaf = km.leaf(km.intermediate, { cn: 'Early', email: 'early@example.org' });
    const answer = await api('POST', '/certificates', pem(leaf.certPem + km.intermediate.certPem));
    assert.equal(answer.status, 422);
    assert.equal(answer.body.error.code, 'REVOCATION_UNKNOWN');
    crlsServed = true;
  });

  let aliceFirst: string;

  it('accepts a certificate that validates to a trust anchor, with the addresses of its subjectAltName', async () => {
    const leaf = km.leaf(km.intermediate, {
      cn: 'Alice',
      email: 'Alice@Example.org',
      start: '20250101000000Z',
      end: '20991231000000Z',
    });
    const answer = await api('POST', '/certificates', pem(leaf.certPem + km.intermediate.certPem));
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.deepEqual(answer.body.addresses, ['alice@example.org']);
    assert.equal(answer.body.source, 'admin');
    assert.equal(answer.body.replacedBy, null);
    assert.deepEqual(answer.body.replaced, []);
    aliceFirst = answer.body.fingerprint;

    const row = await db.pool.query('select last_validation, intermediates from certificates where fingerprint = $1', [
      aliceFirst,
    ]);
    assert.deepEqual(row.rows[0].last_validation.revocation, ['good-crl', 'good-crl']);
    assert.equal(row.rows[0].intermediates.length, 1);
  });

  it('refuses an expired, a wrong-EKU and an untrusted certificate with 422 and the validation code', async () => {
    const cases = [
      {
        code: 'EXPIRED',
        pem:
          km.leaf(km.intermediate, {
            cn: 'Expired',
            email: 'expired@example.org',
            start: '20200101000000Z',
            end: '20210101000000Z',
          }).certPem + km.intermediate.certPem,
      },
      {
        code: 'EXTENDED_KEY_USAGE',
        pem:
          km.leaf(km.intermediate, { cn: 'Server', email: 'server@example.org', eku: 'serverAuth' }).certPem +
          km.intermediate.certPem,
      },
      { code: 'UNTRUSTED_ROOT', pem: km.leaf(km.stranger, { cn: 'Stranger', email: 'stranger@example.org' }).certPem },
    ];
    for (const c of cases) {
      const answer = await api('POST', '/certificates', pem(c.pem));
      assert.equal(answer.status, 422, c.code);
      assert.equal(answer.body.error.code, c.code, answer.body.error.message);
      assert.ok(answer.body.error.message.length > 0);
    }
    const stored = await db.pool.query('select count(*)::int as n from certificates');
    assert.equal(stored.rows[0].n, 1);
  });

  it('replaces the older certificate of an address with a renewed one', async () => {
    const renewed = km.leaf(km.intermediate, { cn: 'Alice', email: 'alice@example.org' });
    const answer = await api('POST', '/certificates', pem(renewed.certPem + km.intermediate.certPem));
    assert.equal(answer.status, 201);
    assert.deepEqual(answer.body.replaced, [aliceFirst]);

    const current = await api('GET', '/certificates?address=ALICE@example.org');
    assert.deepEqual(
      current.body.certificates.map((c: { fingerprint: string }) => c.fingerprint),
      [answer.body.fingerprint],
    );
    const all = await api('GET', '/certificates?address=alice@example.org&includeReplaced=true');
    assert.equal(all.body.certificates.length, 2);
    const old = all.body.certificates.find((c: { fingerprint: string }) => c.fingerprint === aliceFirst);
    assert.equal(old.replacedBy, answer.body.fingerprint);

    const sameAgain = await api('POST', '/certificates', pem(renewed.certPem + km.intermediate.certPem));
    assert.equal(sameAgain.status, 200);

    const older = km.leaf(km.intermediate, {
      cn: 'Alice',
      email: 'alice@example.org',
      start: '20240101000000Z',
      end: '20991231000000Z',
    });
    const late = await api('POST', '/certificates', pem(older.certPem + km.intermediate.certPem));
    assert.equal(late.status, 201);
    assert.equal(late.body.replacedBy, answer.body.fingerprint, 'an older certificate arriving late is not current');
    assert.deepEqual(late.body.replaced, []);
    const stillCurrent = await api('GET', '/certificates?address=alice@example.org');
    assert.deepEqual(
      stillCurrent.body.certificates.map((c: { fingerprint: string }) => c.fingerprint),
      [answer.body.fingerprint],
    );
  });

  it("refuses a signing-only certificate with 422 KEY_USAGE: it would replace the holder's encryption certificate", async () => {
    const signing = km.leaf(km.intermediate, {
      cn: 'Alice',
      email: 'alice@example.org',
      keyUsage: 'digitalSignature,nonRepudiation',
    });
    const answer = await api('POST', '/certificates', pem(signing.certPem + km.intermediate.certPem));
    assert.equal(answer.status, 422, JSON.stringify(answer.body));
    assert.equal(answer.body.error.code, 'KEY_USAGE');
    const current = await api('GET', '/certificates?address=alice@example.org');
    assert.equal(current.body.certificates.length, 1, 'the current certificate stays current');
    assert.equal(current.body.certificates[0].replacedBy, null);
  });

  it('imports an OpenPGP key as pending, and approving it records who and when', async () => {
    const imported = await api('POST', '/pgp-keys', { body: gpgKeys.usable, type: 'application/pgp-keys' });
    assert.equal(imported.status, 201, JSON.stringify(imported.body));
    assert.equal(imported.body.fingerprint, gpgKeys.usableFingerprint);
    assert.equal(imported.body.state, 'pending');
    assert.equal(imported.body.source, 'imported');
    assert.deepEqual(imported.body.addresses, ['bob@example.org']);
    assert.equal(imported.body.stateChangedBy, null);

    const pending = await api('GET', '/pgp-keys?state=pending');
    assert.deepEqual(
      pending.body.keys.map((k: { fingerprint: string }) => k.fingerprint),
      [gpgKeys.usableFingerprint],
    );

    const before = Date.now();
    const approved = await api('POST', `/pgp-keys/${gpgKeys.usableFingerprint.toLowerCase()}/approve`, {
      headers: { 'x-smgw-operator': 'k.weber@behoerde.example' },
    });
    assert.equal(approved.status, 200);
    assert.equal(approved.body.state, 'approved');
    assert.equal(approved.body.stateChangedBy, 'k.weber@behoerde.example');
    assert.ok(Date.parse(approved.body.stateChangedAt) >= before - 1000);

    const listed = await api('GET', '/pgp-keys?state=approved');
    assert.equal(listed.body.keys[0].stateChangedBy, 'k.weber@behoerde.example');
    assert.equal((await api('GET', '/pgp-keys?state=pending')).body.keys.length, 0);

    const reimported = await api('POST', '/pgp-keys', { body: gpgKeys.usable, type: 'text/plain' });
    assert.equal(reimported.status, 200);
    assert.equal(reimported.body.state, 'approved');
  });

  it('approves a second key for an address only when the approval names it, and shows what it replaced', async () => {
    const imported = await api('POST', '/pgp-keys', { body: gpgKeys.second, type: 'application/pgp-keys' });
    assert.equal(imported.status, 201, JSON.stringify(imported.body));
    assert.deepEqual([...imported.body.addresses].sort(), ['bob@example.org', 'dora@example.org']);
    assert.deepEqual(imported.body.approvedAddresses, []);
    const approve = (request: ApiRequest = {}) =>
      api('POST', `/pgp-keys/${gpgKeys.secondFingerprint}/approve`, {
        ...request,
        headers: { 'x-smgw-operator': 'k.weber@behoerde.example' },
      });

    // bob@example.org has its approved key: approving every address of the new one would silently displace it.
    const all = await approve();
    assert.equal(all.status, 409, JSON.stringify(all.body));
    assert.equal(all.body.error.code, 'PGP_KEY_ADDRESS_HAS_APPROVED_KEY');
    assert.match(
      all.body.error.message,
      new RegExp(`bob@example.org has the approved key ${gpgKeys.usableFingerprint}`),
    );
    assert.equal((await api('GET', '/pgp-keys?address=dora@example.org')).body.keys[0].state, 'pending');

    const foreign = await approve(json({ addresses: ['eve@example.org'] }));
    assert.equal(foreign.status, 422);
    assert.equal(foreign.body.error.code, 'PGP_KEY_ADDRESS_NOT_IN_KEY');

    const dora = await approve(json({ addresses: ['dora@example.org'] }));
    assert.equal(dora.status, 200, JSON.stringify(dora.body));
    assert.equal(dora.body.state, 'approved');
    assert.deepEqual(dora.body.approvedAddresses, ['dora@example.org']);
    assert.deepEqual(dora.body.replaced, []);
    const bobs = (await api('GET', '/pgp-keys?address=bob@example.org&state=approved')).body.keys;
    const first = bobs.find((k: { fingerprint: string }) => k.fingerprint === gpgKeys.usableFingerprint);
    assert.deepEqual(first.approvedAddresses, ['bob@example.org'], 'the first key stays approved for bob');

    const bob = await approve(json({ addresses: ['Bob@example.org'] }));
    assert.equal(bob.status, 200, JSON.stringify(bob.body));
    assert.deepEqual([...bob.body.approvedAddresses].sort(), ['bob@example.org', 'dora@example.org']);
    assert.deepEqual(bob.body.replaced, [{ address: 'bob@example.org', fingerprint: gpgKeys.usableFingerprint }]);
    const replaced = (await api('GET', '/pgp-keys?state=approved')).body.keys.find(
      (k: { fingerprint: string }) => k.fingerprint === gpgKeys.usableFingerprint,
    );
    assert.deepEqual(replaced.approvedAddresses, []);

    const badBody = await approve(json({ addresses: [] }));
    assert.equal(badBody.status, 400);
  });

  it('refuses an expired and a sign-only OpenPGP key with 422 and the problem code', async () => {
    const expired = await api('POST', '/pgp-keys', { body: gpgKeys.expired, type: 'application/pgp-keys' });
    assert.equal(expired.status, 422);
    assert.equal(expired.body.error.code, 'PGP_KEY_EXPIRED');
    const signOnly = await api('POST', '/pgp-keys', { body: gpgKeys.signOnly, type: 'application/pgp-keys' });
    assert.equal(signOnly.status, 422);
    assert.equal(signOnly.body.error.code, 'PGP_NO_ENCRYPTION_KEY');
    const garbage = await api('POST', '/pgp-keys', { body: 'not a key', type: 'application/pgp-keys' });
    assert.equal(garbage.body.error.code, 'PGP_KEY_MALFORMED');
  });

  it("makes a key and certificate a portal user uploaded the operator's when imported: they stay when the mailbox goes", async () => {
    const address = 'carla@example.org';
    const mailboxKeys = createFolderMailboxKeyStore({ keyStoreDir: db.keys.keyStoreDir, masterKey: MASTER_KEY });
    await ensureMailbox(db.pool, address, mailboxKeys);
    // What the portal's /schluessel stores (services/mailbox keys.ts): her key pending and her certificate, source portal.
    await addPgpKey(db.pool, {
      fingerprint: gpgKeys.carlaFingerprint,
      armored: gpgKeys.carla,
      addresses: [address],
      algorithm: 'eddsaLegacy',
      expiresAt: null,
      source: 'portal',
    });
    const leaf = km.leaf(km.intermediate, { cn: 'Carla', email: address });
    const uploaded = await acceptRecipientCertificate(db.pool, {
      chain: readPemCertificates(leaf.certPem + km.intermediate.certPem),
      address,
      source: 'portal',
      by: 'portal:test',
      now: new Date(),
      revocationMode: 'require',
      revocationFetcher: createRevocationFetcher({ now: () => new Date(), allow: crlAllow }),
    });
    assert.ok(uploaded.ok, JSON.stringify(uploaded));
    assert.equal(uploaded.certificate.source, 'portal');

    const operator = { 'x-smgw-operator': 'k.weber@behoerde.example' };
    const key = await api('POST', '/pgp-keys', {
      body: gpgKeys.carla,
      type: 'application/pgp-keys',
      headers: operator,
    });
    assert.equal(key.status, 200, JSON.stringify(key.body));
    assert.equal(key.body.source, 'imported');
    assert.equal(key.body.state, 'pending');
    const certificate = await api('POST', '/certificates', {
      ...pem(leaf.certPem + km.intermediate.certPem),
      headers: operator,
    });
    assert.equal(certificate.status, 200, JSON.stringify(certificate.body));
    assert.equal(certificate.body.fingerprint, uploaded.certificate.fingerprint);
    assert.equal(certificate.body.source, 'admin');

    const deleted = await api('DELETE', `/mailboxes/${address}?confirm=${address}`, { headers: operator });
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    assert.deepEqual(
      (await api('GET', `/pgp-keys?address=${address}`)).body.keys.map((k: { fingerprint: string }) => k.fingerprint),
      [gpgKeys.carlaFingerprint],
    );
    assert.deepEqual(
      (await api('GET', `/certificates?address=${address}`)).body.certificates.map(
        (c: { fingerprint: string; source: string }) => [c.fingerprint, c.source],
      ),
      [[uploaded.certificate.fingerprint, 'admin']],
    );
  });

  it('answers 404 when rejecting a key it does not have', async () => {
    const answer = await api('POST', `/pgp-keys/${'A'.repeat(40)}/reject`);
    assert.equal(answer.status, 404);
    assert.equal(answer.body.error.code, 'PGP_KEY_NOT_FOUND');
  });

  let agencyId: string;

  it('onboards an agency with its domains and refuses an address outside them with 400', async () => {
    const created = await api('POST', '/agencies', json({ name: 'Finanzamt Nord', domains: ['fa-nord.example'] }));
    assert.equal(created.status, 201);
    agencyId = created.body.id;
    assert.ok(isMessageId(agencyId), agencyId);

    const inside = await api(
      'POST',
      `/agencies/${agencyId}/addresses`,
      json({ address: 'Poststelle@FA-Nord.example', verifySignatures: true }),
    );
    assert.equal(inside.status, 201);
    assert.deepEqual(inside.body, { address: 'poststelle@fa-nord.example', verifySignatures: true });

    const outside = await api('POST', `/agencies/${agencyId}/addresses`, json({ address: 'x@elsewhere.example' }));
    assert.equal(outside.status, 400);
    assert.equal(outside.body.error.code, 'ADDRESS_NOT_IN_AGENCY_DOMAINS');

    const sameName = await api('POST', '/agencies', json({ name: 'Finanzamt Nord', domains: ['other.example'] }));
    assert.equal(sameName.body.error.code, 'AGENCY_EXISTS');
    const sameDomain = await api('POST', '/agencies', json({ name: 'Finanzamt Süd', domains: ['fa-nord.example'] }));
    assert.equal(sameDomain.body.error.code, 'DOMAIN_TAKEN');
    assert.equal((await api('GET', `/agencies/${agencyId}`)).body.addresses.length, 1);

    const switchedOff = await api(
      'POST',
      `/agencies/${agencyId}/addresses`,
      json({ address: 'poststelle@fa-nord.example', verifySignatures: false }),
    );
    assert.equal(switchedOff.status, 200);
    assert.equal(switchedOff.body.verifySignatures, false);
    const notBoolean = await api(
      'POST',
      `/agencies/${agencyId}/addresses`,
      json({ address: 'poststelle@fa-nord.example', verifySignatures: 'yes' }),
    );
    assert.equal(notBoolean.status, 400);

    const other = await api('POST', '/agencies', json({ name: 'Zoll', domains: ['zoll.example'] }));
    const taken = await api(
      'POST',
      `/agencies/${other.body.id}/addresses`,
      json({ address: 'poststelle@fa-nord.example' }),
    );
    assert.equal(taken.status, 400, "not in the other agency's domains either");
    const unknownAgency = await api('POST', `/agencies/${'0'.repeat(26)}/addresses`, json({ address: 'a@b.example' }));
    assert.equal(unknownAgency.body.error.code, 'AGENCY_NOT_FOUND');
  });

  it('stores an uploaded PKCS#12 key sealed and returns only the public part', async () => {
    const leaf = km.leaf(km.intermediate, { cn: 'Poststelle', email: 'poststelle@fa-nord.example' });
    const p12 = km.pkcs12(leaf, 'geheim-123', [km.intermediate]);
    const answer = await api('POST', `/agencies/${agencyId}/addresses/poststelle@fa-nord.example/keys`, {
      body: p12,
      type: 'application/x-pkcs12',
      headers: { 'x-smgw-key-password': 'geheim-123' },
    });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal(answer.body.keys.length, 1);
    const [key] = answer.body.keys;
    assert.equal(key.kind, 'smime');
    assert.equal(key.certificate.replace(/\s+/g, ''), leaf.certPem.replace(/\s+/g, ''));
    assert.doesNotMatch(JSON.stringify(answer.body), /PRIVATE KEY/);

    const pkcs8 = createPrivateKey(readFileSync(leaf.keyFile)).export({ format: 'der', type: 'pkcs8' });
    const row = await db.pool.query('select private_key_sealed, certificate from agency_keys where id = $1', [key.id]);
    const sealed: Buffer = row.rows[0].private_key_sealed;
    assert.equal(sealed.includes(pkcs8), false, 'the key DER is not in the row');
    assert.equal(sealed.includes(pkcs8.subarray(-64)), false, 'no part of the key DER is in the row');
    assert.equal(sealed.includes(Buffer.from('PRIVATE KEY')), false);
    const opened = openSecret(MASTER_KEY, sealed, { aad: agencyKeyAad('poststelle@fa-nord.example', key.fingerprint) });
    assert.deepEqual(opened, pkcs8);
  });

  it('stores an uploaded OpenPGP private key sealed and returns only the public key', async () => {
    const answer = await api('POST', `/agencies/${agencyId}/addresses/poststelle@fa-nord.example/keys`, {
      body: gpgKeys.usableSecret,
      type: 'application/pgp-keys',
    });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const [key] = answer.body.keys;
    assert.equal(key.kind, 'pgp');
    assert.equal(key.fingerprint, gpgKeys.usableFingerprint);
    assert.match(key.publicKey, /BEGIN PGP PUBLIC KEY BLOCK/);
    assert.doesNotMatch(JSON.stringify(answer.body), /PRIVATE KEY/);
    const row = await db.pool.query('select private_key_sealed from agency_keys where id = $1', [key.id]);
    const sealed: Buffer = row.rows[0].private_key_sealed;
    assert.equal(sealed.includes(Buffer.from('PRIVATE KEY')), false);
    const opened = openSecret(MASTER_KEY, sealed, { aad: agencyKeyAad('poststelle@fa-nord.example', key.fingerprint) });
    assert.match(opened.toString(), /BEGIN PGP PRIVATE KEY BLOCK/);

    const publicOnly = await api('POST', `/agencies/${agencyId}/addresses/poststelle@fa-nord.example/keys`, {
      body: gpgKeys.usable,
      type: 'application/pgp-keys',
    });
    assert.equal(publicOnly.status, 400);
    assert.equal(publicOnly.body.error.code, 'KEY_FILE_UNREADABLE');
  });

  it('answers 400 to a PKCS#12 upload with the wrong password', async () => {
    const leaf = km.leaf(km.intermediate, { cn: 'Poststelle 2', email: 'poststelle@fa-nord.example' });
    const answer = await api('POST', `/agencies/${agencyId}/addresses/poststelle@fa-nord.example/keys`, {
      body: km.pkcs12(leaf, 'richtig'),
      type: 'application/x-pkcs12',
      headers: { 'x-smgw-key-password': 'falsch' },
    });
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.code, 'KEY_FILE_UNREADABLE');
    assert.doesNotMatch(answer.body.error.message, /falsch|richtig/);
  });

  it('answers 400 at once to a PKCS#12 upload asking for more password iterations than any exporter uses', async () => {
    const leaf = km.leaf(km.intermediate, { cn: 'Poststelle 3', email: 'poststelle@fa-nord.example' });
    const file = km.pkcs12(leaf, 'richtig', [], ['-iter', '1200000']);
    const answer = await api('POST', `/agencies/${agencyId}/addresses/poststelle@fa-nord.example/keys`, {
      body: file,
      type: 'application/x-pkcs12',
      headers: { 'x-smgw-key-password': 'richtig' },
    });
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.code, 'KEY_FILE_UNREADABLE');
    assert.match(answer.body.error.message, /asks for 1200000 password iterations \(at most 1000000\)/);
  });

  it('creates an agency that signs outbound mail and switches signing off and on with the operator recorded', async () => {
    const created = await api(
      'POST',
      '/agencies',
      json({ name: 'Zollamt Ost', domains: ['zoll-ost.example'], signOutbound: true }),
    );
    assert.equal(created.status, 201);
    const id = created.body.id;
    const shown = await api('GET', `/agencies/${id}`);
    assert.equal(shown.body.signOutbound, true);
    assert.equal(shown.body.signOutboundChangedBy, 'admin-token');

    const off = await api('POST', `/agencies/${id}/signing`, {
      ...json({ signOutbound: false }),
      headers: { 'x-smgw-operator': 'erika' },
    });
    assert.equal(off.status, 200);
    assert.equal(off.body.signOutbound, false);
    assert.equal(off.body.signOutboundChangedBy, 'erika');
    assert.equal(typeof off.body.signOutboundChangedAt, 'string');
    const listed = await api('GET', '/agencies');
    const row = listed.body.agencies.find((a: { id: string }) => a.id === id);
    assert.equal(row.signOutbound, false);

    const notBoolean = await api('POST', `/agencies/${id}/signing`, json({ signOutbound: 'yes' }));
    assert.equal(notBoolean.status, 400);
    const missing = await api('POST', `/agencies/${id}/signing`, json({}));
    assert.equal(missing.status, 400);
    const unknown = await api('POST', `/agencies/${'0'.repeat(26)}/signing`, json({ signOutbound: true }));
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'AGENCY_NOT_FOUND');
    assert.equal((await api('GET', `/agencies/${agencyId}`)).body.signOutbound, false, 'off unless asked for');
  });

  it('answers 404 for a key upload to an address the agency does not have', async () => {
    const answer = await api('POST', `/agencies/${agencyId}/addresses/nobody@fa-nord.example/keys`, {
      body: Buffer.from('x'),
      type: 'application/x-pkcs12',
    });
    assert.equal(answer.status, 404);
    assert.equal(answer.body.error.code, 'AGENCY_ADDRESS_NOT_FOUND');
  });

  it('answers 503 MASTER_KEY_MISSING to a key upload when SMGW_MASTER_KEY is not set', async () => {
    const answer = await api(
      'POST',
      `/agencies/${agencyId}/addresses/poststelle@fa-nord.example/keys`,
      { body: Buffer.from('x'), type: 'application/x-pkcs12' },
      `http://127.0.0.1:${adminWithoutMasterKey.port}/api/v1`,
    );
    assert.equal(answer.status, 503);
    assert.equal(answer.body.error.code, 'MASTER_KEY_MISSING');
  });

  it('lets an operator do the same through the CLI', async () => {
    const env = { SMGW_ADMIN_URL: base, SMGW_ADMIN_TOKEN: TOKEN, SMGW_OPERATOR: 'cli-user' };
    const file = (name: string, content: string | Buffer) => {
      const path = join(km.dir, name);
      writeFileSync(path, content);
      return path;
    };

    const trusted = await captureStdout(() => runCli(['trust', 'add', file('stranger.pem', km.stranger.certPem)], env));
    assert.equal(trusted.code, 0);
    assert.match(trusted.out, /^trusted: [0-9a-f]{64} {2}CN=stranger .* by cli-user$/m);
    assert.match((await captureStdout(() => runCli(['trust', 'list'], env))).out, /CN=root[\s\S]*CN=stranger/);

    const carol = km.leaf(km.intermediate, { cn: 'Carol', email: 'carol@example.org' });
    const added = await captureStdout(() =>
      runCli(['cert', 'add', file('carol.pem', carol.certPem + km.intermediate.certPem)], env),
    );
    assert.equal(added.code, 0);
    assert.match(added.out, /^added: [0-9a-f]{64} {2}carol@example.org {2}CN=Carol/);
    const certs = await captureStdout(() => runCli(['cert', 'list', '--address', 'carol@example.org', '--json'], env));
    assert.equal(JSON.parse(certs.out).certificates.length, 1);

    const approved = await captureStdout(() => runCli(['pgp', 'list', '--state', 'approved'], env));
    assert.match(approved.out, new RegExp(`^${gpgKeys.usableFingerprint} {2}approved`, 'm'));
    const back = await captureStdout(() =>
      runCli(['pgp', 'approve', gpgKeys.usableFingerprint, '--address', 'bob@example.org'], env),
    );
    assert.equal(back.code, 0);
    assert.match(back.out, /approved {2}bob@example.org {2}\(approved for bob@example.org\)/);
    assert.match(back.out, new RegExp(`^bob@example.org: replaces ${gpgKeys.secondFingerprint}$`, 'm'));
    const rejected = await captureStdout(() => runCli(['pgp', 'reject', gpgKeys.usableFingerprint], env));
    assert.equal(rejected.code, 0);
    assert.match(rejected.out, /rejected by cli-user/);

    const agency = await captureStdout(() =>
      runCli(['agency', 'add', 'Stadt West', '--domain', 'stadt-west.example', '--domain', 'west.example'], env),
    );
    assert.equal(agency.code, 0);
    const id = agency.out.trim();
    assert.ok(isMessageId(id), id);
    const address = await captureStdout(() =>
      runCli(['agency', 'address', id, 'buero@west.example', '--verify-signatures'], env),
    );
    assert.equal(address.out, 'buero@west.example: signature verification on\n');
    // The same command without the flag switches it off again (the CLI's toggle), and on once more.
    const off = await captureStdout(() => runCli(['agency', 'address', id, 'buero@west.example'], env));
    assert.equal(off.out, 'buero@west.example: signature verification off\n');
    const asJson = await captureStdout(() => runCli(['agency', 'list', '--json'], env));
    const west = (JSON.parse(asJson.out).agencies as Array<{ id: string; addresses: unknown[] }>).find(
      (a) => a.id === id,
    );
    assert.deepEqual(west?.addresses, [{ address: 'buero@west.example', verifySignatures: false }]);
    const on = await captureStdout(() =>
      runCli(['agency', 'address', id, 'buero@west.example', '--verify-signatures'], env),
    );
    assert.equal(on.out, 'buero@west.example: signature verification on\n');
    const outside = await captureStderr(() => runCli(['agency', 'address', id, 'x@elsewhere.example'], env));
    assert.equal(outside.code, 1);
    assert.match(outside.out, /ADDRESS_NOT_IN_AGENCY_DOMAINS: .* \(HTTP 400\)/);

    const buero = km.leaf(km.intermediate, { cn: 'Buero', email: 'buero@west.example' });
    const p12 = file('buero.p12', km.pkcs12(buero, 'pw-123'));
    const key = await captureStdout(() =>
      runCli(['agency', 'key', id, 'buero@west.example', p12, '--password', 'pw-123'], env),
    );
    assert.equal(key.code, 0, key.out);
    assert.match(key.out, /^stored \(sealed\): smime [0-9a-f]{64} {2}buero@west.example/);
    const signing = await captureStdout(() => runCli(['agency', 'signing', id, 'on'], env));
    assert.equal(signing.code, 0, signing.out);
    assert.equal(signing.out, `${id}  Stadt West: outbound signing on\n`);
    const badSetting = await captureStderr(() => runCli(['agency', 'signing', id, 'maybe'], env));
    assert.equal(badSetting.code, 1);
    assert.match(badSetting.out, /usage: agency signing <agency-id> on\|off/);
    const listed = await captureStdout(() => runCli(['agency', 'list'], env));
    assert.match(
      listed.out,
      /Stadt West {2}domains: stadt-west.example, west.example {2}addresses: buero@west.example \(verify\) {2}signing: on/,
    );
  });
});
