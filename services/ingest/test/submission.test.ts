// The submission listener against the real PostgreSQL, RabbitMQ and Redis: trusted networks, STARTTLS + AUTH,
// sender rules, and the split of internal and outbound recipients into two envelopes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { createSubmissionAccount, verifySubmissionLogin } from '@smgw/submission-accounts';
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
  });
  after(() => world.close());

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
    assert.deepEqual(internal?.itinerary, ['scan', 'deliver']);
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
    assert.deepEqual(account, { username: 'kanzlei@behoerde.example', senderDomains: ['behoerde.example'] });
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
