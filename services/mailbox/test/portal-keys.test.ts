// Bring your own key (/schluessel) over HTTP with the real database and Redis: a certificate that validates to a trust
// anchor and holds the user's address is taken (source 'portal') and the page says mail is encrypted with it now; a
// certificate for another address or from an unknown CA is refused; an OpenPGP key must hold the user's address and
// waits for an operator; a stranger's upload is never read. What was uploaded goes with the mailbox, and nothing else
// does: also an upload that finishes after the mailbox was deleted.
import assert from 'node:assert/strict';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  createRevocationFetcher,
  HARVESTED_KEY_LIMITS,
  inspectPublicKey,
  NOTHING_ALLOWED,
  readCertificateUpload,
  recipientKeyProblems,
} from '@smgw/crypto';
import {
  acceptRecipientCertificate,
  addTrustAnchor,
  approvePgpKey,
  currentCertificates,
  getPgpKeyArmored,
  listCertificates,
  listPgpKeys,
  pgpKeysFor,
  storeHarvestedPgpKey,
  withdrawCertificate,
} from '@smgw/key-directory';
import { deleteMailbox, findMailbox, listMailboxAudit } from '@smgw/mailbox-store';
import { waitFor } from '@smgw/testing';
import { type Ca, createKeyMaterial, type KeyMaterial } from './key-material.ts';
import {
  type Browser,
  clearPortalLimits,
  loggedInBrowser,
  type Page,
  type PortalWorld,
  pageOf,
  startPortalWorld,
  uniqueAddress,
} from './portal-world.ts';

const PASSWORD = 'correct horse battery staple';
const newAddress = () => uniqueAddress('byok');

/** A multipart/form-data body with the CSRF token first, the password asked again, and one file. */
function multipart(csrf: string | null, file?: { filename: string; content: Buffer | string }) {
  const boundary = `----test${randomBytes(8).toString('hex')}`;
  const parts: Buffer[] = [];
  if (csrf !== null) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n${csrf}\r\n`));
  }
  parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="password"\r\n\r\n${PASSWORD}\r\n`));
  if (file) {
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="key"; filename="${file.filename}"\r\n` +
          'Content-Type: application/octet-stream\r\n\r\n',
      ),
      Buffer.from(file.content),
      Buffer.from('\r\n'),
    );
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

describe('bring your own key', () => {
  let world: PortalWorld;
  let keys: KeyMaterial;
  let trusted: Ca;
  let untrusted: Ca;

  before(async () => {
    [world, keys] = await Promise.all([startPortalWorld({ settings: { revocationMode: 'off' } }), createKeyMaterial()]);
    // openssl and gpg make their material at the real time: the portal's clock goes there too.
    world.clock.advance(Date.now() - world.clock.now().getTime());
    [trusted, untrusted] = await Promise.all([keys.ca('Trusted-CA'), keys.ca('Untrusted-CA')]);
    const anchor = new X509Certificate(trusted.der);
    await addTrustAnchor(world.db.pool, {
      fingerprint: createHash('sha256').update(trusted.der).digest('hex'),
      subject: anchor.subject,
      der: trusted.der,
      notBefore: anchor.validFromDate,
      notAfter: anchor.validToDate,
      addedBy: 'test',
    });
  });
  after(async () => {
    await keys?.remove();
    await world?.close();
  });
  beforeEach(() => clearPortalLimits(world));

  async function loggedIn(address: string): Promise<Browser> {
    const { browser } = await loggedInBrowser(world, address, PASSWORD);
    await browser.get('/schluessel');
    return browser;
  }

  async function upload(browser: Browser, content: Buffer | string, csrf = browser.csrfToken ?? null): Promise<Page> {
    // Keys made a moment ago must not lie in the future of the portal's clock.
    world.clock.advance(Math.max(0, Date.now() + 1000 - world.clock.now().getTime()));
    const { payload, contentType } = multipart(csrf, { filename: 'key', content });
    const res = await world.app.inject({
      method: 'POST',
      url: '/schluessel',
      headers: { 'content-type': contentType, ...(browser.cookies.size > 0 ? { cookie: browser.cookieHeader() } : {}) },
      payload,
    });
    return pageOf(res);
  }

  it('shows the upload form and that messages come to the portal while no key is on record', async () => {
    const browser = await loggedIn(newAddress());
    const page = await browser.get('/schluessel');
    assert.equal(page.status, 200);
    assert.match(page.body, /enctype="multipart\/form-data"/);
    assert.match(page.body, /<label for="field-key">/);
    assert.match(page.body, /kommen in dieses Postfach/);
    assert.equal((await world.browser().get('/schluessel')).status, 303, 'only for logged-in users');
  });

  it('takes a valid certificate for the user (PEM or DER) and says mail is encrypted with it from now on', async () => {
    const address = newAddress();
    const browser = await loggedIn(address);
    const pem = await keys.leaf(trusted, address);
    const answer = await upload(browser, pem);
    assert.equal(answer.status, 303);
    assert.equal(answer.location, '/schluessel?hinzugefuegt=zertifikat');
    const page = await browser.get(answer.location);
    assert.match(page.body, /Ihr Zertifikat wurde geprüft und übernommen/);
    assert.match(page.body, /werden ab jetzt mit Ihrem Zertifikat verschlüsselt/);
    const [stored] = await currentCertificates(world.db.pool, address);
    assert.ok(stored);
    const listed = await world.db.pool.query('select source from certificates where fingerprint = $1', [
      stored.fingerprint,
    ]);
    assert.equal(listed.rows[0]?.source, 'portal');
    assert.ok((await listMailboxAudit(world.db.pool, address)).some((e) => e.event === 'mailbox.certificate-added'));

    // DER of another certificate for the same user.
    const der = Buffer.from(new X509Certificate(await keys.leaf(trusted, address, { days: 60 })).raw);
    assert.equal((await upload(browser, der)).status, 303);
  });

  it('refuses a certificate for another address, from an unknown CA, or not for e-mail', async () => {
    const address = newAddress();
    const browser = await loggedIn(address);
    const cases: Array<[string, Promise<string>, RegExp]> = [
      ['another address', keys.leaf(trusted, 'victim@buerger.example'), /nicht für Ihre E-Mail-Adresse/],
      ['an unknown CA', keys.leaf(untrusted, address), /konnte nicht geprüft werden/],
      ['server authentication only', keys.leaf(trusted, address, { eku: 'serverAuth' }), /konnte nicht geprüft werden/],
    ];
    for (const [what, pem, message] of cases) {
      const page = await upload(browser, await pem);
      assert.equal(page.status, 422, what);
      assert.match(page.body, message, what);
      assert.match(page.body, /aria-describedby="field-key-hint field-key-error" aria-invalid="true"/, what);
    }
    assert.deepEqual(await currentCertificates(world.db.pool, address), []);
    assert.deepEqual(await currentCertificates(world.db.pool, 'victim@buerger.example'), []);
    const garbage = await upload(browser, 'not a certificate at all');
    assert.equal(garbage.status, 422);
    assert.match(garbage.body, /weder ein lesbares Zertifikat/);
  });

  it('refuses to take again a certificate an operator withdrew, and says so', async () => {
    const address = newAddress();
    const browser = await loggedIn(address);
    const pem = await keys.leaf(trusted, address);
    assert.equal((await upload(browser, pem)).status, 303);
    const [stored] = await currentCertificates(world.db.pool, address);
    assert.ok(stored);
    const withdrawal = await withdrawCertificate(world.db.pool, {
      fingerprint: stored.fingerprint,
      operator: 'k.weber',
      reason: 'the holder lost the private key',
      at: world.clock.now(),
    });
    assert.ok(withdrawal.ok);

    const again = await upload(browser, pem);
    assert.equal(again.status, 422);
    assert.match(again.body, /aus dem Gebrauch genommen/);
    assert.match(again.body, /kommen in dieses Postfach/, 'the page says mail comes to the portal');
    assert.deepEqual(await currentCertificates(world.db.pool, address), []);
    const audit = await listMailboxAudit(world.db.pool, address);
    assert.equal(audit.filter((e) => e.event === 'mailbox.certificate-added').length, 1, 'only the first upload');
  });

  it('stores a certificate that also names an agency and another citizen for the user alone', async () => {
    const address = newAddress();
    const agency = `poststelle-${randomBytes(4).toString('hex')}@behoerde.example`;
    const citizen = `nachbar-${randomBytes(4).toString('hex')}@buerger.example`;
    // The agency's own certificate, taken by an operator, is current before the upload.
    const agencyCertificate = await acceptRecipientCertificate(world.db.pool, {
      chain: readCertificateUpload(Buffer.from(await keys.leaf(trusted, agency))),
      source: 'admin',
      by: 'ops',
      now: world.clock.now(),
      revocationMode: 'off',
      revocationFetcher: createRevocationFetcher({ now: () => world.clock.now(), allow: NOTHING_ALLOWED }),
    });
    assert.ok(agencyCertificate.ok);
    const browser = await loggedIn(address);
    const answer = await upload(browser, await keys.leaf(trusted, address, { moreAddresses: [agency, citizen] }));
    assert.equal(answer.status, 303);
    const [stored] = await currentCertificates(world.db.pool, address);
    assert.ok(stored);
    const row = await world.db.pool.query('select addresses from certificates where fingerprint = $1', [
      stored.fingerprint,
    ]);
    assert.deepEqual(row.rows[0]?.addresses, [address]);
    // Mail to the agency is still encrypted with its own certificate alone, mail to the citizen with none.
    assert.deepEqual(
      (await currentCertificates(world.db.pool, agency)).map((c) => c.fingerprint),
      [agencyCertificate.certificate.fingerprint],
    );
    assert.deepEqual(await currentCertificates(world.db.pool, citizen), []);
  });

  it('stores an OpenPGP key with the user address pending, for that address only, and says it waits', async () => {
    const address = newAddress();
    const browser = await loggedIn(address);
    const armored = await keys.pgpKey([address, 'other@buerger.example']);
    const answer = await upload(browser, armored);
    assert.equal(answer.status, 303);
    const page = await browser.get(answer.location ?? '');
    assert.match(page.body, /wartet auf die Freigabe/);
    const [key] = await listPgpKeys(world.db.pool, { address, limit: 10 });
    assert.equal(key?.state, 'pending');
    assert.equal(key?.source, 'portal');
    assert.deepEqual(key?.addresses, [address]);
    // The other user ID is not claimed.
    assert.deepEqual(await pgpKeysFor(world.db.pool, 'other@buerger.example'), []);

    // Once an operator approves it, the page says mail is encrypted with it.
    assert.ok(key);
    await approvePgpKey(world.db.pool, {
      fingerprint: key.fingerprint,
      operator: 'ops',
      at: new Date(),
    });
    assert.match((await browser.get('/schluessel')).body, /mit Ihrem OpenPGP-Schlüssel verschlüsselt/);
  });

  it('refuses an OpenPGP key already on record for another address instead of saying it waits for the user', async () => {
    const address = newAddress();
    const victim = `nachbar-${randomBytes(4).toString('hex')}@buerger.example`;
    // A stranger's key naming both: mail with From: victim (forged) offered it, and the harvest stored it pending for
    // the victim. Its holder then uploads it on the portal and asks an operator to approve "their" key.
    const armored = await keys.pgpKey([address, victim]);
    const { fingerprint } = await inspectPublicKey(armored);
    await storeHarvestedPgpKey(world.db.pool, {
      fingerprint,
      armored,
      addresses: [victim],
      algorithm: 'eddsaLegacy',
      expiresAt: null,
    });
    const browser = await loggedIn(address);
    const page = await upload(browser, armored);
    assert.equal(page.status, 422);
    assert.match(page.body, /bereits für eine andere E-Mail-Adresse hinterlegt/);
    assert.match(page.body, /kommen in dieses Postfach/, 'the page says mail still comes to the portal');
    assert.deepEqual(await listPgpKeys(world.db.pool, { address, limit: 10 }), []);
    const audit = await listMailboxAudit(world.db.pool, address);
    assert.equal(audit.filter((e) => e.event === 'mailbox.pgp-key-submitted').length, 0, 'no submission recorded');
  });

  it('refuses a certificate already on record for another address alone instead of saying it is used', async () => {
    const address = newAddress();
    const victim = `nachbar-${randomBytes(4).toString('hex')}@buerger.example`;
    const pem = await keys.leaf(trusted, address, { moreAddresses: [victim] });
    world.clock.advance(Math.max(0, Date.now() + 1000 - world.clock.now().getTime()));
    const stored = await acceptRecipientCertificate(world.db.pool, {
      chain: readCertificateUpload(Buffer.from(pem)),
      address: victim,
      source: 'admin',
      by: 'ops',
      now: world.clock.now(),
      revocationMode: 'off',
      revocationFetcher: createRevocationFetcher({ now: () => world.clock.now(), allow: NOTHING_ALLOWED }),
    });
    assert.ok(stored.ok);
    const browser = await loggedIn(address);
    const page = await upload(browser, pem);
    assert.equal(page.status, 422);
    assert.match(page.body, /bereits für eine andere E-Mail-Adresse hinterlegt/);
    assert.match(page.body, /kommen in dieses Postfach/, 'the page says mail still comes to the portal');
    assert.deepEqual(await currentCertificates(world.db.pool, address), []);
    const audit = await listMailboxAudit(world.db.pool, address);
    assert.equal(audit.filter((e) => e.event === 'mailbox.certificate-added').length, 0, 'no addition recorded');
  });

  it('takes a newer copy of the user\u2019s approved OpenPGP key into it: a revocation stops its use', async () => {
    const address = newAddress();
    const browser = await loggedIn(address);
    const armored = await keys.pgpKey([address]);
    assert.equal((await upload(browser, armored)).status, 303);
    const { fingerprint } = await inspectPublicKey(armored);
    const approval = await approvePgpKey(world.db.pool, { fingerprint, operator: 'ops', at: new Date() });
    assert.ok(approval.ok);

    // The holder lost the private key and revokes it; the revoked copy is what they can upload.
    const revoked = await keys.pgpRevoked(fingerprint);
    const answer = await upload(browser, revoked);
    assert.equal(answer.status, 303);
    assert.equal(answer.location, '/schluessel?hinzugefuegt=pgp-aktualisiert');
    const stored = await getPgpKeyArmored(world.db.pool, fingerprint);
    assert.ok(stored);
    assert.ok(
      (await recipientKeyProblems(stored, new Date())).includes('PGP_KEY_REVOKED'),
      'the stored key is revoked',
    );
    const [key] = await listPgpKeys(world.db.pool, { address, limit: 10 });
    assert.deepEqual(key?.approvedAddresses, [address], 'addresses and approval stay as decided');
    assert.ok((await listMailboxAudit(world.db.pool, address)).some((e) => e.event === 'mailbox.pgp-key-updated'));
    // The page no longer says mail is encrypted with it: the encrypt stage does not use a revoked key.
    const page = await browser.get(answer.location ?? '');
    assert.match(page.body, /neueren Fassung aktualisiert/);
    assert.match(page.body, /abgelaufen oder widerrufen: wird nicht verwendet/);
    assert.doesNotMatch(page.body, /mit Ihrem OpenPGP-Schlüssel verschlüsselt/);
    assert.match(page.body, /kommen in dieses Postfach/);

    // The older copy offered again takes nothing back.
    assert.equal((await upload(browser, armored)).status, 303);
    const again = await getPgpKeyArmored(world.db.pool, fingerprint);
    assert.ok(again);
    assert.ok((await recipientKeyProblems(again, new Date())).includes('PGP_KEY_REVOKED'), 'still revoked');
  });

  it('refuses an OpenPGP key without the user address, and one that cannot be read', async () => {
    const address = newAddress();
    const browser = await loggedIn(address);
    const foreign = await upload(browser, await keys.pgpKey(['someone@else.example']));
    assert.equal(foreign.status, 422);
    assert.match(foreign.body, /enthält Ihre E-Mail-Adresse nicht/);
    assert.deepEqual(await listPgpKeys(world.db.pool, { address: 'someone@else.example', limit: 10 }), []);
    const broken = await upload(
      browser,
      '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n',
    );
    assert.equal(broken.status, 422);
    assert.deepEqual(await listPgpKeys(world.db.pool, { address, limit: 10 }), []);
  });

  it('refuses an OpenPGP key of more user IDs than a harvested key may hold, though under 64 KiB, and says why', async () => {
    // The portal's key goes into the same directory as a harvested one and costs a verification per self-signature:
    // the same limits (HARVESTED_KEY_LIMITS of @smgw/crypto), checked before any signature is verified.
    const address = newAddress();
    const browser = await loggedIn(address);
    const others = Array.from({ length: HARVESTED_KEY_LIMITS.userIds }, (_, i) => `alias${i}@buerger.example`);
    const armored = await keys.pgpKey([address, ...others]);
    assert.ok(armored.length < 64 * 1024, `${armored.length} bytes`);
    const answer = await upload(browser, armored);
    assert.equal(answer.status, 422);
    assert.match(answer.body, /zu viele Benutzerkennungen, Unterschlüssel oder Signaturen/);
    assert.match(answer.body, /höchstens 16 Benutzerkennungen/);
    assert.deepEqual(await listPgpKeys(world.db.pool, { address, limit: 10 }), []);
  });

  it('refuses an empty or oversized upload, and an upload without the CSRF token', async () => {
    const browser = await loggedIn(newAddress());
    const { payload, contentType } = multipart(browser.csrfToken ?? null);
    const empty = await world.app.inject({
      method: 'POST',
      url: '/schluessel',
      headers: { 'content-type': contentType, cookie: browser.cookieHeader() },
      payload,
    });
    assert.equal(empty.statusCode, 400);
    assert.equal((await upload(browser, Buffer.alloc(70 * 1024, 0x41))).status, 413);
    assert.equal((await upload(browser, 'x', null)).status, 403);
  });

  it('deleting the account deletes the certificate and OpenPGP key uploaded for it, not a harvested certificate', async () => {
    const address = newAddress();
    const browser = await loggedIn(address);
    // Mail the user signed earlier left a certificate; the one uploaded later replaces it.
    const earlier = await keys.leaf(trusted, address);
    world.clock.advance(Math.max(0, Date.now() + 1000 - world.clock.now().getTime()));
    const harvested = await acceptRecipientCertificate(world.db.pool, {
      chain: readCertificateUpload(Buffer.from(earlier)),
      source: 'admin',
      by: 'ops',
      now: world.clock.now(),
      revocationMode: 'off',
      revocationFetcher: createRevocationFetcher({ now: () => world.clock.now(), allow: NOTHING_ALLOWED }),
    });
    assert.ok(harvested.ok);
    await world.db.pool.query(
      `update certificates set source = 'harvested', not_before = not_before - interval '1 day'
        where fingerprint = $1`,
      [harvested.certificate.fingerprint],
    );
    assert.equal((await upload(browser, await keys.leaf(trusted, address))).status, 303);
    assert.equal((await upload(browser, await keys.pgpKey([address]))).status, 303);
    const [certificate] = await currentCertificates(world.db.pool, address);
    const [pgpKey] = await pgpKeysFor(world.db.pool, address);
    assert.ok(certificate && pgpKey);
    assert.notEqual(certificate.fingerprint, harvested.certificate.fingerprint);

    await browser.get('/konto/loeschen');
    assert.equal((await browser.post('/konto/loeschen', { address, confirm: 'ja', password: PASSWORD })).status, 200);
    const left = await world.db.pool.query<{ fingerprint: string; replaced_by: string | null }>(
      'select fingerprint, replaced_by from certificates where addresses @> array[$1::text]',
      [address],
    );
    assert.deepEqual(
      left.rows,
      [{ fingerprint: harvested.certificate.fingerprint, replaced_by: certificate.fingerprint }],
      'the harvested certificate stays, replaced as it was',
    );
    assert.deepEqual(await currentCertificates(world.db.pool, address), []);
    assert.deepEqual(await pgpKeysFor(world.db.pool, address), []);
    const deleted = (await listMailboxAudit(world.db.pool, address)).find((e) => e.event === 'mailbox.deleted');
    assert.deepEqual(deleted?.detail?.certificates, [certificate.fingerprint]);
    assert.deepEqual(deleted?.detail?.pgpKeys, [pgpKey.fingerprint]);
  });

  for (const kind of ['a certificate', 'an OpenPGP key'] as const) {
    it(`drops ${kind} whose upload finished after the mailbox was deleted`, async () => {
      const address = newAddress();
      const browser = await loggedIn(address);
      const mailbox = await findMailbox(world.db.pool, address);
      assert.ok(mailbox);
      const key = kind === 'a certificate' ? await keys.leaf(trusted, address) : await keys.pgpKey([address]);
      const deleting = await world.db.pool.connect();
      try {
        await deleting.query('begin');
        await deleteMailbox(deleting, mailbox.id);
        // The upload passes the session check (the deletion has not committed yet) and stores its key after the
        // deletion took the address's keys, or waits for it.
        let answered = false;
        const answer = upload(browser, key).finally(() => {
          answered = true;
        });
        await waitFor('the upload to wait for the deletion, or to be done', async () => {
          const { rows } = await world.db.pool.query(
            `select 1 from pg_locks l join pg_stat_activity a on a.pid = l.pid
              where not l.granted and a.datname = current_database()
                and (a.query ilike '%from mailboxes where id = $1 for update%'
                  or (l.locktype = 'advisory' and l.objid::bigint = hashtext($1)::bigint & 4294967295))`,
            [`certificates:${address}`],
          );
          return answered || rows.length > 0;
        });
        await deleting.query('commit');
        assert.equal((await answer).location, '/anmelden');
      } finally {
        deleting.release();
      }
      assert.deepEqual(await listCertificates(world.db.pool, { address, includeReplaced: true, limit: 10 }), []);
      assert.deepEqual(await listPgpKeys(world.db.pool, { address, limit: 10 }), []);
    });
  }

  it('does not read a stranger\u2019s upload: without a session the form goes to the login', async () => {
    const stranger = world.browser('192.0.2.77');
    const page = await upload(stranger, await keys.leaf(trusted, 'stranger@buerger.example'), 'forged');
    assert.equal(page.status, 303);
    assert.equal(page.location, '/anmelden');
    assert.deepEqual(await currentCertificates(world.db.pool, 'stranger@buerger.example'), []);
  });
});
