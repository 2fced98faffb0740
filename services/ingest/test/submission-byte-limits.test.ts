// Bytes per hour on the submission listener, against the real PostgreSQL, RabbitMQ and Redis: a stolen account (or a
// compromised client of a trusted network) cannot push gigabytes through the queues, the blob store and the relay,
// nor fill a citizen's portal mailbox with a few large messages, within the messages and recipients it may send.
// Counted at the end of DATA (the real size); a MAIL FROM whose SIZE= no longer fits is refused at once. Each test's
// clients use addresses of their own in 127.0.0.0/8.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@smgw/observability';
import { createSubmissionAccount } from '@smgw/submission-accounts';
import { assertQueued } from '@smgw/testing';
import { checkSubmissionByteLimits } from '../src/config.ts';
import type { RunningIngest } from '../src/service.ts';
import { awayFromHourTurn, createTestWorld, type TestWorld } from './harness.ts';
import { SmtpTestClient } from './smtp-client.ts';

const PASSWORD = 'a long enough secret';
const ACCOUNT_BYTES = 4096;
const NETWORK_BYTES = 6144;
const refusedReply = (max: number) =>
  `451 4.7.1 Byte limit reached: at most ${max} message bytes an hour, try again later`;

describe('bytes per hour on the submission listener', () => {
  let world: TestWorld;
  /** Two replicas with the same limits; 127.10.0.0/16 is their trusted network, every other client must AUTH. */
  let ingest: RunningIngest;
  let replica: RunningIngest;
  const logLines: Record<string, unknown>[] = [];
  // Blob contents in files, as deployed: a staged blob's rows are committed only with its message's.
  const blobDir = mkdtempSync(join(tmpdir(), 'smgw-ingest-bytes-'));

  before(async () => {
    await awayFromHourTurn();
    world = await createTestWorld();
    const log = createLogger('ingest-test', 'info', { write: (line: string) => logLines.push(JSON.parse(line)) });
    const limits = {
      SMGW_SUBMISSION_NETWORKS: '127.10.0.0/16',
      SMGW_BLOB_DIR: blobDir,
      SMGW_MAX_MESSAGE_BYTES: '2048',
      SMGW_SUBMISSION_BYTES_PER_HOUR: String(ACCOUNT_BYTES),
      SMGW_SUBMISSION_NETWORK_BYTES_PER_HOUR: String(NETWORK_BYTES),
    };
    ({ ingest } = await world.start(limits, log));
    ({ ingest: replica } = await world.start(limits, log));
    for (const name of ['anna', 'bruno', 'dora']) {
      await createSubmissionAccount(world.db.pool, {
        username: `${name}@behoerde.example`,
        password: PASSWORD,
        senderAddresses: [`${name}@behoerde.example`],
      });
    }
  });
  after(async () => {
    await world.close();
    rmSync(blobDir, { recursive: true, force: true });
  });

  const accountSession = (user: string, address: string, on = ingest) =>
    SmtpTestClient.openAuthenticated(on.submissionPort, address, user, PASSWORD);

  /** A message of exactly `bytes` bytes as the client sends them (what SIZE= declares, before dot-stuffing). */
  const message = (from: string, bytes: number, mailParams?: string) => {
    const head = `From: ${from}\r\nSubject: Bescheid\r\n\r\n`;
    const body = `${head}${'x'.repeat(bytes - head.length - 2)}\r\n`;
    assert.equal(body.length, bytes);
    return { from, to: ['citizen@mail.example'], body, mailParams };
  };

  const stored = async () =>
    (
      await world.db.pool.query<{ messages: number; blobs: number }>(
        'select (select count(*)::int from messages) as messages, (select count(*)::int from blobs) as blobs',
      )
    ).rows[0];
  const byteLimitLines = (who: (l: Record<string, unknown>) => boolean) =>
    logLines.filter((l) => l.code === 'SUBMISSION_BYTE_LIMIT' && who(l));

  it('refuses the message that does not fit the hour at the end of DATA with 451 4.7.1 and keeps nothing of it', async () => {
    const first = await accountSession('anna@behoerde.example', '127.30.0.1');
    assertQueued((await first.sendMail(message('anna@behoerde.example', 1500))).final?.text);
    assertQueued((await first.sendMail(message('anna@behoerde.example', 1500))).final?.text);
    const before = await stored();
    // 3000 + 1500 > 4096: refused after the whole message came in; the client keeps it.
    const over = await first.sendMail(message('anna@behoerde.example', 1500));
    assert.equal(over.mail.code, 250);
    assert.equal(over.final?.text, refusedReply(ACCOUNT_BYTES));
    assert.deepEqual(await stored(), before);
    await first.quit();
    assert.equal((await world.takeEnvelopes('smgw.scan')).length, 2);
    // The refused bytes were not counted: a message that fits still goes, from another address and replica.
    const second = await accountSession('anna@behoerde.example', '127.30.0.2', replica);
    assertQueued((await second.sendMail(message('anna@behoerde.example', 1000))).final?.text);
    // 4000 + 100 > 4096.
    assert.equal(
      (await second.sendMail(message('anna@behoerde.example', 100))).final?.text,
      refusedReply(ACCOUNT_BYTES),
    );
    await second.quit();
    assert.equal((await world.takeEnvelopes('smgw.scan')).length, 1);
    // A warning per refusal naming the account, the message's size and id, and the limit; a metric counts them.
    const lines = byteLimitLines((l) => l.user === 'anna@behoerde.example');
    assert.deepEqual(
      lines.map((l) => [l.level, l.size, l.max, typeof l.messageId]),
      [
        ['warn', 1500, ACCOUNT_BYTES, 'string'],
        ['warn', 100, ACCOUNT_BYTES, 'string'],
      ],
    );
    const metrics = await (await fetch(`http://127.0.0.1:${replica.healthPort}/metrics`)).text();
    assert.match(metrics, /smgw_ingest_submission_limited_total\{limit="bytes",sender="account",service="ingest"\} 1/);
  });

  it('refuses at MAIL FROM a message whose declared SIZE no longer fits, and still checks the real size at the end', async () => {
    const client = await accountSession('bruno@behoerde.example', '127.31.0.1');
    assertQueued((await client.sendMail(message('bruno@behoerde.example', 2000))).final?.text);
    assertQueued((await client.sendMail(message('bruno@behoerde.example', 2000))).final?.text);
    // 4000 + 200 declared > 4096: refused before any byte of it is sent.
    const early = await client.sendMail(message('bruno@behoerde.example', 200, 'SIZE=200'));
    assert.equal(early.mail.text, refusedReply(ACCOUNT_BYTES));
    assert.equal(early.data, undefined);
    const [line] = byteLimitLines((l) => l.user === 'bruno@behoerde.example');
    assert.equal(line?.declaredSize, 200);
    // A declared size that fits goes through.
    assertQueued((await client.sendMail(message('bruno@behoerde.example', 90, 'SIZE=90'))).final?.text);
    // A client that declares less than it sends is held to what it sent: 4090 + 100 > 4096.
    const lied = await client.sendMail(message('bruno@behoerde.example', 100, 'SIZE=1'));
    assert.equal(lied.mail.code, 250);
    assert.equal(lied.final?.text, refusedReply(ACCOUNT_BYTES));
    await client.quit();
    assert.equal((await world.takeEnvelopes('smgw.scan')).length, 3);
  });

  it('counts a trusted network client without AUTH under its address by the network budget, an account by its own', async () => {
    const send = async (address: string, bytes: number) => {
      const { client } = await SmtpTestClient.open(ingest.submissionPort, address);
      assert.equal((await client.command('EHLO relay.behoerde.example')).code, 250);
      const reply = await client.sendMail(message('clerk@behoerde.example', bytes));
      await client.quit();
      return reply.final?.text;
    };
    // 4 × 1500 = 6000: past an account's budget, within the network's.
    for (let i = 0; i < 4; i++) assertQueued(await send('127.10.0.1', 1500));
    assert.equal(await send('127.10.0.1', 1500), refusedReply(NETWORK_BYTES));
    // Another server of the network has its own count.
    assertQueued(await send('127.10.0.2', 1500));
    const [line] = byteLimitLines((l) => l.ip === '127.10.0.1');
    assert.equal(line?.user, undefined);
    assert.equal(line?.max, NETWORK_BYTES);
    // A client there that logs in is counted as its account (whose bytes are all left), by the account's budget.
    const dora = await accountSession('dora@behoerde.example', '127.10.0.1');
    assertQueued((await dora.sendMail(message('dora@behoerde.example', 2000))).final?.text);
    assertQueued((await dora.sendMail(message('dora@behoerde.example', 2000))).final?.text);
    assert.equal((await dora.sendMail(message('dora@behoerde.example', 200))).final?.text, refusedReply(ACCOUNT_BYTES));
    await dora.quit();
    assert.equal((await world.takeEnvelopes('smgw.scan')).length, 7);
    const metrics = await (await fetch(`http://127.0.0.1:${ingest.healthPort}/metrics`)).text();
    assert.match(metrics, /smgw_ingest_submission_limited_total\{limit="bytes",sender="network",service="ingest"\} 1/);
  });
});

describe('the hourly byte budgets at start', () => {
  it('refuses a budget smaller than the largest message, which could then never pass', () => {
    const config = { maxMessageBytes: 2048, submissionBytesPerHour: 2048, submissionNetworkBytesPerHour: 4096 };
    checkSubmissionByteLimits(config);
    assert.throws(
      () => checkSubmissionByteLimits({ ...config, submissionNetworkBytesPerHour: 2047 }),
      /SMGW_SUBMISSION_NETWORK_BYTES_PER_HOUR: must be at least SMGW_MAX_MESSAGE_BYTES \(2048\)/,
    );
  });
});
