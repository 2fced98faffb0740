// The submission listener against the real PostgreSQL, RabbitMQ and Redis: trusted networks, STARTTLS + AUTH,
// sender rules, and the split of internal and outbound recipients into two envelopes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { splitHeaderBlock } from '@smgw/mime';
import {
  createSubmissionAccount,
  deleteSubmissionAccount,
  setSubmissionAccountDisabled,
  setSubmissionPassword,
  setSubmissionSenderRights,
  verifySubmissionLogin,
} from '@smgw/submission-accounts';
import { assertQueued } from '@smgw/testing';
import { getTrace } from '@smgw/trace';
import type { RunningIngest } from '../src/service.ts';
import { createTestWorld, type TestWorld } from './harness.ts';
import { SmtpTestClient } from './smtp-client.ts';

const plain = (user: string, password: string) => Buffer.from(`\u0000${user}\u0000${password}`).toString('base64');
const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('the submission listener', () => {
  let world: TestWorld;
  /** 127.0.0.1 is in SMGW_SUBMISSION_NETWORKS (the default 127.0.0.0/8). */
  let trusted: RunningIngest;
  /** 127.0.0.1 is not: clients must STARTTLS and AUTH. */
  let untrusted: RunningIngest;

  before(async () => {
    world = await createTestWorld();
    ({ ingest: trusted } = await world.start());
    ({ ingest: untrusted } = await world.start({ SMGW_SUBMISSION_NETWORKS: '10.0.0.0/8' }));
    await createSubmissionAccount(world.db.pool, {
      username: 'Kanzlei@Behoerde.example',
      password: 'a long enough secret',
      senderDomains: ['behoerde.example'],
    });
    // Owns two addresses and no domain: may send as those and nothing else.
    await createSubmissionAccount(world.db.pool, {
      username: 'anna@behoerde.example',
      password: 'another long secret',
      senderAddresses: ['anna@behoerde.example', 'poststelle@behoerde.example'],
    });
  });
  after(() => world.close());

  const countRows = async (table: 'messages' | 'blobs') =>
    Number((await world.db.pool.query(`select count(*) from ${table}`)).rows[0].count);

  /** A TLS session logged in as anna@behoerde.example. */
  async function annaSession() {
    const client = await tlsSession();
    const auth = await client.command(`AUTH PLAIN ${plain('anna@behoerde.example', 'another long secret')}`);
    assert.equal(auth.code, 235, auth.text);
    return client;
  }

  async function session(ingest: RunningIngest) {
    const { client, greeting } = await SmtpTestClient.open(ingest.submissionPort);
    assert.equal(greeting.code, 220);
    assert.equal((await client.command('EHLO agency.example')).code, 250);
    return client;
  }

  async function tlsSession() {
    const client = await session(untrusted);
    assert.equal((await client.startTls()).code, 220);
    const ehlo = await client.command('EHLO agency.example');
    assert.ok(
      ehlo.lines.some((line) => line.slice(4) === 'AUTH PLAIN LOGIN'),
      ehlo.text,
    );
    return client;
  }

  it('takes mail from a trusted network to an outside address and queues it for encrypt, direction outbound', async () => {
    const client = await session(trusted);
    const reply = await client.sendMail({
      from: 'clerk@behoerde.example',
      to: ['citizen@mail.example'],
      body: 'Subject: Bescheid\r\n\r\nHallo\r\n',
    });
    await client.quit();
    const id = assertQueued(reply.final?.text);
    const [envelope, ...more] = await world.takeEnvelopes('smgw.scan');
    assert.equal(more.length, 0);
    assert.equal(envelope?.id, id);
    assert.equal(envelope?.direction, 'outbound');
    assert.deepEqual(envelope?.itinerary, ['scan', 'encrypt', 'deliver']);
    assert.deepEqual(envelope?.recipients, ['citizen@mail.example']);
    assert.deepEqual(envelope?.client, { listener: 'submission', ip: '127.0.0.1', helo: 'agency.example', tls: false });
    assert.deepEqual(await world.takeEnvelopes('smgw.deliver'), []);
    assert.deepEqual(await world.takeEnvelopes('smgw.encrypt'), []);
  });

  it('publishes mixed recipients as two envelopes with the same id, both to scan, internal then to deliver and outbound to encrypt', async () => {
    const client = await session(trusted);
    const reply = await client.sendMail({
      from: 'clerk@behoerde.example',
      to: ['citizen@mail.example', 'colleague@amt.sachsen.example', 'other@web.example'],
      body: 'Subject: cc\r\n\r\nx\r\n',
    });
    await client.quit();
    const id = assertQueued(reply.final?.text);
    const scanned = await world.takeEnvelopes('smgw.scan');
    assert.equal(scanned.length, 2);
    const internal = scanned.find((e) => e.direction === 'internal');
    const outbound = scanned.find((e) => e.direction === 'outbound');
    assert.equal(internal?.id, id);
    assert.equal(outbound?.id, id);
    assert.equal(internal?.direction, 'internal');
    assert.deepEqual(internal?.itinerary, ['scan', 'verify', 'deliver']);
    assert.deepEqual(outbound?.itinerary, ['scan', 'encrypt', 'deliver']);
    assert.deepEqual(internal?.recipients, ['colleague@amt.sachsen.example']);
    assert.equal(outbound?.direction, 'outbound');
    assert.deepEqual(outbound?.recipients, ['citizen@mail.example', 'other@web.example']);
    assert.deepEqual(internal?.blob, outbound?.blob);
    const trace = await getTrace(world.db.pool, id);
    assert.deepEqual(trace?.recipients.map((r) => r.address).sort(), [
      'citizen@mail.example',
      'colleague@amt.sachsen.example',
      'other@web.example',
    ]);
  });

  it('refuses a sender outside the agency domains with 550 5.7.1', async () => {
    const client = await session(trusted);
    assert.equal(
      (await client.command('MAIL FROM:<someone@gmail.example>')).text,
      '550 5.7.1 Sender address not allowed',
    );
    assert.equal((await client.command('MAIL FROM:<>')).text, '550 5.7.1 Sender address not allowed');
    await client.quit();
  });

  it('refuses a sender or recipient over 254 octets with 501 Path too long (RFC 5321 §4.5.3.1.3)', async () => {
    const client = await session(trusted);
    // 121 two-octet letters: some 140 characters, which smtp-server's own check (253 characters) lets through.
    const wideSender = `${'ü'.repeat(121)}@behoerde.example`;
    assert.equal((await client.command(`MAIL FROM:<${wideSender}>`)).text, '501 5.1.7 Path too long');
    assert.equal((await client.command('MAIL FROM:<clerk@behoerde.example>')).code, 250);
    const wide = `${'ü'.repeat(121)}@mail.example`;
    assert.equal((await client.command(`RCPT TO:<${wide}>`)).text, '501 5.1.3 Path too long');
    assert.equal((await client.command('DATA')).code, 503);
    await client.quit();
    assert.deepEqual(await world.takeEnvelopes('smgw.scan'), []);
  });

  it('answers 530 5.7.0 to MAIL FROM from an untrusted address that did not authenticate', async () => {
    const client = await session(untrusted);
    assert.equal(
      (await client.command('MAIL FROM:<clerk@behoerde.example>')).text,
      '530 5.7.0 Authentication required',
    );
    await client.quit();
  });

  it('neither offers nor takes AUTH before STARTTLS', async () => {
    const { client } = await SmtpTestClient.open(untrusted.submissionPort);
    const ehlo = await client.command('EHLO agency.example');
    assert.ok(!ehlo.lines.some((line) => line.slice(4).startsWith('AUTH')), ehlo.text);
    assert.ok(
      ehlo.lines.some((line) => line.slice(4) === 'STARTTLS'),
      ehlo.text,
    );
    const reply = await client.command(`AUTH PLAIN ${plain('kanzlei@behoerde.example', 'a long enough secret')}`);
    assert.equal(reply.code, 500);
    assert.equal((await client.command('MAIL FROM:<clerk@behoerde.example>')).code, 530);
    await client.quit();
  });

  it('takes mail after STARTTLS and AUTH PLAIN with a created account (Received says ESMTPSA)', async () => {
    const client = await tlsSession();
    const auth = await client.command(`AUTH PLAIN ${plain('kanzlei@behoerde.example', 'a long enough secret')}`);
    assert.equal(auth.code, 235, auth.text);
    const reply = await client.sendMail({
      from: 'clerk@behoerde.example',
      to: ['citizen@mail.example'],
      body: 'Subject: x\r\n\r\ny\r\n',
    });
    await client.quit();
    assertQueued(reply.final?.text);
    const [envelope] = await world.takeEnvelopes('smgw.scan');
    assert.deepEqual(envelope?.client, {
      listener: 'submission',
      ip: '127.0.0.1',
      helo: 'agency.example',
      tls: true,
      user: 'kanzlei@behoerde.example',
    });
    const stored = (
      await createBlobStore(world.db.pool, { keyStore: createFolderKeyStore(world.db.keys) }).readAll(
        envelope?.blob.ref ?? '',
      )
    ).toString('latin1');
    assert.match(
      stored,
      /^Received: from agency\.example \(\[127\.0\.0\.1\]\)\r\n\tby smgw\.test with ESMTPSA \(TLSv1\.[23]:/,
    );
  });

  it('takes AUTH LOGIN too', async () => {
    const client = await tlsSession();
    assert.equal((await client.command('AUTH LOGIN')).code, 334);
    assert.equal((await client.command(b64('kanzlei@behoerde.example'))).code, 334);
    assert.equal((await client.command(b64('a long enough secret'))).code, 235);
    await client.quit();
  });

  it('lets an account send only from its own sender domains', async () => {
    const client = await tlsSession();
    await client.command(`AUTH PLAIN ${plain('kanzlei@behoerde.example', 'a long enough secret')}`);
    assert.equal(
      (await client.command('MAIL FROM:<x@amt.sachsen.example>')).text,
      '550 5.7.1 Sender address not allowed',
    );
    assert.equal((await client.command('MAIL FROM:<x@behoerde.example>')).code, 250);
    await client.quit();
  });

  it('lets an account that owns addresses send as those only, at MAIL FROM', async () => {
    const client = await annaSession();
    assert.equal(
      (await client.command('MAIL FROM:<chefin@behoerde.example>')).text,
      '550 5.7.1 Sender address not allowed',
    );
    assert.equal((await client.command('MAIL FROM:<Poststelle@Behoerde.example>')).code, 250);
    await client.quit();
  });

  const refusedFroms: Array<[string, string]> = [
    ['an address it does not own', 'From: Chefin <chefin@behoerde.example>'],
    ['two addresses, one of them foreign', 'From: anna@behoerde.example, chefin@behoerde.example'],
    ['a display name that looks like an owned address', 'From: "anna@behoerde.example" <chefin@behoerde.example>'],
    ['an owned From with a foreign Sender', 'From: anna@behoerde.example\r\nSender: chefin@behoerde.example'],
    ['a foreign address whose colon is on a folded line', 'From\r\n : chefin@behoerde.example'],
  ];
  for (const [name, from] of refusedFroms) {
    it(`refuses a From header with ${name} with 550 5.7.1 after DATA, and stores and publishes nothing`, async () => {
      const [messages, blobs] = [await countRows('messages'), await countRows('blobs')];
      const client = await annaSession();
      const reply = await client.sendMail({
        from: 'anna@behoerde.example',
        to: ['citizen@mail.example'],
        body: `${from}\r\nSubject: im Namen der Chefin\r\n\r\nAnweisung\r\n`,
      });
      assert.equal(reply.final?.text, '550 5.7.1 From or Sender address not allowed for this sender');
      // The session goes on: the next message, From an owned address, is taken.
      const next = await client.sendMail({
        from: 'anna@behoerde.example',
        to: ['citizen@mail.example'],
        body: 'From: anna@behoerde.example\r\nSubject: ok\r\n\r\nx\r\n',
      });
      await client.quit();
      const id = assertQueued(next.final?.text);
      assert.deepEqual(
        (await world.takeEnvelopes('smgw.scan')).map((e) => e.id),
        [id],
      );
      assert.equal(await countRows('messages'), messages + 1);
      assert.equal(await countRows('blobs'), blobs + 1);
    });
  }

  it('holds a trusted network without AUTH to the agency domains in From too', async () => {
    const client = await session(trusted);
    const outside = await client.sendMail({
      from: 'clerk@behoerde.example',
      to: ['citizen@mail.example'],
      body: 'From: Bank <service@bank.example>\r\nSubject: x\r\n\r\ny\r\n',
    });
    assert.equal(outside.final?.text, '550 5.7.1 From or Sender address not allowed for this sender');
    const agency = await client.sendMail({
      from: 'clerk@behoerde.example',
      to: ['citizen@mail.example'],
      body: 'From: Landratsamt <Amt@LRA.Sachsen.example>\r\nSubject: x\r\n\r\ny\r\n',
    });
    await client.quit();
    assertQueued(agency.final?.text);
    const [envelope] = await world.takeEnvelopes('smgw.scan');
    assert.equal(envelope?.author, 'amt@lra.sachsen.example');
  });

  it('names the From address as author in every envelope, removes Bcc from what it stores, and says so in the trace', async () => {
    const client = await annaSession();
    const reply = await client.sendMail({
      from: 'anna@behoerde.example',
      to: ['citizen@mail.example', 'geheim@web.example', 'kollege@behoerde.example'],
      body: [
        'From: Poststelle <poststelle@behoerde.example>',
        'To: citizen@mail.example',
        'Bcc: geheim@web.example,',
        ' kollege@behoerde.example',
        'Subject: Bescheid',
        '',
        'Bcc: a body line stays',
        '',
      ].join('\r\n'),
    });
    await client.quit();
    const id = assertQueued(reply.final?.text);
    const envelopes = await world.takeEnvelopes('smgw.scan');
    assert.deepEqual(
      envelopes.map((e) => [e.direction, e.author]),
      [
        ['internal', 'poststelle@behoerde.example'],
        ['outbound', 'poststelle@behoerde.example'],
      ],
    );
    const stored = (
      await createBlobStore(world.db.pool, { keyStore: createFolderKeyStore(world.db.keys) }).readAll(
        envelopes[0]?.blob.ref ?? '',
      )
    ).toString('latin1');
    assert.doesNotMatch(stored.split('\r\n\r\n')[0] ?? '', /bcc|geheim@web\.example/i);
    assert.match(stored, /\r\n\r\nBcc: a body line stays\r\n$/);
    const received = (await getTrace(world.db.pool, id))?.events.find((e) => e.event === 'message.received');
    assert.equal((received?.data as { removedBcc?: number } | undefined)?.removedBcc, 1);
  });

  it('keeps the client from writing into its Received field (a header block that starts with a folded line)', async () => {
    const client = await annaSession();
    const reply = await client.sendMail({
      from: 'anna@behoerde.example',
      to: ['citizen@mail.example'],
      body: '\tfrom chefin.behoerde.example ([10.1.1.1]) (authenticated as chefin@behoerde.example)\r\nFrom: anna@behoerde.example\r\nSubject: x\r\n\r\nbody\r\n',
    });
    await client.quit();
    assertQueued(reply.final?.text);
    const [envelope] = await world.takeEnvelopes('smgw.scan');
    const stored = await createBlobStore(world.db.pool, { keyStore: createFolderKeyStore(world.db.keys) }).readAll(
      envelope?.blob.ref ?? '',
    );
    const { fields } = splitHeaderBlock(stored);
    assert.deepEqual(
      fields.map((f) => f.key),
      ['received', 'from', 'subject'],
    );
    assert.doesNotMatch(fields[0]?.value ?? '', /chefin|authenticated as/);
  });

  it('takes the envelope sender as author of a message without From', async () => {
    const client = await annaSession();
    const reply = await client.sendMail({
      from: 'anna@behoerde.example',
      to: ['citizen@mail.example'],
      body: 'Subject: ohne From\r\n\r\nx\r\n',
    });
    await client.quit();
    assertQueued(reply.final?.text);
    const [envelope] = await world.takeEnvelopes('smgw.scan');
    assert.equal(envelope?.author, 'anna@behoerde.example');
  });

  /** A TLS session logged in as a new account that owns `addresses`. */
  async function newAccountSession(username: string, addresses: string[]) {
    await createSubmissionAccount(world.db.pool, {
      username,
      password: 'a fresh long secret',
      senderAddresses: addresses,
    });
    const client = await tlsSession();
    const auth = await client.command(`AUTH PLAIN ${plain(username, 'a fresh long secret')}`);
    assert.equal(auth.code, 235, auth.text);
    return client;
  }

  const message = (from: string) => ({
    from,
    to: ['citizen@mail.example'],
    body: `From: ${from}\r\nSubject: x\r\n\r\ny\r\n`,
  });

  it('refuses the next MAIL FROM of an open session once its account is disabled, and takes no AUTH for it', async () => {
    const client = await newAccountSession('bernd@behoerde.example', ['bernd@behoerde.example']);
    assertQueued((await client.sendMail(message('bernd@behoerde.example'))).final?.text);
    assert.equal((await world.takeEnvelopes('smgw.scan')).length, 1);
    const messagesBefore = await countRows('messages');
    assert.ok(await setSubmissionAccountDisabled(world.db.pool, 'bernd@behoerde.example', true));
    // RSET and NOOP keep a session open; neither keeps the account alive.
    assert.equal((await client.command('RSET')).code, 250);
    assert.equal((await client.command('NOOP')).code, 250);
    const refused = await client.sendMail(message('bernd@behoerde.example'));
    assert.equal(refused.mail.text, '530 5.7.0 Authentication required');
    assert.equal((await client.command('RCPT TO:<citizen@mail.example>')).code, 503);
    // The session has to log in again, which a disabled account cannot.
    const again = await client.command(`AUTH PLAIN ${plain('bernd@behoerde.example', 'a fresh long secret')}`);
    assert.equal(again.code, 535, again.text);
    assert.equal((await client.command('MAIL FROM:<bernd@behoerde.example>')).code, 530);
    await client.quit();
    assert.equal(await countRows('messages'), messagesBefore);
    assert.deepEqual(await world.takeEnvelopes('smgw.scan'), []);
  });

  it('refuses the next MAIL FROM of an open session once its password was changed', async () => {
    const client = await newAccountSession('clara@behoerde.example', ['clara@behoerde.example']);
    assert.equal((await client.command('MAIL FROM:<clara@behoerde.example>')).code, 250);
    assert.equal((await client.command('RSET')).code, 250);
    assert.ok(await setSubmissionPassword(world.db.pool, 'clara@behoerde.example', 'the new long secret'));
    assert.equal(
      (await client.command('MAIL FROM:<clara@behoerde.example>')).text,
      '530 5.7.0 Authentication required',
    );
    const again = await client.command(`AUTH PLAIN ${plain('clara@behoerde.example', 'the new long secret')}`);
    assert.equal(again.code, 235, again.text);
    assert.equal((await client.command('MAIL FROM:<clara@behoerde.example>')).code, 250);
    await client.quit();
  });

  it('holds an open session to the rights its account has now, at MAIL FROM and in From', async () => {
    const client = await newAccountSession('dora@behoerde.example', ['dora@behoerde.example', 'amt@behoerde.example']);
    assertQueued((await client.sendMail(message('amt@behoerde.example'))).final?.text);
    assert.equal((await world.takeEnvelopes('smgw.scan')).length, 1);
    await world.db.pool.query(
      `update submission_accounts set sender_addresses = '{dora@behoerde.example}' where username = $1`,
      ['dora@behoerde.example'],
    );
    const refused = await client.sendMail(message('amt@behoerde.example'));
    assert.equal(refused.mail.text, '550 5.7.1 Sender address not allowed');
    // The header author check of the next message uses the fresh rights too.
    const fromRefused = await client.sendMail({ ...message('amt@behoerde.example'), from: 'dora@behoerde.example' });
    assert.equal(fromRefused.final?.text, '550 5.7.1 From or Sender address not allowed for this sender');
    assertQueued((await client.sendMail(message('dora@behoerde.example'))).final?.text);
    await client.quit();
    assert.equal((await world.takeEnvelopes('smgw.scan')).length, 1);
  });

  it('refuses the next MAIL FROM of an open session once its account is deleted, even after one of that name is made again', async () => {
    const client = await newAccountSession('fritz@behoerde.example', ['fritz@behoerde.example']);
    const other = await tlsSession();
    assert.equal(
      (await other.command(`AUTH PLAIN ${plain('fritz@behoerde.example', 'a fresh long secret')}`)).code,
      235,
    );
    assertQueued((await client.sendMail(message('fritz@behoerde.example'))).final?.text);
    assert.equal((await world.takeEnvelopes('smgw.scan')).length, 1);
    const deleted = await deleteSubmissionAccount(world.db.pool, 'Fritz@Behoerde.example');
    assert.equal(deleted?.username, 'fritz@behoerde.example');
    assert.equal(
      (await client.sendMail(message('fritz@behoerde.example'))).mail.text,
      '530 5.7.0 Authentication required',
    );
    // The same name and password again before the other session's next MAIL FROM: a new account, not that session's.
    await createSubmissionAccount(world.db.pool, {
      username: 'fritz@behoerde.example',
      password: 'a fresh long secret',
      senderAddresses: ['fritz@behoerde.example'],
    });
    assert.equal((await other.command('MAIL FROM:<fritz@behoerde.example>')).code, 530);
    await Promise.all([client.quit(), other.quit()]);
    assert.deepEqual(await world.takeEnvelopes('smgw.scan'), []);
    assert.equal(await deleteSubmissionAccount(world.db.pool, 'nobody@behoerde.example'), undefined);
  });

  it('sends by the addresses an operator gave the account from the next MAIL FROM of an open session on', async () => {
    const client = await newAccountSession('gerda@behoerde.example', ['gerda@behoerde.example']);
    assert.equal((await client.command('MAIL FROM:<amt@behoerde.example>')).code, 550);
    const changed = await setSubmissionSenderRights(world.db.pool, 'gerda@behoerde.example', {
      senderAddresses: ['Amt@Behoerde.example'],
      senderDomains: [],
    });
    assert.deepEqual(changed?.senderAddresses, ['amt@behoerde.example']);
    assertQueued((await client.sendMail(message('amt@behoerde.example'))).final?.text);
    const refused = await client.sendMail(message('gerda@behoerde.example'));
    assert.equal(refused.mail.text, '550 5.7.1 Sender address not allowed');
    await client.quit();
    assert.equal((await world.takeEnvelopes('smgw.scan')).length, 1);
  });

  it('answers 454 when the account cannot be read again at MAIL FROM, and goes on once it can', async () => {
    const client = await newAccountSession('emil@behoerde.example', ['emil@behoerde.example']);
    await world.db.pool.query('alter table submission_accounts rename to submission_accounts_away');
    let reply: Awaited<ReturnType<typeof client.command>>;
    try {
      reply = await client.command('MAIL FROM:<emil@behoerde.example>');
    } finally {
      await world.db.pool.query('alter table submission_accounts_away rename to submission_accounts');
    }
    assert.equal(reply.text, '454 4.7.0 Temporary authentication failure, try again later');
    assert.equal((await client.command('MAIL FROM:<emil@behoerde.example>')).code, 250);
    await client.quit();
  });

  it('answers a wrong password with 535 5.7.8', async () => {
    const client = await tlsSession();
    const reply = await client.command(`AUTH PLAIN ${plain('kanzlei@behoerde.example', 'wrong password!')}`);
    assert.equal(reply.text, '535 5.7.8 Authentication credentials invalid');
    assert.equal((await client.command(`AUTH PLAIN ${plain('nobody@behoerde.example', 'whatever else')}`)).code, 535);
    assert.equal((await client.command('MAIL FROM:<clerk@behoerde.example>')).code, 530);
    await client.quit();
  });

  it('refuses AUTH for a while after too many failures from one address, even with the right password', async () => {
    const client = await tlsSession();
    // Five failures per address and window (AUTH_FAILURE_LIMIT); earlier tests may have used some of them.
    let failures = 0;
    for (;;) {
      const reply = await client.command(`AUTH PLAIN ${plain('kanzlei@behoerde.example', `guess ${failures}`)}`);
      if (reply.code === 454) break;
      assert.equal(reply.code, 535);
      failures++;
      assert.ok(failures <= 5, 'still taking guesses after five failures');
    }
    const blocked = await client.command(`AUTH PLAIN ${plain('kanzlei@behoerde.example', 'a long enough secret')}`);
    assert.equal(blocked.text, '454 4.7.0 Too many failed authentication attempts, try again later');
    await client.quit();
  });

  it('verifies and refuses logins directly, as the admin service would use them', async () => {
    const account = await verifySubmissionLogin(world.db.pool, {
      username: ' KANZLEI@behoerde.example ',
      password: 'a long enough secret',
    });
    assert.deepEqual(account, {
      username: 'kanzlei@behoerde.example',
      senderAddresses: [],
      senderDomains: ['behoerde.example'],
      passwordStamp: account?.passwordStamp,
    });
    assert.match(account?.passwordStamp ?? '', /^[\w-]{22}$/);
    assert.equal(
      await verifySubmissionLogin(world.db.pool, { username: 'kanzlei@behoerde.example', password: 'nope' }),
      undefined,
    );
    await assert.rejects(
      createSubmissionAccount(world.db.pool, {
        username: 'kanzlei@behoerde.example',
        password: 'another long secret',
        senderDomains: ['behoerde.example'],
      }),
      { code: 'SUBMISSION_ACCOUNT_EXISTS' },
    );
    await assert.rejects(
      createSubmissionAccount(world.db.pool, { username: 'x', password: 'short', senderDomains: ['behoerde.example'] }),
      { code: 'SUBMISSION_ACCOUNT_INVALID' },
    );
    const stored = await world.db.pool.query('select password_hash from submission_accounts');
    assert.match(stored.rows[0].password_hash, /^\$argon2id\$v=19\$/);
  });
});

describe('AUTH guesses sent in parallel', () => {
  let world: TestWorld;
  let ingest: RunningIngest;

  before(async () => {
    world = await createTestWorld();
    ({ ingest } = await world.start({ SMGW_SUBMISSION_NETWORKS: '10.0.0.0/8' }));
    await createSubmissionAccount(world.db.pool, {
      username: 'kanzlei@behoerde.example',
      password: 'a long enough secret',
      senderDomains: ['behoerde.example'],
    });
  });
  after(() => world.close());

  it('checks at most five passwords of one client however many arrive at once, and a success erases none', async () => {
    // Each guess on a connection of its own, all AUTH commands sent together: every one passed the old check before
    // the first (slow, argon2) verification had counted.
    const clients = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const { client } = await SmtpTestClient.open(ingest.submissionPort);
        assert.equal((await client.command('EHLO agency.example')).code, 250);
        assert.equal((await client.startTls()).code, 220);
        assert.equal((await client.command('EHLO agency.example')).code, 250);
        return client;
      }),
    );
    const replies = await Promise.all(
      clients.map((client, i) =>
        client.command(
          `AUTH PLAIN ${plain('kanzlei@behoerde.example', i === 11 ? 'a long enough secret' : `guess ${i}`)}`,
        ),
      ),
    );
    await Promise.all(clients.map((client) => client.quit()));
    const checked = replies.filter((r) => r.code === 535 || r.code === 235).length;
    assert.ok(checked <= 5, `${checked} passwords checked: ${replies.map((r) => r.code).join(' ')}`);
    assert.ok(
      replies.every((r) => [235, 535, 454].includes(r.code)),
      replies.map((r) => r.text).join('\n'),
    );
    // Whatever the order: once five guesses failed, the right password is refused too.
    const { client } = await SmtpTestClient.open(ingest.submissionPort);
    await client.command('EHLO agency.example');
    await client.startTls();
    await client.command('EHLO agency.example');
    for (let i = replies.filter((r) => r.code === 535).length; i < 5; i++) {
      assert.equal((await client.command(`AUTH PLAIN ${plain('kanzlei@behoerde.example', `more ${i}`)}`)).code, 535);
    }
    const last = await client.command(`AUTH PLAIN ${plain('kanzlei@behoerde.example', 'a long enough secret')}`);
    assert.equal(last.code, 454, last.text);
    await client.quit();
  });
});
