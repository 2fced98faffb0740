// inspectPublicKey on keys the real gpg made: what the key directory stores and the problem codes at an injected
// time (expired, revoked, sign-only, weak RSA, malformed).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { inspectPublicKey, type PgpKeyInfo, recipientKeyProblems } from '../src/openpgp/index.ts';
import { createGpgHome, type GpgHome } from './openpgp-gpg.ts';

const DAY = 24 * 3600 * 1000;
const codes = (info: PgpKeyInfo) => info.problems.map((p) => p.code).sort();

describe('inspectPublicKey on gpg keys', () => {
  let gpg: GpgHome;

  before(async () => {
    gpg = await createGpgHome();
  });

  after(async () => {
    await gpg?.close();
  });

  it('describes a Curve25519 key without problems', async () => {
    const fingerprint = await gpg.generateKey({ kind: 'cv25519', name: 'Bürger', email: 'Buerger@Example.NET' });
    const info = await inspectPublicKey(await gpg.exportPublic(fingerprint));
    assert.equal(info.fingerprint, fingerprint);
    assert.equal(info.keyId, fingerprint.slice(-16));
    assert.deepEqual(info.userIds, ['Bürger <Buerger@Example.NET>']);
    assert.deepEqual(info.addresses, ['buerger@example.net']);
    assert.equal(info.algorithm, 'eddsaLegacy');
    assert.equal(info.curve, 'ed25519Legacy');
    assert.equal(info.expires, null);
    assert.equal(info.revoked, false);
    assert.equal(info.canEncrypt, true);
    assert.deepEqual(info.problems, []);
    assert.ok(info.created.getTime() <= Date.now());
    const stored = await openpgp.readKey({ armoredKey: info.armored });
    assert.equal(stored.getFingerprint().toUpperCase(), fingerprint);
  });

  it('describes an RSA 3072 key with its size', async () => {
    const fingerprint = await gpg.generateKey({ kind: 'rsa3072', name: 'Kanzlei', email: 'kanzlei@example.net' });
    const info = await inspectPublicKey(await gpg.exportPublic(fingerprint));
    assert.equal(info.algorithm, 'rsaEncryptSign');
    assert.equal(info.bits, 3072);
    assert.equal(info.canEncrypt, true);
    assert.deepEqual(info.problems, []);
  });

  it('reports PGP_KEY_EXPIRED once the injected time passes the expiry, and nothing before', async () => {
    const fingerprint = await gpg.generateKey({
      kind: 'cv25519',
      name: 'Kurz',
      email: 'kurz@example.net',
      expire: '1d',
    });
    const armored = await gpg.exportPublic(fingerprint);
    const today = await inspectPublicKey(armored);
    assert.ok(today.expires instanceof Date);
    assert.deepEqual(today.problems, []);
    const later = await inspectPublicKey(armored, { now: new Date(Date.now() + 2 * DAY) });
    assert.deepEqual(codes(later), ['PGP_KEY_EXPIRED']);
    assert.equal(later.canEncrypt, false);
  });

  it('reports PGP_KEY_REVOKED after gpg revocation certificate is imported', async () => {
    const fingerprint = await gpg.generateKey({ kind: 'cv25519', name: 'Alt', email: 'alt@example.net' });
    const before = await inspectPublicKey(await gpg.exportPublic(fingerprint));
    assert.deepEqual(before.problems, []);
    await gpg.importKey(await gpg.revocationCertificate(fingerprint));
    const info = await inspectPublicKey(await gpg.exportPublic(fingerprint), { now: new Date(Date.now() + 1000) });
    assert.equal(info.revoked, true);
    assert.equal(info.canEncrypt, false);
    assert.deepEqual(codes(info), ['PGP_KEY_REVOKED']);
  });

  it('reports PGP_NO_ENCRYPTION_KEY for a sign-only key', async () => {
    const fingerprint = await gpg.generateKey({
      kind: 'ed25519-sign-only',
      name: 'Signer',
      email: 'signer@example.net',
    });
    const info = await inspectPublicKey(await gpg.exportPublic(fingerprint));
    assert.equal(info.canEncrypt, false);
    assert.deepEqual(codes(info), ['PGP_NO_ENCRYPTION_KEY']);
  });

  it('reports PGP_WEAK_KEY for RSA 1024 and does not call it missing', async () => {
    const fingerprint = await gpg.generateKey({ kind: 'rsa1024', name: 'Alt', email: 'rsa1024@example.net' });
    const info = await inspectPublicKey(await gpg.exportPublic(fingerprint));
    assert.equal(info.bits, 1024, 'gpg made the 1024-bit key this test asks for');
    assert.equal(info.canEncrypt, false);
    assert.deepEqual(codes(info), ['PGP_WEAK_KEY', 'PGP_WEAK_KEY']);
  });

  it('leaves a revoked user ID out of the addresses', async () => {
    const fingerprint = await gpg.generateKey({ kind: 'cv25519', name: 'Zwei', email: 'neu@example.net' });
    const adduid = await gpg.run(['--quick-add-uid', fingerprint, 'Zwei <alt@example.net>']);
    assert.equal(adduid.code, 0, adduid.stderr);
    const revuid = await gpg.run(['--quick-revoke-uid', fingerprint, 'Zwei <alt@example.net>']);
    assert.equal(revuid.code, 0, revuid.stderr);
    const info = await inspectPublicKey(await gpg.exportPublic(fingerprint), { now: new Date(Date.now() + 1000) });
    assert.equal(info.userIds.length, 2);
    assert.deepEqual(info.addresses, ['neu@example.net']);
    assert.deepEqual(info.problems, []);
  });

  it('throws PGP_KEY_MALFORMED for garbage, truncated armor, two keys and a private key', async () => {
    const fingerprint = await gpg.generateKey({ kind: 'cv25519', name: 'Ganz', email: 'ganz@example.net' });
    const armored = await gpg.exportPublic(fingerprint);
    const malformed = [
      'garbage',
      armored.slice(0, armored.length / 2),
      armored + (await gpg.exportPublic(await gpg.generateKey({ kind: 'cv25519', name: 'B', email: 'b@example.net' }))),
      await gpg.exportSecret(fingerprint),
    ];
    for (const text of malformed) {
      await assert.rejects(inspectPublicKey(text), { code: 'PGP_KEY_MALFORMED' });
    }
  });

  it('reports PGP_KEY_MALFORMED for a key whose only self-signature was stripped', async () => {
    const fingerprint = await gpg.generateKey({ kind: 'cv25519', name: 'Ohne', email: 'ohne@example.net' });
    const key = await openpgp.readKey({ armoredKey: await gpg.exportPublic(fingerprint) });
    for (const user of key.users) user.selfCertifications = [];
    const info = await inspectPublicKey(key.armor());
    assert.ok(codes(info).includes('PGP_KEY_MALFORMED'), JSON.stringify(info.problems));
    assert.equal(info.canEncrypt, false);
  });

  it("recipientKeyProblems (encrypt's look at a directory key) reports inspectPublicKey's codes at each second", async () => {
    const short = await gpg.exportPublic(
      await gpg.generateKey({ kind: 'cv25519', name: 'Kurz', email: 'kurz2@example.net', expire: '1d' }),
    );
    const weak = await gpg.exportPublic(await gpg.generateKey({ kind: 'rsa1024', name: 'A', email: 'w@example.net' }));
    const stripped = await openpgp.readKey({
      armoredKey: await gpg.exportPublic(await gpg.generateKey({ kind: 'cv25519', name: 'O', email: 'o@example.net' })),
    });
    for (const user of stripped.users) user.selfCertifications = [];
    const now = new Date();
    const later = new Date(now.getTime() + 2 * DAY);
    for (const [armored, at] of [
      [short, now],
      [short, later],
      [short, now],
      [weak, now],
      [stripped.armor(), now],
    ] as const) {
      const expected = codes(await inspectPublicKey(armored, { now: at }));
      // Twice: the second answer within the same second comes from the key's kept verdict.
      assert.deepEqual((await recipientKeyProblems(armored, at)).sort(), expected, at.toISOString());
      assert.deepEqual((await recipientKeyProblems(armored, at)).sort(), expected, at.toISOString());
    }
    assert.deepEqual(await recipientKeyProblems('garbage', now), ['PGP_KEY_MALFORMED']);
    const kept = await recipientKeyProblems(short, later);
    kept.push('PGP_KEY_REVOKED');
    assert.deepEqual(
      await recipientKeyProblems(short, later),
      ['PGP_KEY_EXPIRED'],
      'a caller cannot change the kept verdict',
    );
  });
});
