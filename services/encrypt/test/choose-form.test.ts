// Which form each outbound recipient gets, against the real key-directory tables: certificates made by openssl
// under a test CA, OpenPGP keys made by gpg, revocation from a CRL served over HTTP by the test.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { allowList } from '@smgw/config';
import { createRevocationFetcher, type RevocationMode } from '@smgw/crypto';
import { trustAnchorCertificates } from '@smgw/key-directory';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { chooseForm, RevocationUnavailableError } from '../src/choose-form.ts';
import { lookUpRecipientKeys, type RecipientLookupDeps } from '../src/outbound-keys.ts';
import {
  createGpgHome,
  createTestPki,
  type GpgHome,
  insertCertificate,
  insertPgpKey,
  insertTrustAnchor,
  startCrlServer,
  type TestCa,
  type TestPki,
} from './fixtures.ts';

const DAY = 24 * 60 * 60 * 1000;

describe('choosing the form per recipient', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let gpg: GpgHome;
  let ca: TestCa;
  let crlServer: { url: string; close(): Promise<void> };

  before(async () => {
    [db, pki, gpg] = await Promise.all([createTestDatabase(), createTestPki(), createGpgHome()]);
    ca = await pki.ca('Test-CA');
    const untrusted = await pki.ca('Untrusted-CA');
    // The CRL is made once, after the revocation below: made per request, its thisUpdate (whole seconds) could lie
    // after the validation time a test took a moment earlier.
    let crl: Buffer = Buffer.alloc(0);
    crlServer = await startCrlServer(async () => crl);
    await insertTrustAnchor(db.pool, ca.der);

    await insertCertificate(db.pool, await pki.leaf(ca, 'valid@mail.example'));
    await insertCertificate(db.pool, await pki.leaf(ca, 'short@mail.example', { days: 1 }));
    await insertCertificate(db.pool, await pki.leaf(ca, 'server@mail.example', { eku: 'serverAuth' }));
    await insertCertificate(db.pool, await pki.leaf(untrusted, 'untrusted@mail.example'));
    await insertCertificate(db.pool, await pki.leaf(ca, 'sha1@mail.example', { hash: 'sha1' }));
    await insertCertificate(db.pool, await pki.leaf(ca, 'signing@mail.example', { keyUsage: 'digitalSignature' }));
    await insertCertificate(
      db.pool,
      await pki.leaf(ca, 'ec-signing@mail.example', { key: 'p-256', keyUsage: 'digitalSignature' }),
    );
    await insertCertificate(db.pool, await pki.leaf(ca, 'ec@mail.example', { key: 'p-384' }));
    await insertCertificate(db.pool, await pki.leaf(ca, 'checked@mail.example', { crlUrl: crlServer.url }));
    const revoked = await pki.leaf(ca, 'revoked@mail.example', { crlUrl: crlServer.url });
    await insertCertificate(db.pool, revoked);
    await pki.revoke(ca, revoked);
    crl = await pki.crl(ca);
    await insertCertificate(
      db.pool,
      await pki.leaf(ca, 'no-crl@mail.example', { crlUrl: 'http://127.0.0.1:9/none.crl' }),
    );
    // A certificate refused, but an approved OpenPGP key: the key is used.
    await insertCertificate(db.pool, await pki.leaf(ca, 'both@mail.example', { eku: 'serverAuth' }));

    await insertPgpKey(db.pool, await gpg.exportPublic(await gpg.generateKey('approved@mail.example')), 'approved');
    await insertPgpKey(db.pool, await gpg.exportPublic(await gpg.generateKey('pending@mail.example')), 'pending');
    await insertPgpKey(db.pool, await gpg.exportPublic(await gpg.generateKey('rejected@mail.example')), 'rejected');
    await insertPgpKey(db.pool, await gpg.exportPublic(await gpg.generateKey('both@mail.example')), 'approved');
    await insertPgpKey(
      db.pool,
      await gpg.exportPublic(await gpg.generateKey('expiring@mail.example', 'cv25519', '1d')),
      'approved',
    );
  });

  after(async () => {
    await crlServer?.close();
    await gpg?.close();
    await pki?.remove();
    await db?.drop();
  });

  async function deps(
    overrides: { now?: Date; revocationMode?: RevocationMode; lastAttempt?: boolean } = {},
  ): Promise<RecipientLookupDeps & { lastAttempt: boolean }> {
    const now = overrides.now ?? new Date();
    return {
      pool: db.pool,
      trustAnchors: await trustAnchorCertificates(db.pool),
      fetcher: createRevocationFetcher({ now: () => now, timeoutMs: 10_000, allow: allowList('127.0.0.1') }),
      revocationMode: overrides.revocationMode ?? 'off',
      now,
      lastAttempt: overrides.lastAttempt ?? false,
    };
  }

  /** The recipient's keys looked up in the test database, then its form chosen from them. */
  async function lookUpAndChoose(lookup: RecipientLookupDeps & { lastAttempt: boolean }, recipient: string) {
    return chooseForm(await lookUpRecipientKeys(lookup, recipient), lookup.lastAttempt);
  }

  const cases: Array<{
    recipient: string;
    form: string;
    code?: string;
    why?: RegExp;
    mode?: RevocationMode;
    inDays?: number;
  }> = [
    { recipient: 'valid@mail.example', form: 'smime' },
    {
      recipient: 'valid@mail.example',
      form: 'portal',
      code: 'ENCRYPT_CERTIFICATE_INVALID',
      why: /NOT_YET_VALID/,
      inDays: -2,
    },
    { recipient: 'short@mail.example', form: 'portal', code: 'ENCRYPT_CERTIFICATE_INVALID', why: /EXPIRED/, inDays: 3 },
    {
      recipient: 'server@mail.example',
      form: 'portal',
      code: 'ENCRYPT_CERTIFICATE_INVALID',
      why: /EXTENDED_KEY_USAGE/,
    },
    {
      recipient: 'untrusted@mail.example',
      form: 'portal',
      code: 'ENCRYPT_CERTIFICATE_INVALID',
      why: /UNTRUSTED_ROOT|NO_PATH/,
    },
    { recipient: 'sha1@mail.example', form: 'portal', code: 'ENCRYPT_CERTIFICATE_INVALID', why: /WEAK_SIGNATURE/ },
    { recipient: 'signing@mail.example', form: 'portal', code: 'ENCRYPT_CERTIFICATE_INVALID', why: /KEY_USAGE/ },
    { recipient: 'ec-signing@mail.example', form: 'portal', code: 'ENCRYPT_CERTIFICATE_INVALID', why: /KEY_USAGE/ },
    { recipient: 'ec@mail.example', form: 'smime' },
    { recipient: 'checked@mail.example', form: 'smime', mode: 'require' },
    {
      recipient: 'revoked@mail.example',
      form: 'portal',
      code: 'ENCRYPT_CERTIFICATE_INVALID',
      why: /REVOKED/,
      mode: 'require',
    },
    { recipient: 'approved@mail.example', form: 'pgp' },
    { recipient: 'pending@mail.example', form: 'portal', code: 'ENCRYPT_PGP_KEY_PENDING', why: /pending approval/ },
    { recipient: 'rejected@mail.example', form: 'portal', code: 'ENCRYPT_NO_KEY' },
    {
      recipient: 'expiring@mail.example',
      form: 'portal',
      code: 'ENCRYPT_PGP_KEY_UNUSABLE',
      why: /PGP_KEY_EXPIRED/,
      inDays: 3,
    },
    { recipient: 'both@mail.example', form: 'pgp' },
    { recipient: 'nobody@mail.example', form: 'portal', code: 'ENCRYPT_NO_KEY', why: /no certificate/ },
  ];
  for (const c of cases) {
    const when = c.inDays ? (c.inDays > 0 ? ` ${c.inDays} days later` : ` ${-c.inDays} days earlier`) : '';
    it(`gives ${c.recipient} the form ${c.form}${when}${c.mode ? ` (revocation ${c.mode})` : ''}`, async () => {
      const now = new Date(Date.now() + (c.inDays ?? 0) * DAY);
      const choice = await lookUpAndChoose(await deps({ now, revocationMode: c.mode ?? 'off' }), c.recipient);
      assert.equal(choice.form, c.form);
      if (choice.form === 'portal') {
        assert.equal(choice.code, c.code);
        if (c.why) assert.match(choice.why, c.why);
      }
    });
  }

  it('retries when the revocation of a certificate cannot be fetched, instead of choosing another form', async () => {
    await assert.rejects(
      lookUpAndChoose(await deps({ revocationMode: 'require' }), 'no-crl@mail.example'),
      (err: unknown) => err instanceof RevocationUnavailableError && err.code === 'ENCRYPT_REVOCATION_UNAVAILABLE',
    );
  });

  it('refuses that certificate on the last attempt, with REVOCATION_UNKNOWN in the reason', async () => {
    const choice = await lookUpAndChoose(
      await deps({ revocationMode: 'require', lastAttempt: true }),
      'no-crl@mail.example',
    );
    assert.equal(choice.form, 'portal');
    assert.ok(choice.form === 'portal' && /REVOCATION_UNKNOWN/.test(choice.why));
  });
});
