// submitPortalMessage against the real database and broker: who a portal user may write to (and who not, whatever
// the original's Reply-To says), the quota with the Sent copy counted, the envelope it puts on smgw.scan, and the
// order that never shows "sent" for a message that did not go nor sends a message twice.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { withTransaction } from '@smgw/db';
import { type Envelope, newMessageId } from '@smgw/envelope';
import {
  createFolderMailboxKeyStore,
  deleteTrashedMessages,
  ensureMailbox,
  findMailboxById,
  listMailboxMessages,
  lockMailbox,
  type Mailbox,
  type MailboxKeyStore,
  openMailboxKey,
  readMailboxMessage,
  releaseMailboxUsage,
  setMailboxLocked,
  trashMailboxMessage,
} from '@smgw/mailbox-store';
import { connectMq, type Mq } from '@smgw/mq';
import { createLogger } from '@smgw/observability';
import { createTestDatabase, createTestVhost, type TestDatabase, type TestVhost } from '@smgw/testing';
import { claimAbandonedSentCopy, getTrace, recordedMessage, recordSentCopyAbandoned } from '@smgw/trace';
import { simpleParser } from 'mailparser';
import { readReplyContext } from '../src/portal/reply-context.ts';
import { type PortalSubmission, type SubmitDeps, submitPortalMessage } from '../src/portal/submit.ts';
import { activeMailbox, agencyLetter, agencyWith, inboxMessage, takeEnvelopes } from './portal-write-fixtures.ts';

const QUOTA = 60_000;
const MAX_UPLOAD = 20_000;

interface World {
  db: TestDatabase;
  vhost: TestVhost;
  mq: Mq;
  blobStore: BlobStore;
  mailboxKeys: MailboxKeyStore;
  deps: SubmitDeps;
}

let world: World;
let counter = 0;

before(async () => {
  const [db, vhost] = await Promise.all([createTestDatabase(), createTestVhost()]);
  const log = createLogger('portal-write-test', process.env.TEST_LOG_LEVEL ?? 'silent');
  const mq = await connectMq({ url: vhost.url, logger: log, connectionName: 'portal-write-test' });
  await mq.declareTopology({ scan: [1000], deliver: [1000] });
  const blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
  const mailboxKeys = createFolderMailboxKeyStore(db.keys);
  world = {
    db,
    vhost,
    mq,
    blobStore,
    mailboxKeys,
    deps: {
      pool: db.pool,
      blobStore,
      mq,
      log,
      mailboxKeys,
      hostname: 'smgw.test',
      internalDomains: ['behoerde.example', '*.land.example'],
      quotaBytes: QUOTA,
      maxUploadBytes: MAX_UPLOAD,
    },
  };
  await agencyWith(
    db.pool,
    'Stadt Musterstadt',
    'behoerde.example',
    ['post@behoerde.example', 'intern@behoerde.example'],
    ['post@behoerde.example'],
  );
  await agencyWith(
    db.pool,
    'Landesamt',
    'amt.land.example',
    ['poststelle@amt.land.example'],
    ['poststelle@amt.land.example'],
  );
  // An agency whose domain is not one of SMGW_INTERNAL_DOMAINS: deliver could not send to it, so neither may the portal.
  await agencyWith(db.pool, 'Außenstelle', 'fremd.example', ['post@fremd.example'], ['post@fremd.example']);
});

after(async () => {
  await world?.mq.close();
  await Promise.all([world?.db.drop(), world?.vhost.drop()]);
});

beforeEach(async () => {
  await takeEnvelopes(world.vhost, 'smgw.scan');
});

async function citizen(): Promise<Mailbox> {
  counter += 1;
  return activeMailbox(world.db.pool, `buerger${counter}@buerger.example`, world.mailboxKeys);
}

function submission(mailbox: Mailbox, overrides: Partial<PortalSubmission> = {}): PortalSubmission {
  return {
    mailboxId: mailbox.id,
    messageId: newMessageId(),
    to: { kind: 'new', addresses: ['post@behoerde.example'] },
    subject: 'Antrag',
    text: 'Sehr geehrte Damen und Herren,\nanbei mein Antrag.',
    attachments: [],
    client: { ip: '198.51.100.7', tls: true },
    ...overrides,
  };
}

const refused = (code: string) => ({ kind: 'refused', code });

/** Outcome without the reason text (compared in tests). */
function shape(outcome: Awaited<ReturnType<typeof submitPortalMessage>>) {
  return outcome.kind === 'refused' ? { kind: outcome.kind, code: outcome.code } : outcome;
}

async function sentFolder(mailbox: Mailbox) {
  const key = await openMailboxKey(world.mailboxKeys, mailbox);
  try {
    return await listMailboxMessages(world.db.pool, mailbox.id, 'sent', key);
  } finally {
    key.fill(0);
  }
}

async function sentCopy(mailbox: Mailbox, rowId: string): Promise<Buffer | undefined> {
  const key = await openMailboxKey(world.mailboxKeys, mailbox);
  try {
    return await readMailboxMessage(world.db.pool, mailbox.id, key, rowId);
  } finally {
    key.fill(0);
  }
}

describe('a new message', () => {
  it('goes to smgw.scan as a portal envelope with the portal user as verified sender', async () => {
    const mailbox = await citizen();
    const input = submission(mailbox);
    const outcome = await submitPortalMessage(world.deps, input);
    assert.equal(outcome.kind, 'sent');

    const [envelope, ...more] = await takeEnvelopes(world.vhost, 'smgw.scan');
    assert.equal(more.length, 0);
    assert.ok(envelope);
    assert.equal(envelope.id, input.messageId);
    assert.equal(envelope.direction, 'portal');
    assert.deepEqual(envelope.itinerary, ['scan', 'verify', 'deliver']);
    assert.equal(envelope.mailFrom, mailbox.address);
    assert.equal(envelope.author, mailbox.address);
    assert.deepEqual(envelope.recipients, ['post@behoerde.example']);
    assert.deepEqual(envelope.client, {
      listener: 'portal',
      ip: '198.51.100.7',
      helo: 'portal',
      user: mailbox.address,
      tls: true,
    });
    assert.equal(envelope.verdicts.auth?.status, 'pass');
    assert.equal(
      envelope.verdicts.auth?.field,
      `Authentication-Results: smgw.test;\r\n\tauth=pass (Messenger portal: user logged in) smtp.auth=${mailbox.address}\r\n`,
    );
    assert.deepEqual(envelope.dsn?.notify, { 'post@behoerde.example': ['NEVER'] }, 'no DSN by plain mail');

    // The blob is the message as composed; the Sent folder holds the same bytes, counted in the usage.
    const raw = await world.blobStore.readAll(envelope.blob.ref);
    const parsed = await simpleParser(raw);
    assert.equal(parsed.from?.value[0]?.address, mailbox.address);
    assert.equal(parsed.subject, 'Antrag');
    const [copy, ...others] = await sentFolder(mailbox);
    assert.equal(others.length, 0);
    assert.equal(copy?.messageId, envelope.id);
    assert.deepEqual(copy?.summary, {
      from: mailbox.address,
      to: 'post@behoerde.example',
      subject: 'Antrag',
      date: envelope.receivedAt,
      attachments: 0,
    });
    assert.deepEqual(await sentCopy(mailbox, copy?.id ?? ''), raw);
    assert.equal((await findMailboxById(world.db.pool, mailbox.id))?.usageBytes, raw.length);

    const trace = await getTrace(world.db.pool, envelope.id);
    assert.equal(trace?.direction, 'portal');
    assert.equal(trace?.client.user, mailbox.address);
    assert.deepEqual(
      trace?.events.map((e) => `${e.stage} ${e.event}`),
      ['portal message.submitted', 'portal message.sent-copy-stored'],
    );
    assert.deepEqual(
      trace?.recipients.map((r) => [r.address, r.state]),
      [['post@behoerde.example', 'pending']],
    );
  });

  it('goes to several reachable addresses, in any spelling, once each', async () => {
    const mailbox = await citizen();
    const addresses = ['Post@Behoerde.Example', 'poststelle@amt.land.example', 'post@behoerde.example'];
    const outcome = await submitPortalMessage(world.deps, submission(mailbox, { to: { kind: 'new', addresses } }));
    assert.equal(outcome.kind, 'sent');
    const [envelope] = await takeEnvelopes(world.vhost, 'smgw.scan');
    assert.deepEqual(envelope?.recipients, ['post@behoerde.example', 'poststelle@amt.land.example']);
  });

  it('is refused to an agency address not marked reachable, to outsiders, and to agencies outside the internal domains', async () => {
    const mailbox = await citizen();
    for (const addresses of [
      ['intern@behoerde.example'],
      ['unbekannt@behoerde.example'],
      ['jemand@extern.example'],
      ['post@behoerde.example', 'jemand@extern.example'],
      ['post@fremd.example'],
      ['post@behoerde.example>, <jemand@extern.example'],
      ['"x"@behoerde.example'],
    ]) {
      const outcome = await submitPortalMessage(world.deps, submission(mailbox, { to: { kind: 'new', addresses } }));
      assert.deepEqual(shape(outcome), refused('RECIPIENT_NOT_REACHABLE'), addresses.join(' '));
    }
    assert.deepEqual(
      shape(await submitPortalMessage(world.deps, submission(mailbox, { to: { kind: 'new', addresses: [] } }))),
      refused('NO_RECIPIENT'),
    );
    assert.deepEqual(await takeEnvelopes(world.vhost, 'smgw.scan'), []);
    assert.deepEqual(await sentFolder(mailbox), []);
  });

  it('is refused with a subject that would add header fields, and nothing is stored or sent', async () => {
    const mailbox = await citizen();
    const input = submission(mailbox, { subject: 'Antrag\r\nX-SMGW-Signature: TOTAL_PASSED' });
    assert.deepEqual(shape(await submitPortalMessage(world.deps, input)), refused('SUBJECT_LINE_BREAK'));
    assert.equal(await recordedMessage(world.db.pool, input.messageId), undefined);
    assert.deepEqual(await takeEnvelopes(world.vhost, 'smgw.scan'), []);
  });

  it('is refused when text and attachments exceed SMGW_PORTAL_MAX_UPLOAD_BYTES', async () => {
    const mailbox = await citizen();
    const input = submission(mailbox, {
      attachments: [{ filename: 'gross.pdf', content: Buffer.alloc(MAX_UPLOAD + 1, 0x41) }],
    });
    assert.deepEqual(shape(await submitPortalMessage(world.deps, input)), refused('UPLOAD_TOO_LARGE'));
  });

  it('is refused from a passive, locked or unknown mailbox', async () => {
    const mailbox = await citizen();
    await setMailboxLocked(world.db.pool, mailbox.id, true, 'admin:test', new Date());
    assert.deepEqual(shape(await submitPortalMessage(world.deps, submission(mailbox))), refused('MAILBOX_NOT_ACTIVE'));
    const { mailbox: passive } = await ensureMailbox(world.db.pool, 'passiv@buerger.example', world.mailboxKeys);
    assert.deepEqual(shape(await submitPortalMessage(world.deps, submission(passive))), refused('MAILBOX_NOT_ACTIVE'));
    const unknown = { ...mailbox, id: '00000000-0000-4000-8000-000000000000' };
    assert.deepEqual(shape(await submitPortalMessage(world.deps, submission(unknown))), refused('MAILBOX_NOT_ACTIVE'));
  });

  it('is refused from a mailbox at an agency address (its domain became an agency one after it was made)', async () => {
    // Registration refuses agency addresses; this mailbox predates its domain's listing in SMGW_INTERNAL_DOMAINS.
    const mailbox = await activeMailbox(world.db.pool, `ehemals${++counter}@amt.land.example`, world.mailboxKeys);
    assert.deepEqual(shape(await submitPortalMessage(world.deps, submission(mailbox))), refused('MAILBOX_NOT_ACTIVE'));
    assert.deepEqual(await takeEnvelopes(world.vhost, 'smgw.scan'), []);
  });
});

describe('a reply', () => {
  it('goes to the original sender only, never to its Reply-To or Cc, threaded', async () => {
    const mailbox = await citizen();
    const letter = agencyLetter('sb@behoerde.example', mailbox.address, [
      'Reply-To: angreifer@extern.example',
      'Cc: post@behoerde.example, jemand@extern.example',
    ]);
    const rowId = await inboxMessage(world.db.pool, mailbox, world.mailboxKeys, letter);
    const outcome = await submitPortalMessage(
      world.deps,
      submission(mailbox, { to: { kind: 'reply', originalRowId: rowId }, subject: 'Re: Bescheid' }),
    );
    assert.equal(outcome.kind, 'sent');
    const [envelope] = await takeEnvelopes(world.vhost, 'smgw.scan');
    assert.deepEqual(envelope?.recipients, ['sb@behoerde.example'], 'a reply needs no reachable mark');
    const parsed = await simpleParser(await world.blobStore.readAll(envelope?.blob.ref ?? ''));
    const originalId = (await simpleParser(letter)).messageId;
    assert.equal(parsed.inReplyTo, originalId);
    assert.deepEqual([parsed.references].flat(), [originalId]);
    assert.deepEqual(
      [parsed.to].flat().flatMap((to) => to?.value.map((v) => v.address)),
      ['sb@behoerde.example'],
    );
    assert.equal(parsed.cc, undefined);
  });

  it('is refused to a sender outside the agencies, with a name that looks like an agency or several From addresses', async () => {
    const mailbox = await citizen();
    for (const from of [
      'jemand@extern.example',
      'post@fremd.example',
      'Stadt <post@behoerde.example.extern.example>',
      // A route inside an agency's domain (the percent hack, a bang path): no plain address, never answered.
      'extern.example%post@behoerde.example',
      'extern.example!post@behoerde.example',
    ]) {
      const rowId = await inboxMessage(
        world.db.pool,
        mailbox,
        world.mailboxKeys,
        agencyLetter(from, mailbox.address, ['Reply-To: post@behoerde.example']),
      );
      const outcome = await submitPortalMessage(
        world.deps,
        submission(mailbox, { to: { kind: 'reply', originalRowId: rowId } }),
      );
      assert.deepEqual(shape(outcome), refused('REPLY_SENDER_NOT_AGENCY'), from);
    }
    const two = await inboxMessage(
      world.db.pool,
      mailbox,
      world.mailboxKeys,
      agencyLetter('sb@behoerde.example>, <jemand@extern.example', mailbox.address),
    );
    const outcome = await submitPortalMessage(
      world.deps,
      submission(mailbox, { to: { kind: 'reply', originalRowId: two } }),
    );
    assert.deepEqual(shape(outcome), refused('REPLY_NO_SENDER'));
    assert.deepEqual(await takeEnvelopes(world.vhost, 'smgw.scan'), []);
  });

  it('is refused to a message of another mailbox and to one of the own Sent folder', async () => {
    const [mailbox, stranger] = [await citizen(), await citizen()];
    const theirs = await inboxMessage(
      world.db.pool,
      stranger,
      world.mailboxKeys,
      agencyLetter('sb@behoerde.example', stranger.address),
    );
    const outcome = await submitPortalMessage(
      world.deps,
      submission(mailbox, { to: { kind: 'reply', originalRowId: theirs } }),
    );
    assert.deepEqual(shape(outcome), refused('REPLY_ORIGINAL_NOT_FOUND'));

    const sent = await submitPortalMessage(world.deps, submission(mailbox));
    assert.equal(sent.kind, 'sent');
    const ownSent = sent.kind === 'sent' ? (sent.sentRowId ?? '') : '';
    const again = await submitPortalMessage(
      world.deps,
      submission(mailbox, { to: { kind: 'reply', originalRowId: ownSent } }),
    );
    assert.deepEqual(shape(again), refused('REPLY_ORIGINAL_NOT_FOUND'));
    assert.equal((await takeEnvelopes(world.vhost, 'smgw.scan')).length, 1);
  });

  it("uses the header the reply page read already, but only for the mailbox's own inbox row", async () => {
    const [mailbox, stranger] = [await citizen(), await citizen()];
    const letter = agencyLetter('sb@behoerde.example', mailbox.address);
    const own = await inboxMessage(world.db.pool, mailbox, world.mailboxKeys, letter);
    const theirs = await inboxMessage(world.db.pool, stranger, world.mailboxKeys, letter);
    const original = readReplyContext(letter);
    const refusedForeign = await submitPortalMessage(
      world.deps,
      submission(mailbox, { to: { kind: 'reply', originalRowId: theirs, original } }),
    );
    assert.deepEqual(shape(refusedForeign), refused('REPLY_ORIGINAL_NOT_FOUND'));
    // A context that differs from the stored bytes shows which one was used: the original is not decrypted again.
    const known = { ...original, fromAddresses: ['post@behoerde.example'] };
    const outcome = await submitPortalMessage(
      world.deps,
      submission(mailbox, { to: { kind: 'reply', originalRowId: own, original: known } }),
    );
    assert.equal(outcome.kind, 'sent');
    const [envelope, ...more] = await takeEnvelopes(world.vhost, 'smgw.scan');
    assert.equal(more.length, 0);
    assert.deepEqual(envelope?.recipients, ['post@behoerde.example']);
  });
});

describe('the quota', () => {
  it('counts the Sent copy: a message that does not fit is refused and nothing is sent', async () => {
    const mailbox = await citizen();
    const attachment = { filename: 'anlage.pdf', content: Buffer.alloc(15_000, 0x25) };
    let sent = 0;
    for (;;) {
      const outcome = await submitPortalMessage(world.deps, submission(mailbox, { attachments: [attachment] }));
      if (outcome.kind !== 'sent') {
        assert.deepEqual(shape(outcome), refused('QUOTA_EXCEEDED'));
        break;
      }
      sent += 1;
      assert.ok(sent < 10, 'the quota stops it');
    }
    const usage = (await findMailboxById(world.db.pool, mailbox.id))?.usageBytes ?? 0;
    const folder = await sentFolder(mailbox);
    assert.equal(folder.length, sent);
    assert.equal(
      usage,
      folder.reduce((sum, row) => sum + row.size, 0),
      'usage is the Sent copies',
    );
    assert.ok(usage <= QUOTA && usage + 20_000 > QUOTA);
    assert.equal((await takeEnvelopes(world.vhost, 'smgw.scan')).length, sent);
  });

  it('lets messages sent at once share the free space: those that do not fit are refused and not sent', async () => {
    const mailbox = await citizen();
    const attachment = { filename: 'anlage.pdf', content: Buffer.alloc(15_000, 0x25) };
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, () =>
        submitPortalMessage(world.deps, submission(mailbox, { attachments: [attachment] })),
      ),
    );
    const sent = outcomes.filter((o) => o.kind === 'sent').length;
    assert.deepEqual(
      outcomes.filter((o) => o.kind !== 'sent').map(shape),
      Array.from({ length: 8 - sent }, () => refused('QUOTA_EXCEEDED')),
    );
    const usage = (await findMailboxById(world.db.pool, mailbox.id))?.usageBytes ?? 0;
    const folder = await sentFolder(mailbox);
    assert.equal(folder.length, sent);
    assert.equal(
      usage,
      folder.reduce((sum, row) => sum + row.size, 0),
    );
    assert.ok(usage <= QUOTA && usage + 20_000 > QUOTA, `usage ${usage} of ${QUOTA}`);
    assert.equal((await takeEnvelopes(world.vhost, 'smgw.scan')).length, sent);
  });
});

/** The deps of a submission whose publish the broker does not confirm (the channel closed, or `code`). */
function brokerDownDeps(code = 'MQ_PUBLISH_CHANNEL_CLOSED'): SubmitDeps {
  const message = code === 'MQ_PUBLISH_CHANNEL_CLOSED' ? 'the channel closed' : 'the broker said no';
  return {
    ...world.deps,
    mq: {
      publish: async () => {
        throw Object.assign(new Error(message), { code });
      },
    },
  };
}

/**
 * What the reaper's sent-copy-reservations sweep does once a draft's life is over (its own tests drive it): the
 * message's reserved Sent-copy bytes given back.
 */
async function reaperGivesBack(mailbox: Mailbox, messageId: string): Promise<void> {
  await withTransaction(world.db.pool, async (db) => {
    await lockMailbox(db, mailbox.id);
    const copy = await claimAbandonedSentCopy(db, messageId, new Date(Date.now() + 60_000));
    assert.ok(copy, 'the reservation is open');
    await releaseMailboxUsage(db, mailbox.id, copy.bytes);
    await recordSentCopyAbandoned(db, copy, { stage: 'reaper', reason: 'test', data: {}, at: new Date() });
  });
}

describe('sending a draft again', () => {
  it('does nothing more once it was sent', async () => {
    const mailbox = await citizen();
    const input = submission(mailbox);
    const first = await submitPortalMessage(world.deps, input);
    const second = await submitPortalMessage(world.deps, { ...input, text: 'ein anderer Text' });
    assert.equal(first.kind, 'sent');
    assert.deepEqual(second, {
      kind: 'sent',
      messageId: input.messageId,
      sentRowId: first.kind === 'sent' ? first.sentRowId : '',
      again: true,
    });
    assert.equal((await takeEnvelopes(world.vhost, 'smgw.scan')).length, 1);
    assert.equal((await sentFolder(mailbox)).length, 1);
  });

  it('after an unconfirmed publish: "not sent", nothing in Sent; again, the recorded message goes, not a new one', async () => {
    const mailbox = await citizen();
    const input = submission(mailbox, { text: 'die erste Fassung' });
    const brokerDown = brokerDownDeps();
    const failed = await submitPortalMessage(brokerDown, input);
    assert.deepEqual(failed, { kind: 'failed', code: 'MQ_PUBLISH_CHANNEL_CLOSED', reason: 'the channel closed' });
    assert.deepEqual(await sentFolder(mailbox), [], 'not shown as sent');
    const recorded = await recordedMessage(world.db.pool, input.messageId);
    assert.ok(recorded, 'recorded: a stage could have taken it');
    const usage = async () => (await findMailboxById(world.db.pool, mailbox.id))?.usageBytes;
    assert.equal(await usage(), recorded.blob.size, 'its Sent copy keeps its place in the quota');
    const trace = await getTrace(world.db.pool, input.messageId);
    assert.deepEqual(
      trace?.events.map((e) => `${e.event} ${e.outcome}`),
      ['message.submitted next', 'message.refused retry'],
    );

    // The user sends the form again (the browser may send what it has; the record decides what goes).
    const again = await submitPortalMessage(world.deps, { ...input, text: 'eine zweite Fassung' });
    assert.equal(again.kind, 'sent');
    const [envelope, ...more] = await takeEnvelopes(world.vhost, 'smgw.scan');
    assert.equal(more.length, 0);
    assert.equal(envelope?.id, input.messageId);
    assert.deepEqual(envelope?.blob, recorded.blob);
    assert.equal(envelope?.traceId, recorded.traceId);
    const [copy] = await sentFolder(mailbox);
    const copyText = (await simpleParser((await sentCopy(mailbox, copy?.id ?? '')) ?? Buffer.alloc(0))).text;
    assert.match(copyText ?? '', /die erste Fassung/);
    assert.equal(await usage(), copy?.size, 'counted once');
  });

  it('each refusal says whether the envelope may be in a queue, and a resend is recorded before it is published', async () => {
    // What the reaper's refused-messages sweep decides by: a message every publish of which was surely refused, and
    // whose draft is dead, is collected with its content; one that may have gone is never.
    const mailbox = await citizen();
    const input = submission(mailbox);
    assert.equal((await submitPortalMessage(brokerDownDeps('MQ_PUBLISH_NACKED'), input)).kind, 'failed');
    assert.equal((await submitPortalMessage(brokerDownDeps(), input)).kind, 'failed');
    const portalEvents = async () =>
      ((await getTrace(world.db.pool, input.messageId))?.events ?? []).map((e) =>
        e.event === 'message.refused' ? `${e.event} ${(e.data as { enqueued?: string } | null)?.enqueued}` : e.event,
      );
    assert.deepEqual(await portalEvents(), [
      'message.submitted',
      'message.refused none',
      'message.resubmitted',
      'message.refused unknown',
    ]);

    let atPublish: string[] = [];
    const again = await submitPortalMessage(
      {
        ...world.deps,
        mq: {
          publish: async (envelope) => {
            atPublish = await portalEvents();
            await world.mq.publish(envelope);
          },
        },
      },
      input,
    );
    assert.equal(again.kind, 'sent');
    assert.equal(atPublish.at(-1), 'message.resubmitted', 'recorded before the publish');
    await takeEnvelopes(world.vhost, 'smgw.scan');
  });

  it('after the reaper gave the reserved bytes back, a resend still on its way counts its Sent copy itself', async () => {
    const mailbox = await citizen();
    const input = submission(mailbox);
    const brokerDown = brokerDownDeps();
    assert.equal((await submitPortalMessage(brokerDown, input)).kind, 'failed');
    const recorded = await recordedMessage(world.db.pool, input.messageId);
    assert.ok(recorded);
    const usage = async () => (await findMailboxById(world.db.pool, mailbox.id))?.usageBytes;
    await reaperGivesBack(mailbox, input.messageId);
    assert.equal(await usage(), 0);

    assert.equal((await submitPortalMessage(world.deps, input)).kind, 'sent');
    const [copy] = await sentFolder(mailbox);
    assert.equal(await usage(), copy?.size, 'the copy is counted, not stored on bytes given back');
    await takeEnvelopes(world.vhost, 'smgw.scan');
  });

  it('after its Sent copy was deleted for good: "sent", nothing published or stored again, the usage what is stored', async () => {
    // Each resend stored a new copy on the reservation the first copy had used, uncounted, and deleting it gave its
    // bytes back again: a user could hold any amount, the usage drifting to 0.
    const mailbox = await citizen();
    const input = submission(mailbox, { text: 'x'.repeat(15_000) });
    const first = await submitPortalMessage(world.deps, input);
    assert.ok(first.kind === 'sent' && first.sentRowId);
    const usage = async () => (await findMailboxById(world.db.pool, mailbox.id))?.usageBytes;
    assert.equal(await usage(), (await sentFolder(mailbox))[0]?.size);
    for (let round = 0; round < 3; round++) {
      const [copy] = await sentFolder(mailbox);
      if (copy) {
        assert.ok(await trashMailboxMessage(world.db.pool, mailbox.id, copy.id));
        await withTransaction(world.db.pool, (db) => deleteTrashedMessages(db, mailbox.id, [copy.id]));
      }
      assert.equal(await usage(), 0, `round ${round}: nothing stored, nothing counted`);
      const again = await submitPortalMessage(world.deps, input);
      assert.deepEqual(again, { kind: 'sent', messageId: input.messageId, sentRowId: undefined, again: true });
      assert.deepEqual(await sentFolder(mailbox), [], `round ${round}: no copy stored uncounted`);
      assert.equal(await usage(), 0);
    }
    assert.equal((await takeEnvelopes(world.vhost, 'smgw.scan')).length, 1, 'published once');
  });

  it('after the reaper gave the reserved bytes back, a resend whose copy no longer fits is sent without one', async () => {
    const mailbox = await citizen();
    const input = submission(mailbox, { text: 'y'.repeat(15_000) });
    const brokerDown = brokerDownDeps();
    assert.equal((await submitPortalMessage(brokerDown, input)).kind, 'failed');
    await reaperGivesBack(mailbox, input.messageId);
    // Meanwhile the agencies' letters filled the mailbox up to a few bytes below its quota.
    await world.db.pool.query('update mailboxes set usage_bytes = $2 where id = $1', [mailbox.id, QUOTA - 100]);
    const again = await submitPortalMessage(world.deps, input);
    assert.equal(again.kind, 'sent');
    assert.deepEqual(await sentFolder(mailbox), []);
    assert.equal((await findMailboxById(world.db.pool, mailbox.id))?.usageBytes, QUOTA - 100, 'the quota holds');
    await takeEnvelopes(world.vhost, 'smgw.scan');
  });

  it('twice at once: one message, one Sent copy', async () => {
    const mailbox = await citizen();
    const input = submission(mailbox);
    const outcomes = await Promise.all([
      submitPortalMessage(world.deps, input),
      submitPortalMessage(world.deps, { ...input, text: 'doppelt' }),
    ]);
    assert.deepEqual(
      outcomes.map((o) => o.kind),
      ['sent', 'sent'],
    );
    const envelopes: Envelope[] = await takeEnvelopes(world.vhost, 'smgw.scan');
    assert.ok(envelopes.length >= 1 && envelopes.length <= 2);
    assert.equal(new Set(envelopes.map((e) => `${e.id} ${e.blob.ref}`)).size, 1, 'the same message, if twice');
    const [copy, ...more] = await sentFolder(mailbox);
    assert.equal(more.length, 0);
    assert.equal((await findMailboxById(world.db.pool, mailbox.id))?.usageBytes, copy?.size, 'counted once');
  });

  it("is refused with another mailbox's message id", async () => {
    const [mailbox, stranger] = [await citizen(), await citizen()];
    const input = submission(stranger);
    assert.equal((await submitPortalMessage(world.deps, input)).kind, 'sent');
    const outcome = await submitPortalMessage(world.deps, submission(mailbox, { messageId: input.messageId }));
    assert.deepEqual(shape(outcome), refused('DRAFT_TAKEN'));
    assert.equal((await takeEnvelopes(world.vhost, 'smgw.scan')).length, 1);
  });
});
