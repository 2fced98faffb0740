// The mailbox stage as a process with the real broker and database: encrypt sends a key-less recipient's copy to
// smgw.mailbox, mailbox stores it in the recipient's own encrypted mailbox and writes the notices, deliver takes
// them to the sinks (the smarthost for the citizen, the agencies' relay for the sender).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newMessageId } from '@smgw/envelope';
import {
  createFolderMailboxKeyStore,
  findMailbox,
  listActivationTokens,
  listMailboxMessages,
  openMailboxKey,
} from '@smgw/mailbox-store';
import { connectMq, type Mq } from '@smgw/mq';
import { createLogger } from '@smgw/observability';
import {
  dumpHolds,
  dumpTestSchema,
  envelopeFixture,
  type SunkMessage,
  startTestGateway,
  type TestGateway,
  waitFor,
} from '@smgw/testing';
import { expireParkedMessages, getTrace, recordMessage, recordParkedAt } from '@smgw/trace';
import { pausedReaper } from '@smgw/trace/testing';
import { simpleParser } from 'mailparser';

const SENDER = 'clerk@behoerde.example';
const QUOTA_BYTES = 200_000;
const PUBLIC_URL = 'https://portal.test';

interface World {
  gateway: TestGateway;
  publisher: Mq;
  blobStore: BlobStore;
}

/** A message to `to` with `marker` in its subject and body, `padding` bytes more of body. */
function citizenMail(to: string, marker: string, padding = 0): Buffer {
  return Buffer.from(
    [
      `From: Sachbearbeitung <${SENDER}>`,
      `To: ${to}`,
      `Subject: Bescheid ${marker}`,
      'Date: Mon, 02 Mar 2026 10:00:00 +0100',
      `Message-ID: <${marker}@behoerde.example>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      `Sehr geehrte Damen und Herren, ${marker}.`,
      'x'.repeat(padding),
      '',
    ].join('\r\n'),
  );
}

/** The outbound message stored and recorded as scan leaves it (`itinerary` is what is left of its slip). */
async function storedEnvelope(world: World, raw: Buffer, recipients: string[], rest: Partial<Envelope>) {
  const id = newMessageId();
  const blob = await world.blobStore.put(Readable.from([raw]), { messageId: id });
  const envelope = envelopeFixture({
    id,
    direction: 'outbound',
    mailFrom: SENDER,
    recipients,
    client: { listener: 'submission', ip: '127.0.0.1', helo: 'test', tls: false },
    blob,
    itinerary: ['encrypt', 'deliver'],
    ...rest,
  });
  await recordMessage(world.gateway.db.pool, envelope);
  return envelope;
}

/** Stores the message and publishes it to smgw.encrypt, as scan does for outbound mail. */
async function submit(
  world: World,
  raw: Buffer,
  recipients: string[],
  rest: Partial<Envelope> = {},
): Promise<Envelope> {
  const envelope = await storedEnvelope(world, raw, recipients, rest);
  await world.publisher.publish(envelope);
  return envelope;
}

interface Mail {
  sunk: SunkMessage;
  text: string;
  subject: string;
  contentType: string;
}

/** The mails at `sink` for `rcpt` about message `about` (X-SMGW-Related-Message-Id), parsed. */
async function mailsAbout(sink: { messages: SunkMessage[] }, rcpt: string, about: string): Promise<Mail[]> {
  const mails = await Promise.all(
    sink.messages
      .filter((m) => m.rcptTo.includes(rcpt))
      .map(async (sunk) => {
        const parsed = await simpleParser(sunk.raw);
        return {
          sunk,
          about: parsed.headers.get('x-smgw-related-message-id')?.toString(),
          text: parsed.text ?? '',
          subject: parsed.subject ?? '',
          contentType: (parsed.headers.get('content-type') as { value?: string } | undefined)?.value ?? '',
        };
      }),
  );
  return mails.filter((m) => m.about === about);
}

/** Waits for the mail to `rcpt` about `about` whose text contains `words` (or matches it). */
const mailWith = (sink: { messages: SunkMessage[] }, rcpt: string, about: string, words: string | RegExp) =>
  waitFor(`a mail to ${rcpt} saying ${words}`, async () =>
    (await mailsAbout(sink, rcpt, about)).find((m) =>
      typeof words === 'string' ? m.text.includes(words) : words.test(m.text),
    ),
  );

const ACTIVATION = /https:\/\/portal\.test\/aktivieren\/([A-Za-z0-9_-]{43})/;
const PIN = /^\s+(\d{8})\s*$/m;

async function recipientState(world: World, messageId: string, recipient: string) {
  const trace = await getTrace(world.gateway.db.pool, messageId);
  return trace?.recipients.find((r) => r.address === recipient)?.state;
}

describe('mailbox stage with encrypt and deliver', () => {
  let world: World;

  before(async () => {
    const gateway = await startTestGateway({
      services: ['encrypt', 'deliver', 'mailbox'],
      env: {
        SMGW_REVOCATION_MODE: 'off',
        SMGW_INTERNAL_DOMAINS: 'behoerde.example',
        SMGW_PUBLIC_URL: PUBLIC_URL,
        SMGW_PIN_DELAY: '1s',
        SMGW_MAILBOX_QUOTA_BYTES: String(QUOTA_BYTES),
        SMGW_PREFETCH: '1',
      },
    });
    const publisher = await connectMq({
      url: gateway.vhost.url,
      logger: createLogger('mailbox-test', 'silent'),
      connectionName: 'mailbox-test-publisher',
    });
    world = {
      gateway,
      publisher,
      blobStore: createBlobStore(gateway.db.pool, {
        keyStore: createFolderKeyStore(gateway.keys),
        directory: gateway.blobDir,
      }),
    };
  });

  after(async () => {
    await world?.publisher.close();
    await world?.gateway.close();
  });

  it('stores mail to a key-less recipient in a new passive mailbox, sends link, sender PIN and later the PIN', async () => {
    const { gateway } = world;
    const citizen = 'erika.muster@buerger.example';
    const marker = `MARKER${randomBytes(8).toString('hex')}`;
    const envelope = await submit(world, citizenMail(citizen, marker), [citizen]);

    await waitFor(
      'the recipient in_mailbox',
      async () => (await recipientState(world, envelope.id, citizen)) === 'in_mailbox',
    );
    const mailbox = await findMailbox(gateway.db.pool, citizen);
    assert.equal(mailbox?.state, 'passive');
    const trace = await getTrace(gateway.db.pool, envelope.id);
    const stored = trace?.events.find((e) => e.event === 'message.to-mailbox');
    assert.equal(stored?.recipient, citizen);
    assert.equal(stored?.stage, 'mailbox');
    assert.ok(mailbox);
    const [listed] = await listMailboxMessages(
      gateway.db.pool,
      mailbox.id,
      'inbox',
      await openMailboxKey(createFolderMailboxKeyStore(gateway.keys), mailbox),
    );
    assert.deepEqual(listed?.summary, {
      from: `Sachbearbeitung <${SENDER}>`,
      to: citizen,
      subject: `Bescheid ${marker}`,
      date: '2026-03-02T09:00:00.000Z',
      attachments: 0,
    });

    const link = await mailWith(gateway.smarthost, citizen, envelope.id, `${PUBLIC_URL}/aktivieren/`);
    const senderPin = await mailWith(gateway.relay, SENDER, envelope.id, citizen);
    const pinMail = await mailWith(gateway.smarthost, citizen, envelope.id, PIN);
    const pin = PIN.exec(senderPin.text)?.[1];
    assert.ok(pin, 'the sender notice holds a PIN');
    assert.equal(PIN.exec(pinMail.text)?.[1], pin, 'the recipient gets the same PIN');
    assert.ok(ACTIVATION.test(link.text));
    assert.equal(PIN.test(link.text), false, 'the link mail holds no PIN');

    // The notices' contents committed in the arrival's own transaction, with no commit of their own and no file to put
    // in place after it: each blob row, its notice.generated event and the message.to-mailbox event share one
    // transaction id. The PIN mail of the sweep later: its blob and its event in one statement.
    const { rows: committed } = await gateway.db.pool.query(
      `select g.data->>'kind' as kind, b.storage, b.xmin::text as blob_tx, g.xmin::text as notice_tx,
              (select e.xmin::text from message_events e
                where e.message_id = $1 and e.event = 'message.to-mailbox') as arrival_tx
         from message_events g
         join messages m on m.id = g.message_id
         join blobs b on b.id::text = m.blob_ref
        where g.stage = 'mailbox' and g.event = 'notice.generated' and g.data->>'relatesTo' = $1
        order by kind`,
      [envelope.id],
    );
    assert.deepEqual(
      committed.map((r) => r.kind),
      ['activation-link', 'pin-mail', 'sender-pin'],
    );
    for (const row of committed) {
      assert.equal(row.storage, 'database', row.kind);
      assert.equal(row.blob_tx, row.notice_tx, `${row.kind}: its blob commits with its row`);
      if (row.kind !== 'pin-mail') assert.equal(row.blob_tx, row.arrival_tx, `${row.kind}: in the arrival's commit`);
    }
    for (const mail of [link, senderPin, pinMail]) {
      assert.equal(mail.sunk.raw.includes(Buffer.from(marker)), false, `${mail.subject} quotes nothing of the message`);
      assert.equal(mail.sunk.mailFrom, '', 'generated mail has the null sender');
    }

    const dump = await dumpTestSchema(gateway.db);
    assert.ok(dumpHolds(dump, mailbox?.id ?? '-'), 'the dump holds the mailbox');
    assert.equal(dumpHolds(dump, marker), false, 'the dump holds nothing of the message');
    assert.equal(dumpHolds(dump, ACTIVATION.exec(link.text)?.[1] ?? '-'), false, 'nor the link token');
    assert.equal(dumpHolds(dump, `"pin":"${pin}"`), false, 'nor the PIN in clear');
  });

  it('stores one message per recipient of an envelope with several, each in its own mailbox', async () => {
    const { gateway } = world;
    const recipients = ['eins@buerger.example', 'zwei@buerger.example'];
    const envelope = await submit(world, citizenMail(recipients.join(', '), 'mehrere'), recipients);
    for (const recipient of recipients) {
      await waitFor(
        `${recipient} in_mailbox`,
        async () => (await recipientState(world, envelope.id, recipient)) === 'in_mailbox',
      );
    }
    const mailboxes = await Promise.all(recipients.map((r) => findMailbox(gateway.db.pool, r)));
    assert.notEqual(mailboxes[0]?.id, mailboxes[1]?.id);
    const rows = await gateway.db.pool.query(
      'select mailbox_id, recipient from mailbox_messages where message_id = $1 order by recipient',
      [envelope.id],
    );
    assert.deepEqual(
      rows.rows.map((r) => r.recipient),
      ['eins@buerger.example', 'zwei@buerger.example'],
    );
  });

  it('reuses the link and PIN for a second message before activation, and makes no new token', async () => {
    const { gateway } = world;
    const citizen = 'zweimal@buerger.example';
    const first = await submit(world, citizenMail(citizen, 'erste'), [citizen]);
    const firstLink = await mailWith(gateway.smarthost, citizen, first.id, `${PUBLIC_URL}/aktivieren/`);
    const firstPin = await mailWith(gateway.relay, SENDER, first.id, citizen);
    const second = await submit(world, citizenMail(citizen, 'zweite'), [citizen]);
    const secondLink = await mailWith(gateway.smarthost, citizen, second.id, `${PUBLIC_URL}/aktivieren/`);
    const secondPin = await mailWith(gateway.relay, SENDER, second.id, citizen);

    assert.equal(ACTIVATION.exec(secondLink.text)?.[1], ACTIVATION.exec(firstLink.text)?.[1]);
    assert.equal(PIN.exec(secondPin.text)?.[1], PIN.exec(firstPin.text)?.[1]);
    const mailbox = await findMailbox(gateway.db.pool, citizen);
    assert.equal((await listActivationTokens(gateway.db.pool, mailbox?.id ?? '')).length, 1);
    const rows = await gateway.db.pool.query('select count(*)::int as n from mailbox_messages where mailbox_id = $1', [
      mailbox?.id,
    ]);
    assert.equal(rows.rows[0].n, 2);
  });

  it('stores a redelivered envelope once', async () => {
    const { gateway } = world;
    const citizen = 'doppelt@buerger.example';
    const raw = citizenMail(citizen, 'doppelt');
    // As encrypt hands it on: straight to smgw.mailbox, twice.
    const envelope = await storedEnvelope(world, raw, [citizen], {
      itinerary: ['mailbox'],
      verdicts: { crypto: { status: 'portal', at: new Date().toISOString() } },
    });
    const id = envelope.id;
    await world.publisher.publish(envelope);
    await waitFor('the first delivery stored', async () => (await recipientState(world, id, citizen)) === 'in_mailbox');
    await world.publisher.publish(envelope);
    // One consumer taking one envelope at a time (SMGW_PREFETCH=1): once the message behind it is stored, the
    // redelivered one has been handled.
    const behind = await submit(world, citizenMail('dahinter@buerger.example', 'dahinter'), [
      'dahinter@buerger.example',
    ]);
    await waitFor(
      'the message behind it stored',
      async () => (await recipientState(world, behind.id, 'dahinter@buerger.example')) === 'in_mailbox',
    );

    const mailbox = await findMailbox(gateway.db.pool, citizen);
    const rows = await gateway.db.pool.query('select count(*)::int as n from mailbox_messages where mailbox_id = $1', [
      mailbox?.id,
    ]);
    assert.equal(rows.rows[0].n, 1);
    assert.equal(mailbox?.usageBytes, raw.length);
  });

  it('stores nothing and tells no one for a recipient given up by the reaper, when its parked envelope comes back', async () => {
    const { gateway } = world;
    const citizen = 'aufgegeben@buerger.example';
    const envelope = await storedEnvelope(world, citizenMail(citizen, 'aufgegeben'), [citizen], {
      itinerary: ['mailbox'],
      verdicts: { crypto: { status: 'portal', at: new Date().toISOString() } },
    });
    // Parked at mailbox, then given up after SMGW_PARKED_RETENTION (SMGW_PARKED_ACTION=remove): the sender is told.
    await recordParkedAt(gateway.db.pool, 'mailbox')(envelope, 'MAILBOX_DEPENDENCY_FAILED', 'retries exhausted');
    const expired = await expireParkedMessages(
      gateway.db.pool,
      new Date(Date.now() + 60_000),
      'reaper',
      new Date(),
      1000,
    );
    assert.ok(expired.includes(envelope.id));

    // An operator moves it back from smgw.mailbox.parked; a message behind it shows it has been handled.
    await world.publisher.publish(envelope);
    const behind = await submit(world, citizenMail('danach@buerger.example', 'danach'), ['danach@buerger.example']);
    await waitFor(
      'the message behind it stored',
      async () => (await recipientState(world, behind.id, 'danach@buerger.example')) === 'in_mailbox',
    );
    assert.equal(await findMailbox(gateway.db.pool, citizen), undefined, 'no mailbox, no message');
    assert.equal(await recipientState(world, envelope.id, citizen), 'bounced');
    assert.deepEqual(await mailsAbout(gateway.smarthost, citizen, envelope.id), [], 'no link to the citizen');
  });

  it('waits for a reaper that is giving the message up at that moment, then stores nothing and tells no one', async () => {
    const { gateway } = world;
    const citizen = 'wettlauf@buerger.example';
    const envelope = await storedEnvelope(world, citizenMail(citizen, 'wettlauf'), [citizen], {
      itinerary: ['mailbox'],
      verdicts: { crypto: { status: 'portal', at: new Date().toISOString() } },
    });
    await recordParkedAt(gateway.db.pool, 'mailbox')(envelope, 'MAILBOX_DEPENDENCY_FAILED', 'retries exhausted');
    // The reaper has bounced the recipient and is writing the sender's DSN, not committed yet ...
    const reaper = await pausedReaper(gateway.db.pool);
    // ... when an operator moves the envelope back from smgw.mailbox.parked.
    await world.publisher.publish(envelope);
    try {
      // Until the arrival waits on a lock the reaper holds (or, as it did before, has stored the message already).
      await waitFor('the arrival waiting for the reaper, or stored', async () => {
        if ((await recipientState(world, envelope.id, citizen)) === 'in_mailbox') return true;
        const { rows } = await gateway.db.pool.query(
          `select 1 from pg_stat_activity where wait_event_type = 'Lock'
              and (query like 'select r as recipient%' or query like 'with states as%')`,
        );
        return rows.length > 0;
      });
    } finally {
      reaper.release();
    }
    assert.deepEqual(await reaper.done, [envelope.id]);

    // One arrival at a time (SMGW_PREFETCH=1): once the message behind it is stored, this one has been handled.
    const behind = await submit(world, citizenMail('danach-2@buerger.example', 'danach'), ['danach-2@buerger.example']);
    await waitFor(
      'the message behind it stored',
      async () => (await recipientState(world, behind.id, 'danach-2@buerger.example')) === 'in_mailbox',
    );
    assert.equal(await recipientState(world, envelope.id, citizen), 'bounced');
    const { rows } = await gateway.db.pool.query(
      'select count(*)::int as n from mailbox_messages where message_id = $1',
      [envelope.id],
    );
    assert.equal(rows[0].n, 0, 'stored after its DSN');
    assert.deepEqual(await mailsAbout(gateway.smarthost, citizen, envelope.id), [], 'no link to the citizen');
  });

  it('tells an activated mailbox with a login link only', async () => {
    const { gateway } = world;
    const citizen = 'aktiv@buerger.example';
    const first = await submit(world, citizenMail(citizen, 'vorher'), [citizen]);
    await waitFor(
      'the first message stored',
      async () => (await recipientState(world, first.id, citizen)) === 'in_mailbox',
    );
    await gateway.db.pool.query(`update mailboxes set state = 'active', activated_at = now() where address = $1`, [
      citizen,
    ]);

    const envelope = await submit(world, citizenMail(citizen, 'nachher'), [citizen]);
    const login = await mailWith(gateway.smarthost, citizen, envelope.id, `${PUBLIC_URL}/anmelden`);
    assert.equal(ACTIVATION.test(login.text), false);
    assert.equal(PIN.test(login.text), false);
    assert.equal((await mailsAbout(gateway.relay, SENDER, envelope.id)).length, 0, 'no PIN notice to the sender');
  });

  it('stores mail for a locked mailbox without telling anyone', async () => {
    const { gateway } = world;
    const citizen = 'gesperrt@buerger.example';
    const first = await submit(world, citizenMail(citizen, 'vorher'), [citizen]);
    await waitFor(
      'the first message stored',
      async () => (await recipientState(world, first.id, citizen)) === 'in_mailbox',
    );
    await gateway.db.pool.query(`update mailboxes set state = 'locked' where address = $1`, [citizen]);

    const envelope = await submit(world, citizenMail(citizen, 'gesperrt'), [citizen]);
    await waitFor(
      'the message stored',
      async () => (await recipientState(world, envelope.id, citizen)) === 'in_mailbox',
    );
    const arrival = await gateway.db.pool.query('select notices from mailbox_arrivals where message_id = $1', [
      envelope.id,
    ]);
    assert.deepEqual(arrival.rows[0]?.notices, []);
  });

  it('refuses a message over the quota: nothing stored, a DSN to the sender, a notice to the recipient', async () => {
    const { gateway } = world;
    const citizen = 'voll@buerger.example';
    const marker = `GROSS${randomBytes(6).toString('hex')}`;
    const envelope = await submit(world, citizenMail(citizen, marker, QUOTA_BYTES), [citizen]);

    const dsn = await mailWith(gateway.relay, SENDER, envelope.id, citizen);
    assert.match(dsn.contentType, /multipart\/report/);
    assert.ok(dsn.sunk.raw.includes(Buffer.from('Status: 5.2.2')));
    const notice = await mailWith(gateway.smarthost, citizen, envelope.id, `${PUBLIC_URL}/anmelden`);
    for (const mail of [dsn, notice]) assert.equal(mail.sunk.raw.includes(Buffer.from(marker)), false);

    assert.equal(await recipientState(world, envelope.id, citizen), 'bounced');
    const trace = await getTrace(gateway.db.pool, envelope.id);
    assert.ok(trace?.events.some((e) => e.event === 'recipient.bounced' && e.code === 'MAILBOX_QUOTA_EXCEEDED'));
    const mailbox = await findMailbox(gateway.db.pool, citizen);
    assert.equal(mailbox?.usageBytes, 0);
    const rows = await gateway.db.pool.query('select count(*)::int as n from mailbox_messages where mailbox_id = $1', [
      mailbox?.id,
    ]);
    assert.equal(rows.rows[0].n, 0);
  });

  it('sends no over-quota DSN to a sender who asked for none (NOTIFY=NEVER), and still tells the recipient', async () => {
    const { gateway } = world;
    const citizen = 'voll-still@buerger.example';
    const envelope = await submit(world, citizenMail(citizen, 'STILL', QUOTA_BYTES), [citizen], {
      dsn: { notify: { [citizen]: ['NEVER'] } },
    });
    await mailWith(gateway.smarthost, citizen, envelope.id, `${PUBLIC_URL}/anmelden`);
    assert.equal(await recipientState(world, envelope.id, citizen), 'bounced');
    const made = await gateway.db.pool.query<{ to: string[] }>(
      `select array_agg(r.recipient) as to from messages m join message_recipients r on r.message_id = m.id
        where m.relates_to = $1`,
      [envelope.id],
    );
    assert.deepEqual(made.rows[0]?.to, [citizen], 'the notice to the recipient, no DSN to the sender');
  });

  it('sends no over-quota DSN for NOTIFY=NEVER to a recipient at an IDN domain as the agency wrote it (U-labels)', async () => {
    // The mailbox keeps the address with its domain's A-labels; the NOTIFY the agency gave is keyed as it wrote it.
    const { gateway } = world;
    const citizen = 'voll-idn@bürger.example';
    const stored = 'voll-idn@xn--brger-kva.example';
    const envelope = await submit(world, citizenMail(citizen, 'IDN', QUOTA_BYTES), [citizen], {
      dsn: { notify: { [citizen]: ['NEVER'] } },
    });
    await mailWith(gateway.smarthost, citizen, envelope.id, `${PUBLIC_URL}/anmelden`);
    assert.equal(await recipientState(world, envelope.id, citizen), 'bounced');
    const made = await gateway.db.pool.query<{ to: string[] }>(
      `select array_agg(r.recipient) as to from messages m join message_recipients r on r.message_id = m.id
        where m.relates_to = $1`,
      [envelope.id],
    );
    assert.deepEqual(made.rows[0]?.to, [stored], 'the notice to the recipient, no DSN to the sender');
  });
});
