// Inactive portal mailboxes against the real PostgreSQL and RabbitMQ, at injected times: two warnings at the right
// times and only once (also with two reapers at once), a login cancels the deletion, the deletion leaves no row and
// no key (a dump taken before does not open with the master key), the senders of unread messages are told, and a
// new message makes a new mailbox.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { addCertificate, addPgpKey, currentCertificates, pgpKeysFor } from '@smgw/key-directory';
import {
  createFolderMailboxKeyStore,
  ensureMailbox,
  findMailbox,
  listInactivityWarnings,
  listMailboxAudit,
  openMailboxKey,
  readMailboxMessage,
  recordMailboxLogin,
} from '@smgw/mailbox-store';
import { openSecretWithAny } from '@smgw/secrets';
import { dumpHolds, dumpTestSchema, waitFor } from '@smgw/testing';
import { runSweeps, type SweepReport } from '../src/run-sweeps.ts';
import { DAY_MS, World } from './world.ts';

const count = (reports: SweepReport[], sweep: string) =>
  reports.filter((r) => r.sweep === sweep && r.outcome === 'done').reduce((sum, r) => sum + r.items, 0);

/** `days` after `from` (plus a minute, so a threshold of exactly that many days has passed). */
const after_ = (from: Date, days: number) => new Date(from.getTime() + days * DAY_MS + 60_000);

describe('inactivity of portal mailboxes', () => {
  let world: World;
  before(async () => {
    world = await World.create();
  });
  after(() => world.drop());

  const mailText = async (envelopeId: string) => {
    const sent = world.published.find((e) => e.id === envelopeId);
    assert.ok(sent, `notice ${envelopeId} was published`);
    return (await world.store.readAll(sent.blob.ref)).toString('utf8');
  };

  it('warns first after 180 days and again after 194, each once, even with two reapers at once; deletes after 208', async () => {
    const { mailbox } = await world.mailbox('schlaefer@buerger.example', [{ from: 'amt@behoerde.example', text: 'x' }]);
    const start = mailbox.createdAt;
    const round = (at: Date) => runSweeps(world.reaperDeps(), { now: at });

    assert.equal(count(await round(after_(start, 179)), 'first-warnings'), 0, 'not yet');
    const [a, b] = await Promise.all([round(after_(start, 180)), round(after_(start, 180))]);
    assert.equal(count([...a, ...b], 'first-warnings'), 1, 'one first warning between two reapers');
    assert.equal(count(await round(after_(start, 181)), 'first-warnings'), 0, 'never a second first warning');
    assert.equal(count(await round(after_(start, 193)), 'second-warnings'), 0, 'not yet');
    const [c, d] = await Promise.all([round(after_(start, 194)), round(after_(start, 194))]);
    assert.equal(count([...c, ...d], 'second-warnings'), 1, 'one second warning between two reapers');
    assert.equal(count(await round(after_(start, 207)), 'mailbox-deletions'), 0, 'not before the date it named');

    const warnings = await listInactivityWarnings(world.db.pool, mailbox.id);
    assert.deepEqual(
      warnings.map((w) => w.kind),
      ['first', 'second'],
    );
    // Named by the first warning (sent a minute after day 180: 28 days of notice) and kept by the second.
    const deletionDue = after_(start, 208);
    for (const w of warnings) assert.equal(w.deletionDueAt.getTime(), deletionDue.getTime());

    const audit = await listMailboxAudit(world.db.pool, mailbox.address);
    const noticeIds = audit.map((e) => e.detail?.noticeId as string);
    const first = await mailText(noticeIds[0] ?? '');
    assert.match(first, /To: schlaefer@buerger\.example/);
    assert.match(first, new RegExp(deletionDue.toISOString().slice(0, 10)), 'the first warning names the date');
    assert.match(first, /https:\/\/portal\.example\/anmelden/, 'and how to prevent it');
    assert.match(await mailText(noticeIds[1] ?? ''), /letzte Erinnerung|last reminder/);

    assert.equal(count(await round(after_(start, 208)), 'mailbox-deletions'), 1);
    assert.deepEqual(await world.mailboxRows(mailbox.id), { mailboxes: 0, messages: 0, tokens: 0, warnings: 0 });
    assert.deepEqual(
      (await listMailboxAudit(world.db.pool, mailbox.address)).map((e) => [e.event, e.actor]),
      [
        ['mailbox.warned', 'reaper'],
        ['mailbox.warned', 'reaper'],
        ['mailbox.deleted', 'reaper'],
      ],
    );
  });

  it('a warning sent late keeps the full notice before the deletion it names', async () => {
    const { mailbox } = await world.mailbox('spaet@buerger.example');
    // The reaper did not run for 200 days: the first warning still gives 28 days, the second 14 more.
    await runSweeps(world.reaperDeps(), { now: after_(mailbox.createdAt, 200) });
    const [first] = await listInactivityWarnings(world.db.pool, mailbox.id);
    assert.ok(first);
    assert.ok(first.deletionDueAt.getTime() >= first.sentAt.getTime() + 28 * DAY_MS);
    const at210 = await runSweeps(world.reaperDeps(), { now: after_(mailbox.createdAt, 210) });
    assert.equal(count(at210, 'second-warnings'), 0, 'the second waits as long after the first as the schedule says');
  });

  it('a login between the warnings cancels the deletion and starts a new period', async () => {
    const { mailbox } = await world.mailbox('zurueck@buerger.example');
    const start = mailbox.createdAt;
    await runSweeps(world.reaperDeps(), { now: after_(start, 181) });
    assert.equal((await listInactivityWarnings(world.db.pool, mailbox.id)).length, 1);
    await recordMailboxLogin(world.db.pool, mailbox.id, after_(start, 185));

    for (const day of [195, 209, 300]) {
      await runSweeps(world.reaperDeps(), { now: after_(start, day) });
      assert.equal((await listInactivityWarnings(world.db.pool, mailbox.id)).length, 1, `day ${day}`);
    }
    assert.ok(await findMailbox(world.db.pool, mailbox.address), 'still there');
    // The new period began with the login: its first warning comes 180 days after it.
    await runSweeps(world.reaperDeps(), { now: after_(start, 185 + 180) });
    const warnings = await listInactivityWarnings(world.db.pool, mailbox.id);
    assert.deepEqual(
      warnings.map((w) => [w.kind, w.periodStart.getTime()]),
      [
        ['first', start.getTime()],
        ['first', after_(start, 185).getTime()],
      ],
    );
  });

  it('keeps a mailbox whose newest message is younger than 30 days, and locked mailboxes', async () => {
    const { mailbox } = await world.mailbox('neu@buerger.example');
    const locked = await world.mailbox('gesperrt@buerger.example');
    await world.db.pool.query(`update mailboxes set state = 'locked' where id = $1`, [locked.mailbox.id]);
    const start = mailbox.createdAt;
    await runSweeps(world.reaperDeps(), { now: after_(start, 181) });
    await runSweeps(world.reaperDeps(), { now: after_(start, 195) });
    // A message arrives on day 200 (its received_at is what counts).
    await world.db.pool.query(
      `insert into mailbox_messages (id, mailbox_id, message_id, recipient, size, received_at, content)
       values (gen_random_uuid()::text, $1, 'late', $2, 1, $3, '\\x00')`,
      [mailbox.id, mailbox.address, after_(start, 200)],
    );
    assert.equal(count(await runSweeps(world.reaperDeps(), { now: after_(start, 209) }), 'mailbox-deletions'), 0);
    assert.equal(count(await runSweeps(world.reaperDeps(), { now: after_(start, 231) }), 'mailbox-deletions'), 1);
    assert.deepEqual(await listInactivityWarnings(world.db.pool, locked.mailbox.id), [], 'a locked one is held');
    assert.ok(await findMailbox(world.db.pool, locked.mailbox.address));
  });
});

describe('deleting an inactive mailbox', () => {
  let world: World;
  before(async () => {
    world = await World.create();
  });
  after(() => world.drop());

  it('removes every row and the key: a dump taken before opens neither with the master key nor with the files left', async () => {
    const marker = `GEHEIM-${Date.now()}`;
    const { mailbox } = await world.mailbox('weg@buerger.example', [{ from: 'amt@behoerde.example', text: marker }]);
    const [row] = (
      await world.db.pool.query('select id, content from mailbox_messages where mailbox_id = $1', [mailbox.id])
    ).rows;
    // Before: the row, the key file and the master key open it (so the test below can fail).
    const keyBefore = await openMailboxKey(world.mailboxKeys, mailbox);
    assert.match((await readMailboxMessage(world.db.pool, mailbox.id, keyBefore, row.id))?.toString() ?? '', /GEHEIM/);
    keyBefore.fill(0);

    const dump = await dumpTestSchema(world.db);
    assert.ok(!dumpHolds(dump, marker), 'no plaintext in the dump');
    assert.ok(dump.includes(mailbox.dataKeySealed.toString('hex')), 'the dump holds the sealed data key');

    const start = mailbox.createdAt;
    for (const day of [181, 195, 209]) await runSweeps(world.reaperDeps(), { now: after_(start, day) });
    assert.deepEqual(await world.mailboxRows(mailbox.id), { mailboxes: 0, messages: 0, tokens: 0, warnings: 0 });
    assert.deepEqual(await world.mailboxKeys.list(), [], 'the key is gone from the key store');

    // What the dump holds (the sealed data key and the ciphertext) with the master key and the key store as left:
    const fromDump = { id: mailbox.id, dataKeySealed: mailbox.dataKeySealed };
    const again = createFolderMailboxKeyStore(world.db.keys);
    await assert.rejects(openMailboxKey(again, fromDump), { code: 'MAILBOX_KEY_GONE' });
    assert.throws(
      () =>
        openSecretWithAny([world.db.keys.masterKey], mailbox.dataKeySealed, { aad: `smgw-mailbox-key\0${mailbox.id}` }),
      { code: 'SECRET_WRONG_MASTER_KEY' },
      'the master key alone does not open the data key',
    );
  });

  it('tells each sender of unread inbox messages once, never the content; read messages and the null sender not', async () => {
    const marker = `INHALT-${Date.now()}`;
    const { mailbox, messageIds } = await world.mailbox('ungelesen@buerger.example', [
      { from: 'Amt@Behoerde.example', text: marker },
      { from: 'amt@behoerde.example', text: marker },
      { from: 'gelesen@behoerde.example', text: marker, read: true },
      { from: '', text: marker },
    ]);
    const before = world.published.length;
    const start = mailbox.createdAt;
    for (const day of [181, 195, 209]) await runSweeps(world.reaperDeps(), { now: after_(start, day) });
    const notices = world.published.slice(before).filter((e) => e.recipients[0] !== mailbox.address);
    assert.deepEqual(
      notices.map((e) => e.recipients),
      [['amt@behoerde.example']],
    );
    const text = (await world.store.readAll(notices[0]?.blob.ref ?? '')).toString('utf8');
    assert.ok(text.includes(messageIds[0] ?? '?') && text.includes(messageIds[1] ?? '?'), 'both unread listed');
    assert.ok(!text.includes(marker), 'nothing of the content');
    assert.match(text, /ungelesen@buerger\.example/);
    const deleted = (await listMailboxAudit(world.db.pool, mailbox.address)).find((e) => e.event === 'mailbox.deleted');
    assert.equal(deleted?.detail?.sendersTold, 1);
    // The broker has them: deliver's queue holds every notice published in this suite.
    await waitFor("every published notice in deliver's queue", async () => {
      return (await world.vhost.queueDepth('smgw.deliver')) === world.published.length;
    });
  });

  it('deletes the certificate and OpenPGP key its owner uploaded on the portal, and keeps a harvested certificate', async () => {
    const { mailbox } = await world.mailbox('mitschluessel@buerger.example');
    const address = mailbox.address;
    const certificate = (source: 'portal' | 'harvested', daysAgo: number) => {
      const fingerprint = randomBytes(32).toString('hex');
      const notBefore = new Date(Date.now() - daysAgo * DAY_MS);
      return addCertificate(world.db.pool, {
        fingerprint,
        subject: `CN=${address}`,
        addresses: [address],
        issuer: 'CN=Test CA',
        serial: randomBytes(8).toString('hex'),
        notBefore,
        notAfter: new Date(notBefore.getTime() + 400 * DAY_MS),
        der: Buffer.from('not read here'),
        intermediates: [],
        smimeCapabilities: null,
        source,
        lastValidation: { ok: true },
      }).then(() => fingerprint);
    };
    const uploaded = await certificate('portal', 10);
    const harvested = await certificate('harvested', 5);
    const pgpKey = randomBytes(20).toString('hex').toUpperCase();
    await addPgpKey(world.db.pool, {
      fingerprint: pgpKey,
      armored: 'not read here',
      addresses: [address],
      algorithm: 'eddsaLegacy',
      expiresAt: null,
      source: 'portal',
    });

    for (const day of [181, 195, 209]) await runSweeps(world.reaperDeps(), { now: after_(mailbox.createdAt, day) });
    assert.equal(await findMailbox(world.db.pool, address), undefined);
    const left = await world.db.pool.query('select fingerprint from certificates where addresses @> array[$1]', [
      address,
    ]);
    assert.deepEqual(
      left.rows.map((r) => r.fingerprint),
      [harvested],
    );
    assert.deepEqual(
      (await currentCertificates(world.db.pool, address)).map((c) => c.fingerprint),
      [harvested],
    );
    assert.deepEqual(await pgpKeysFor(world.db.pool, address), []);
    const deleted = (await listMailboxAudit(world.db.pool, address)).find((e) => e.event === 'mailbox.deleted');
    assert.deepEqual(deleted?.detail?.certificates, [uploaded]);
    assert.deepEqual(deleted?.detail?.pgpKeys, [pgpKey]);
  });

  it('a new message after the deletion makes a new mailbox with a new key', async () => {
    const { mailbox } = await world.mailbox('wieder@buerger.example');
    for (const day of [181, 195, 209]) await runSweeps(world.reaperDeps(), { now: after_(mailbox.createdAt, day) });
    assert.equal(await findMailbox(world.db.pool, mailbox.address), undefined);
    const again = await ensureMailbox(world.db.pool, mailbox.address, world.mailboxKeys);
    assert.equal(again.created, true);
    assert.notEqual(again.mailbox.id, mailbox.id);
    assert.equal(again.mailbox.state, 'passive');
    assert.equal((await openMailboxKey(world.mailboxKeys, again.mailbox)).length, 32);
  });
});
