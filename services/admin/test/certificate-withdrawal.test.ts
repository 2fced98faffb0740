// An operator takes a recipient certificate out of use and brings one back through the admin API and the CLI: the
// case of a signing-only certificate that replaced the holder's encryption certificate (stored before 9477d1e), a
// certificate withdrawn and added again, and a reinstatement that must still validate now. Certificates are made with
// `openssl ca` (test/key-material.ts); revocation is off here (test/key-directory.test.ts exercises it).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type CertificateFacts, readPemCertificates } from '@smgw/crypto';
import { addCertificate, currentCertificates } from '@smgw/key-directory';
import type { TestDatabase } from '@smgw/testing';
import { runCli } from '../src/cli.ts';
import {
  type ApiAnswer,
  type ApiRequest,
  callAdminApi,
  captureStderr,
  captureStdout,
  startTestAdmin,
  type TestAdmin,
} from './harness.ts';
import { createKeyMaterial, type KeyMaterial } from './key-material.ts';

const TOKEN = 'test-token-certificate-withdrawal-0123';

describe('withdrawing and reinstating recipient certificates in the admin API', () => {
  let db: TestDatabase;
  let testAdmin: TestAdmin;
  let km: KeyMaterial;
  let base: string;

  const api = (method: string, path: string, request: ApiRequest = {}): Promise<ApiAnswer> =>
    callAdminApi(base, TOKEN, method, path, request);
  const pem = (text: string) => ({ body: text, type: 'application/x-pem-file' });
  /** A withdraw or reinstate call with a reason, by `operator`. */
  const decide = (fingerprint: string, action: 'withdraw' | 'reinstate', reason: unknown, operator = 'k.weber') =>
    api('POST', `/certificates/${fingerprint}/${action}`, {
      body: JSON.stringify({ reason }),
      type: 'application/json',
      headers: { 'x-smgw-operator': operator },
    });
  const currentFor = async (address: string) =>
    (await api('GET', `/certificates?address=${address}`)).body.certificates.map(
      (c: { fingerprint: string }) => c.fingerprint,
    );
  /** A leaf of the intermediate, added through POST /certificates. */
  async function added(options: Parameters<KeyMaterial['leaf']>[1]): Promise<string> {
    const leaf = km.leaf(km.intermediate, options);
    const answer = await api('POST', '/certificates', pem(leaf.certPem + km.intermediate.certPem));
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    return answer.body.fingerprint;
  }

  before(async () => {
    km = createKeyMaterial(undefined);
    testAdmin = await startTestAdmin(TOKEN, { revocationMode: 'off' });
    ({ db, base } = testAdmin);
    assert.equal((await api('POST', '/trust-anchors', pem(km.root.certPem))).status, 201);
  });

  after(async () => {
    await testAdmin?.stop();
    km?.cleanup();
  });

  let encryption: string;
  let signingOnly: string;

  it('withdraws a certificate: no longer current for any address, recorded with who, when and why', async () => {
    const address = 'anwalt@kanzlei.example';
    encryption = await added({ cn: 'Anwalt', email: address, start: '20250101000000Z', end: '20991231000000Z' });
    // What a harvest did before 9477d1e: the holder's signing-only certificate, newer, replaced the encryption one.
    const [leaf] = readPemCertificates(
      km.leaf(km.intermediate, { cn: 'Anwalt', email: address, keyUsage: 'digitalSignature,nonRepudiation' }).certPem,
    ) as [CertificateFacts];
    signingOnly = leaf.fingerprint;
    const stored = await addCertificate(db.pool, {
      ...leaf,
      addresses: [address],
      intermediates: readPemCertificates(km.intermediate.certPem).map((c) => c.der),
      smimeCapabilities: null,
      source: 'harvested',
      lastValidation: { ok: true, by: 'harvest' },
    });
    assert.deepEqual(stored.replaced, [encryption]);
    assert.deepEqual(await currentFor(address), [signingOnly]);

    const before = Date.now();
    const withdrawn = await decide(signingOnly.toUpperCase(), 'withdraw', 'signing-only, replaced the encryption one');
    assert.equal(withdrawn.status, 200, JSON.stringify(withdrawn.body));
    assert.equal(withdrawn.body.fingerprint, signingOnly);
    assert.equal(withdrawn.body.withdrawnBy, 'k.weber');
    assert.equal(withdrawn.body.withdrawalReason, 'signing-only, replaced the encryption one');
    assert.ok(Date.parse(withdrawn.body.withdrawnAt) >= before - 1000);
    assert.deepEqual(withdrawn.body.hadReplaced, [encryption], 'names what stays replaced');

    assert.deepEqual(await currentFor(address), []);
    assert.deepEqual(await currentCertificates(db.pool, address), [], "the encrypt stage's lookup finds none");
    const all = (await api('GET', `/certificates?address=${address}&includeReplaced=true`)).body.certificates;
    assert.equal(all.length, 2);
    const stillReplaced = all.find((c: { fingerprint: string }) => c.fingerprint === encryption);
    assert.equal(stillReplaced.replacedBy, signingOnly, 'the replaced one does not come back by itself');

    const shown = await api('GET', `/certificates/${signingOnly}`);
    assert.equal(shown.status, 200);
    assert.equal(shown.body.withdrawnBy, 'k.weber');
    assert.deepEqual(
      shown.body.audit.map((e: { event: string; actor: string; reason: string }) => [e.event, e.actor, e.reason]),
      [['certificate.withdrawn', 'k.weber', 'signing-only, replaced the encryption one']],
    );
    assert.deepEqual(shown.body.audit[0].detail, { wasCurrent: true, replacedBy: null, hadReplaced: [encryption] });
  });

  it('answers 409 to a second withdrawal, 404 to an unknown certificate and 400 without a reason', async () => {
    const again = await decide(signingOnly, 'withdraw', 'again', 'erika');
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'CERTIFICATE_ALREADY_WITHDRAWN');
    assert.match(again.body.error.message, /withdrawn by k\.weber at /);

    const unknown = await decide('a'.repeat(64), 'withdraw', 'lost');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'CERTIFICATE_NOT_FOUND');
    assert.equal((await api('GET', `/certificates/${'a'.repeat(64)}`)).body.error.code, 'CERTIFICATE_NOT_FOUND');
    assert.equal((await decide('a'.repeat(64), 'reinstate', 'back')).body.error.code, 'CERTIFICATE_NOT_FOUND');

    const other = await added({ cn: 'Ohne Grund', email: 'grund@example.org' });
    for (const reason of [undefined, '', '   ', 42, 'line\nbreak']) {
      const answer = await decide(other, 'withdraw', reason);
      assert.equal(answer.status, 400, `reason ${JSON.stringify(reason)}`);
      assert.equal(answer.body.error.code, 'BAD_REQUEST');
    }
    const noBody = await api('POST', `/certificates/${other}/withdraw`);
    assert.equal(noBody.status, 400);
    const badFingerprint = await decide('not-a-fingerprint', 'withdraw', 'x');
    assert.equal(badFingerprint.status, 400);
    const badOperator = await decide(other, 'withdraw', 'x', 'bad operator');
    assert.equal(badOperator.status, 400);
    assert.deepEqual(await currentFor('grund@example.org'), [other], 'nothing was withdrawn');
  });

  it('reinstates the encryption certificate, and refuses to reinstate a current or a signing-only one', async () => {
    const address = 'anwalt@kanzlei.example';
    const reinstated = await decide(encryption, 'reinstate', 'the holder encrypts with this one');
    assert.equal(reinstated.status, 200, JSON.stringify(reinstated.body));
    assert.equal(reinstated.body.replacedBy, null);
    assert.equal(reinstated.body.withdrawnAt, null);
    assert.deepEqual(reinstated.body.replaced, []);
    assert.deepEqual(await currentFor(address), [encryption]);
    assert.deepEqual(
      (await currentCertificates(db.pool, address)).map((c) => c.fingerprint),
      [encryption],
    );

    const current = await decide(encryption, 'reinstate', 'again');
    assert.equal(current.status, 409);
    assert.equal(current.body.error.code, 'CERTIFICATE_CURRENT');

    // Reinstated only if it validates now: we cannot encrypt to a signing-only certificate.
    const signing = await decide(signingOnly, 'reinstate', 'by mistake');
    assert.equal(signing.status, 422);
    assert.equal(signing.body.error.code, 'KEY_USAGE');
    assert.deepEqual(await currentFor(address), [encryption]);

    const audit = (await api('GET', `/certificates/${encryption}`)).body.audit;
    assert.deepEqual(
      audit.map((e: { event: string; reason: string }) => [e.event, e.reason]),
      [['certificate.reinstated', 'the holder encrypts with this one']],
    );
    assert.deepEqual(audit[0].detail, { wasWithdrawn: false, wasReplacedBy: signingOnly, replaced: [] });
  });

  it('keeps a withdrawn certificate withdrawn when it is added again, and a new one for the address current', async () => {
    const address = 'carol@example.org';
    const lost = km.leaf(km.intermediate, { cn: 'Carol', email: address, start: '20250101000000Z' });
    const first = await api('POST', '/certificates', pem(lost.certPem + km.intermediate.certPem));
    assert.equal(first.status, 201);
    const fingerprint = first.body.fingerprint;
    assert.equal((await decide(fingerprint, 'withdraw', 'private key lost')).status, 200);

    const again = await api('POST', '/certificates', pem(lost.certPem + km.intermediate.certPem));
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'CERTIFICATE_ALREADY_WITHDRAWN');
    assert.match(again.body.error.message, new RegExp(`POST /certificates/${fingerprint}/reinstate`));
    assert.deepEqual(await currentFor(address), []);

    const renewed = await added({ cn: 'Carol', email: address });
    assert.deepEqual(await currentFor(address), [renewed]);
    const old = await api('GET', `/certificates/${fingerprint}`);
    assert.equal(old.body.replacedBy, null, 'a withdrawn certificate is not replaced');
    assert.ok(old.body.withdrawnAt);

    const superseded = await decide(fingerprint, 'reinstate', 'found the key again');
    assert.equal(superseded.status, 409);
    assert.equal(superseded.body.error.code, 'CERTIFICATE_SUPERSEDED');
    assert.match(superseded.body.error.message, new RegExp(`${renewed} is current for carol@example.org`));
    assert.deepEqual(await currentFor(address), [renewed]);
  });

  it('refuses to reinstate a certificate whose CA is no longer trusted with 422', async () => {
    assert.equal((await api('POST', '/trust-anchors', pem(km.stranger.certPem))).status, 201);
    const leaf = km.leaf(km.stranger, { cn: 'Dora', email: 'dora@example.org' });
    const stored = await api('POST', '/certificates', pem(leaf.certPem));
    assert.equal(stored.status, 201, JSON.stringify(stored.body));
    assert.equal((await decide(stored.body.fingerprint, 'withdraw', 'checking')).status, 200);
    await db.pool.query("delete from trust_anchors where subject = 'CN=stranger'");

    const answer = await decide(stored.body.fingerprint, 'reinstate', 'done checking');
    assert.equal(answer.status, 422, JSON.stringify(answer.body));
    assert.equal(answer.body.error.code, 'NO_PATH', 'no path to a trusted anchor');
    assert.equal((await api('GET', `/certificates/${stored.body.fingerprint}`)).body.audit.length, 1);
    assert.deepEqual(await currentFor('dora@example.org'), []);
  });

  it('lets an operator withdraw, show and reinstate a certificate through the CLI', async () => {
    const env = { SMGW_ADMIN_URL: base, SMGW_ADMIN_TOKEN: TOKEN, SMGW_OPERATOR: 'cli-user' };
    const address = 'erik@example.org';
    const older = await added({ cn: 'Erik', email: address, start: '20250101000000Z' });
    const newer = await added({ cn: 'Erik', email: address });

    const withdrawn = await captureStdout(() =>
      runCli(['cert', 'withdraw', newer, '--reason', 'Schlüssel verloren'], env),
    );
    assert.equal(withdrawn.code, 0, withdrawn.out);
    assert.match(withdrawn.out, new RegExp(`^withdrawn: ${newer} {2}${address} .* withdrawn by cli-user at `, 'm'));
    assert.match(withdrawn.out, new RegExp(`^it had replaced \\(still replaced; .*\\): ${older}$`, 'm'));

    const noReason = await captureStderr(() => runCli(['cert', 'withdraw', older], env));
    assert.equal(noReason.code, 1);
    assert.match(noReason.out, /usage: cert withdraw <fingerprint> --reason/);
    const twice = await captureStderr(() => runCli(['cert', 'withdraw', newer, '--reason', 'again'], env));
    assert.equal(twice.code, 1);
    assert.match(twice.out, /CERTIFICATE_ALREADY_WITHDRAWN: .* \(HTTP 409\)/);

    const listed = await captureStdout(() => runCli(['cert', 'list', '--address', address, '--all'], env));
    assert.match(listed.out, new RegExp(`^${newer} .* withdrawn by cli-user`, 'm'));

    const reinstated = await captureStdout(() =>
      runCli(['cert', 'reinstate', older, '--reason', 'the holder still has this key', '--operator', 'erika'], env),
    );
    assert.equal(reinstated.code, 0, reinstated.out);
    assert.match(reinstated.out, new RegExp(`^reinstated: ${older} {2}${address}`, 'm'));
    assert.deepEqual(await currentFor(address), [older]);

    const shown = await captureStdout(() => runCli(['cert', 'show', newer], env));
    assert.equal(shown.code, 0);
    assert.match(shown.out, /^\S+ {2}withdrawn by cli-user: Schlüssel verloren$/m);
    const olderShown = await captureStdout(() => runCli(['cert', 'show', older, '--json'], env));
    assert.equal(JSON.parse(olderShown.out).audit[0].actor, 'erika');
  });
});
