// The admin API's portal mailbox routes against the real service, database and broker: what an operator sees of a
// mailbox (and never its secrets), lock/unlock, resend activation (the old link dies, the mailbox service's outbox
// gets the new one), delete only with confirmation, and which agency addresses portal users may write to.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { withTransaction } from '@smgw/db';
import {
  addCertificate,
  addPgpKey,
  type CertificateSource,
  createAgency,
  currentCertificates,
  type PgpKeySource,
  pgpKeysFor,
  putAgencyAddress,
} from '@smgw/key-directory';
import {
  checkTokenPin,
  createFolderMailboxKeyStore,
  ensureActivationToken,
  ensureMailbox,
  findMailbox,
  findTokenByLink,
  insertMailboxMessage,
  listMailboxAudit,
  lockDueResentLinkMails,
  type MailboxKeyStore,
  markResentLinkMailed,
  openMailboxKey,
  setMailboxPassword,
} from '@smgw/mailbox-store';
import type { TestDatabase } from '@smgw/testing';
import { runCli } from '../src/cli.ts';
import {
  type ApiRequest,
  callAdminApi,
  captureStderr,
  captureStdout,
  startTestAdmin,
  type TestAdmin,
} from './harness.ts';

const TOKEN = 'test-token-portal-mailboxes-0123456789';
const MASTER_KEY = randomBytes(32);
const HOUR = 3_600_000;

describe('admin API: portal mailboxes', () => {
  let testAdmin: TestAdmin;
  let db: TestDatabase;
  let base: string;
  /** The admin's mailbox key store: the same folder and master key. */
  let keys: MailboxKeyStore;
  const api = (method: string, path: string, request: ApiRequest = {}) =>
    callAdminApi(base, TOKEN, method, path, request);
  const json = (body: unknown) => ({ body: JSON.stringify(body), type: 'application/json' });
  const cli = (...argv: string[]) =>
    captureStdout(() => runCli(argv, { SMGW_ADMIN_URL: base, SMGW_ADMIN_TOKEN: TOKEN, SMGW_OPERATOR: 'erika' }));

  before(async () => {
    testAdmin = await startTestAdmin(TOKEN, { masterKey: MASTER_KEY });
    ({ db, base } = testAdmin);
    keys = createFolderMailboxKeyStore({ keyStoreDir: db.keys.keyStoreDir, masterKey: MASTER_KEY });
  });
  after(async () => {
    await testAdmin?.stop();
  });

  /** A mailbox with a message in the inbox and, unless activated, a live link and PIN. */
  async function mailboxWithMessage(address: string, options: { activated?: boolean } = {}) {
    const { mailbox } = await ensureMailbox(db.pool, address, keys);
    const dataKey = await openMailboxKey(keys, mailbox);
    await withTransaction(db.pool, (client) =>
      insertMailboxMessage(client, {
        mailboxId: mailbox.id,
        dataKey,
        folder: 'inbox',
        messageId: '01JAAAAAAAAAAAAAAAAAAAAAAA',
        recipient: address,
        raw: Buffer.from('Subject: Bescheid\r\n\r\nGeheimer Inhalt\r\n'),
        receivedAt: new Date(),
      }),
    );
    if (options.activated) {
      await setMailboxPassword(db.pool, mailbox.id, '$argon2id$v=19$m=19456,t=2,p=1$x$y', new Date());
      return { mailbox, secrets: undefined };
    }
    const { secrets } = await ensureActivationToken(db.pool, {
      mailbox,
      keys,
      now: new Date(),
      lifetimeMs: 24 * HOUR,
      pinDelayMs: HOUR,
    });
    return { mailbox, secrets };
  }

  it('refuses every portal route without the bearer token', async () => {
    const calls: Array<[string, string]> = [
      ['GET', '/mailboxes/a%40b.example'],
      ['POST', '/mailboxes/a%40b.example/lock'],
      ['POST', '/mailboxes/a%40b.example/unlock'],
      ['POST', '/mailboxes/a%40b.example/resend-activation'],
      ['DELETE', '/mailboxes/a%40b.example?confirm=a%40b.example'],
      ['POST', '/agencies/01ARZ3NDEKTSV4RRFFQ69G5FAV/addresses/a%40b.example/portal-reachable'],
      ['GET', '/portal-reachable-addresses'],
    ];
    for (const [method, path] of calls) {
      assert.equal((await api(method, path, { token: null })).status, 401, `${method} ${path}`);
      assert.equal((await api(method, path, { token: 'wrong' })).status, 401, `${method} ${path}`);
    }
  });

  it('answers 404 for an address without a mailbox and 400 for something that is no address', async () => {
    const unknown = await api('GET', '/mailboxes/niemand%40example.org');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'MAILBOX_NOT_FOUND');
    for (const action of ['lock', 'unlock', 'resend-activation']) {
      assert.equal((await api('POST', `/mailboxes/niemand%40example.org/${action}`)).status, 404, action);
    }
    const del = await api('DELETE', '/mailboxes/niemand%40example.org?confirm=niemand%40example.org');
    assert.equal(del.status, 404);
    assert.equal((await api('GET', '/mailboxes/no-at-sign')).status, 400);
  });

  it('shows state, usage, folder counts and the live link without its secrets', async () => {
    const { mailbox, secrets } = await mailboxWithMessage('Buerger@Example.org');
    await db.pool.query(
      `insert into mailbox_inactivity_warnings (mailbox_id, kind, period_start, sent_at, deletion_due_at)
       values ($1, 'first', now() - interval '200 days', now(), now() + interval '30 days')`,
      [mailbox.id],
    );
    const res = await fetch(`${base}/mailboxes/buerger%40example.org`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    // The operator never sees the link or the PIN, nor anything of the message.
    assert.ok(secrets);
    assert.ok(!text.includes(secrets.link));
    assert.ok(!text.includes(secrets.pin));
    assert.ok(!text.includes('Bescheid') && !text.includes('Geheimer'));
    const view = JSON.parse(text);
    assert.equal(view.address, 'buerger@example.org');
    assert.equal(view.state, 'passive');
    assert.equal(view.usage.quotaBytes, 30 * 1024 * 1024);
    assert.equal(view.usage.bytes, view.folders.inbox.bytes);
    assert.deepEqual(view.folders.inbox.messages, 1);
    assert.deepEqual(view.folders.sent, { messages: 0, bytes: 0, unread: 0 });
    assert.equal(view.activationToken.purpose, 'arrival');
    assert.equal(view.activationToken.pinMailSent, false);
    assert.equal(view.activationToken.expired, false);
    assert.equal(view.warnings.length, 1);
    assert.equal(view.warnings[0].kind, 'first');
    assert.equal(view.lastLoginAt, null);
    // SPEC's words for the state: not active (never activated), not warned (that warning was of an earlier period).
    assert.equal(view.active, false);
    assert.equal(view.warned, false);
    await db.pool.query(
      `insert into mailbox_inactivity_warnings (mailbox_id, kind, period_start, sent_at, deletion_due_at)
       select id, 'first', created_at, now(), now() + interval '30 days' from mailboxes where id = $1`,
      [mailbox.id],
    );
    assert.equal((await api('GET', '/mailboxes/buerger%40example.org')).body.warned, true);
    // SPEC.md writes the path as /mailboxes/{address}: the address as typed, '@' not encoded, is the same mailbox.
    const typed = await api('GET', '/mailboxes/Buerger@Example.org');
    assert.equal(typed.status, 200);
    assert.equal((typed.body as { id: string }).id, view.id);

    const shown = await cli('mailbox', 'show', 'buerger@example.org');
    assert.equal(shown.code, 0);
    assert.match(shown.out, /buerger@example\.org {2}passive/);
    assert.match(shown.out, /inbox 1 \(1 unread\)/);
    assert.match(shown.out, /PIN mail due/);
  });

  it('locks and unlocks a mailbox, recording each change once with the operator; a lock revokes live links', async () => {
    const { mailbox } = await mailboxWithMessage('sperre@example.org', { activated: true });
    const locked = await api('POST', '/mailboxes/sperre%40example.org/lock', { headers: { 'x-smgw-operator': 'ops' } });
    assert.equal(locked.status, 200);
    assert.equal(locked.body.state, 'locked');
    // What the portal reads on the owner's next request: the session ends there.
    assert.equal((await findMailbox(db.pool, 'sperre@example.org'))?.state, 'locked');
    // An activation link does not lift an operator's lock.
    await setMailboxPassword(db.pool, mailbox.id, '$argon2id$v=19$m=19456,t=2,p=1$a$b', new Date());
    assert.equal((await findMailbox(db.pool, 'sperre@example.org'))?.state, 'locked');

    assert.equal((await api('POST', '/mailboxes/sperre%40example.org/lock')).body.state, 'locked');
    const unlocked = await api('POST', '/mailboxes/sperre%40example.org/unlock', {
      headers: { 'x-smgw-operator': 'ops' },
    });
    assert.equal(unlocked.body.state, 'active');
    assert.equal(unlocked.body.active, true);
    const events = (await listMailboxAudit(db.pool, 'sperre@example.org')).map((e) => [e.event, e.actor]);
    assert.deepEqual(events, [
      ['mailbox.locked', 'admin:ops'],
      ['mailbox.unlocked', 'admin:ops'],
    ]);
    assert.deepEqual(
      unlocked.body.audit.map((e: { event: string }) => e.event),
      ['mailbox.unlocked', 'mailbox.locked'],
    );

    // A passive mailbox goes back to passive; a link made before the lock does not open it after the unlock.
    const { secrets } = await mailboxWithMessage('passiv@example.org');
    assert.ok(secrets);
    assert.equal((await findTokenByLink(db.pool, secrets.link, new Date())).kind, 'live');
    assert.equal((await cli('mailbox', 'lock', 'passiv@example.org')).out, 'passiv@example.org: locked\n');
    assert.equal((await cli('mailbox', 'unlock', 'passiv@example.org')).out, 'passiv@example.org: passive\n');
    assert.equal((await listMailboxAudit(db.pool, 'passiv@example.org'))[0]?.actor, 'admin:erika');
    assert.equal((await findTokenByLink(db.pool, secrets.link, new Date())).kind, 'dead', 'revoked by the lock');
  });

  it('an unlock revokes a link made while the lock came (an arrival that read the mailbox before it)', async () => {
    const { mailbox } = await ensureMailbox(db.pool, 'rennen@example.org', keys);
    assert.equal(mailbox.state, 'passive');
    assert.equal((await cli('mailbox', 'lock', 'rennen@example.org')).out, 'rennen@example.org: locked\n');
    // The arrival's token, made for the mailbox as it read it (passive) after the lock had revoked the live ones.
    const { secrets } = await ensureActivationToken(db.pool, {
      mailbox,
      keys,
      now: new Date(),
      lifetimeMs: 24 * HOUR,
      pinDelayMs: HOUR,
    });
    assert.ok(secrets);
    assert.equal((await cli('mailbox', 'unlock', 'rennen@example.org')).out, 'rennen@example.org: passive\n');
    assert.equal((await findTokenByLink(db.pool, secrets.link, new Date())).kind, 'dead', 'revoked by the unlock');
  });

  it('resending activation revokes the old link and PIN and queues the new link mail once', async () => {
    const { mailbox, secrets } = await mailboxWithMessage('neu@example.org');
    assert.ok(secrets);
    const resent = await api('POST', '/mailboxes/neu%40example.org/resend-activation', {
      headers: { 'x-smgw-operator': 'ops' },
    });
    assert.equal(resent.status, 202);
    assert.equal(resent.body.linkMail, 'due');
    assert.ok(!JSON.stringify(resent.body).includes(secrets.pin));

    const now = new Date();
    assert.equal((await findTokenByLink(db.pool, secrets.link, now)).kind, 'dead');
    const view = await api('GET', '/mailboxes/neu%40example.org');
    assert.equal(view.body.activationToken.purpose, 'reactivation');
    assert.equal(view.body.audit[0].event, 'mailbox.activation-resent');
    assert.equal(view.body.audit[0].actor, 'admin:ops');

    // The mailbox service's sweep finds the link mail due (with the new secrets), sends it and marks it, once.
    const mailed = await withTransaction(db.pool, async (client) => {
      const due = await lockDueResentLinkMails(client, keys, now, 10);
      const mine = due.filter((d) => d.token.mailboxId === mailbox.id);
      assert.equal(mine.length, 1);
      const [first] = mine;
      assert.ok(first);
      await markResentLinkMailed(client, first, now);
      return first;
    });
    assert.notEqual(mailed.secrets.link, secrets.link);
    assert.equal((await findTokenByLink(db.pool, mailed.secrets.link, now)).kind, 'live');
    // The old PIN does not open the new link.
    assert.equal(await checkTokenPin(db.pool, mailed.token.id, secrets.pin, 5, now), 'wrong');
    await withTransaction(db.pool, async (client) => {
      const due = await lockDueResentLinkMails(client, keys, now, 10);
      assert.equal(due.filter((d) => d.token.mailboxId === mailbox.id).length, 0);
    });

    const out = await cli('mailbox', 'resend-activation', 'neu@example.org');
    assert.equal(out.code, 0);
    assert.match(out.out, /earlier links and PINs revoked/);
  });

  it('a resend to a mailbox with a password is a reset: its link lives SMGW_REACTIVATION_LINK_LIFETIME, not 14 days', async () => {
    await mailboxWithMessage('reset@example.org', { activated: true });
    await mailboxWithMessage('noch-passiv@example.org');
    const before = Date.now();
    const reset = await api('POST', '/mailboxes/reset%40example.org/resend-activation');
    const activation = await api('POST', '/mailboxes/noch-passiv%40example.org/resend-activation');
    const after = Date.now();
    assert.equal(reset.status, 202);
    assert.equal(activation.status, 202);
    const lifetime = (answer: typeof reset) => new Date(answer.body.expiresAt).getTime();
    // The defaults: 24 hours for a reset, 14 days for a mailbox never activated.
    assert.ok(lifetime(reset) >= before + 24 * HOUR && lifetime(reset) <= after + 24 * HOUR);
    assert.ok(lifetime(activation) >= before + 14 * 24 * HOUR && lifetime(activation) <= after + 14 * 24 * HOUR);
  });

  it('does not resend activation to a locked mailbox, nor without the master key or the key store', async () => {
    await mailboxWithMessage('gesperrt@example.org');
    await api('POST', '/mailboxes/gesperrt%40example.org/lock');
    const refused = await api('POST', '/mailboxes/gesperrt%40example.org/resend-activation');
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'MAILBOX_LOCKED');

    for (const missing of [{ masterKey: undefined }, { keyStoreDir: undefined }]) {
      const keyless = await testAdmin.startAnother(missing);
      const keylessApi = `http://127.0.0.1:${keyless.port}/api/v1`;
      const answer = await callAdminApi(keylessApi, TOKEN, 'POST', '/mailboxes/neu%40example.org/resend-activation');
      assert.equal(answer.status, 503, Object.keys(missing)[0]);
      assert.equal(answer.body.error.code, 'MASTER_KEY_MISSING');
      // Nor delete: the mailbox's key file would be left behind.
      const del = await callAdminApi(
        keylessApi,
        TOKEN,
        'DELETE',
        '/mailboxes/neu%40example.org?confirm=neu%40example.org',
      );
      assert.equal(del.status, 503, Object.keys(missing)[0]);
      assert.ok(await findMailbox(db.pool, 'neu@example.org'));
    }
  });

  it('deletes a mailbox only when its address is repeated in ?confirm=, recording who did it, then its key file', async () => {
    const { mailbox } = await mailboxWithMessage('weg@example.org', { activated: true });
    const sealedDataKey = mailbox.dataKeySealed;
    for (const query of ['', '?confirm=', '?confirm=andere%40example.org', '?confirm=weg']) {
      const refused = await api('DELETE', `/mailboxes/weg%40example.org${query}`);
      assert.equal(refused.status, 400, query);
      assert.equal(refused.body.error.code, 'CONFIRMATION_REQUIRED');
    }
    assert.ok(await findMailbox(db.pool, 'weg@example.org'));
    assert.equal(
      (
        await captureStderr(() =>
          runCli(['mailbox', 'delete', 'weg@example.org'], { SMGW_ADMIN_URL: base, SMGW_ADMIN_TOKEN: TOKEN }),
        )
      ).code,
      1,
    );

    const deleted = await api('DELETE', '/mailboxes/weg%40example.org?confirm=WEG%40example.org', {
      headers: { 'x-smgw-operator': 'ops' },
    });
    assert.equal(deleted.status, 200);
    assert.equal(deleted.body.messages, 1);
    assert.equal(await findMailbox(db.pool, 'weg@example.org'), undefined);
    const messages = await db.pool.query('select 1 from mailbox_messages where mailbox_id = $1', [mailbox.id]);
    assert.equal(messages.rowCount, 0);
    // The key file is gone too: the data key sealed under it (say, in an earlier dump) opens no more.
    assert.equal(await keys.get(mailbox.id), undefined);
    await assert.rejects(openMailboxKey(keys, { id: mailbox.id, dataKeySealed: sealedDataKey }), {
      code: 'MAILBOX_KEY_GONE',
    });
    const audit = await listMailboxAudit(db.pool, 'weg@example.org');
    assert.deepEqual(
      audit.map((e) => [e.event, e.actor]),
      [['mailbox.deleted', 'admin:ops']],
    );
    assert.equal((await api('GET', '/mailboxes/weg%40example.org')).status, 404);

    await mailboxWithMessage('weg2@example.org');
    const out = await cli('mailbox', 'delete', 'weg2@example.org', '--confirm', 'weg2@example.org');
    assert.equal(out.code, 0);
    assert.match(out.out, /deleted weg2@example\.org: 1 messages/);
  });

  it("deletes the certificate and OpenPGP key its owner uploaded on the portal with it, not an operator's", async () => {
    const address = 'schluessel@example.org';
    await mailboxWithMessage(address, { activated: true });
    const portalCertificate = await storedCertificate(address, 'portal', 10);
    const operatorsCertificate = await storedCertificate(address, 'admin', 5);
    const portalKey = await storedPgpKey(address, 'portal');
    const importedKey = await storedPgpKey(address, 'imported');

    const deleted = await api('DELETE', `/mailboxes/${address}?confirm=${address}`, {
      headers: { 'x-smgw-operator': 'ops' },
    });
    assert.equal(deleted.status, 200);
    assert.deepEqual(
      (await currentCertificates(db.pool, address)).map((c) => c.fingerprint),
      [operatorsCertificate],
    );
    const certificates = await db.pool.query('select fingerprint from certificates where addresses @> array[$1]', [
      address,
    ]);
    assert.deepEqual(
      certificates.rows.map((r) => r.fingerprint),
      [operatorsCertificate],
    );
    assert.deepEqual(
      (await pgpKeysFor(db.pool, address)).map((k) => k.fingerprint),
      [importedKey],
    );
    const audit = (await listMailboxAudit(db.pool, address)).find((e) => e.event === 'mailbox.deleted');
    assert.deepEqual(audit?.detail?.certificates, [portalCertificate]);
    assert.deepEqual(audit?.detail?.pgpKeys, [portalKey]);
  });

  /** A certificate row for `address` (its DER is not read here), valid from `daysAgo` days ago. */
  async function storedCertificate(address: string, source: CertificateSource, daysAgo: number): Promise<string> {
    const fingerprint = randomBytes(32).toString('hex');
    const notBefore = new Date(Date.now() - daysAgo * 24 * HOUR);
    await addCertificate(db.pool, {
      fingerprint,
      subject: `CN=${address}`,
      addresses: [address],
      issuer: 'CN=Test CA',
      serial: randomBytes(8).toString('hex'),
      notBefore,
      notAfter: new Date(notBefore.getTime() + 365 * 24 * HOUR),
      der: Buffer.from('not read here'),
      intermediates: [],
      smimeCapabilities: null,
      source,
      lastValidation: { ok: true },
    });
    return fingerprint;
  }

  async function storedPgpKey(address: string, source: PgpKeySource): Promise<string> {
    const fingerprint = randomBytes(20).toString('hex').toUpperCase();
    await addPgpKey(db.pool, {
      fingerprint,
      armored: 'not read here',
      addresses: [address],
      algorithm: 'eddsaLegacy',
      expiresAt: null,
      source,
    });
    return fingerprint;
  }

  it('marks an agency address reachable from the portal and lists it; refuses other agencies and non-booleans', async () => {
    const agency = await createAgency(db.pool, { name: 'Bürgeramt', domains: ['buergeramt.example'], now: new Date() });
    assert.equal(agency.kind, 'created');
    if (agency.kind !== 'created') return;
    await putAgencyAddress(db.pool, {
      agencyId: agency.id,
      address: 'info@buergeramt.example',
      verifySignatures: false,
    });
    const path = `/agencies/${agency.id}/addresses/info%40buergeramt.example/portal-reachable`;
    for (const reachable of ['yes', 1, null]) {
      assert.equal((await api('POST', path, json({ reachable }))).status, 400, String(reachable));
    }
    const set = await api('POST', path, json({ reachable: true }));
    assert.equal(set.status, 200);
    assert.deepEqual(set.body, { address: 'info@buergeramt.example', agencyId: agency.id, portalReachable: true });
    const listed = await api('GET', '/portal-reachable-addresses');
    assert.deepEqual(
      listed.body.addresses.map((a: { address: string }) => a.address),
      ['info@buergeramt.example'],
    );
    const other = await api(
      'POST',
      '/agencies/01ARZ3NDEKTSV4RRFFQ69G5FAV/addresses/info%40buergeramt.example/portal-reachable',
      json({ reachable: false }),
    );
    assert.equal(other.status, 404);
    const unknown = await api(
      'POST',
      `/agencies/${agency.id}/addresses/nobody%40buergeramt.example/portal-reachable`,
      json({ reachable: true }),
    );
    assert.equal(unknown.status, 404);

    const off = await cli('agency', 'portal-reachable', agency.id, 'info@buergeramt.example', 'off');
    assert.equal(off.out, 'info@buergeramt.example: not reachable from the portal\n');
    assert.equal((await cli('agency', 'portal-reachable', 'list')).out, 'no addresses are reachable from the portal\n');
    // The key directory's agency commands still work beside it.
    assert.match((await cli('agency', 'list')).out, /Bürgeramt/);
  });
});
