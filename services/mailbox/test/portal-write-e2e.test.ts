// A portal user's message through the real pipeline: scan and deliver as processes with clamd, the agencies' relay
// and the smarthost as sinks. A clean message arrives at the relay from the portal user, with the gateway's
// Authentication-Results saying the user logged in; an EICAR attachment is quarantined and reaches nobody.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { newMessageId } from '@smgw/envelope';
import { createFolderMailboxKeyStore, type Mailbox } from '@smgw/mailbox-store';
import { connectMq, type Mq } from '@smgw/mq';
import { createLogger } from '@smgw/observability';
import { startTestGateway, type TestGateway, waitFor } from '@smgw/testing';
import { getTrace } from '@smgw/trace';
import { simpleParser } from 'mailparser';
import { type PortalSubmission, type SubmitDeps, submitPortalMessage } from '../src/portal/submit.ts';
import { activeMailbox, agencyWith } from './portal-write-fixtures.ts';

interface World {
  gateway: TestGateway;
  mq: Mq;
  blobStore: BlobStore;
  deps: SubmitDeps;
  mailbox: Mailbox;
}

let world: World;

before(async () => {
  const gateway = await startTestGateway({
    services: ['scan', 'deliver'],
    env: { SMGW_INTERNAL_DOMAINS: 'behoerde.example', SMGW_REVOCATION_MODE: 'off' },
  });
  const log = createLogger('portal-write-e2e', process.env.TEST_LOG_LEVEL ?? 'silent');
  const mq = await connectMq({ url: gateway.vhost.url, logger: log, connectionName: 'portal-write-e2e' });
  const blobStore = createBlobStore(gateway.db.pool, {
    keyStore: createFolderKeyStore(gateway.keys),
    directory: gateway.blobDir,
  });
  const mailboxKeys = createFolderMailboxKeyStore(gateway.keys);
  await agencyWith(
    gateway.db.pool,
    'Stadt Musterstadt',
    'behoerde.example',
    ['post@behoerde.example'],
    ['post@behoerde.example'],
  );
  world = {
    gateway,
    mq,
    blobStore,
    mailbox: await activeMailbox(gateway.db.pool, 'erika@buerger.example', mailboxKeys),
    deps: {
      pool: gateway.db.pool,
      blobStore,
      mq,
      log,
      mailboxKeys,
      hostname: 'smgw.test',
      internalDomains: ['behoerde.example'],
      quotaBytes: 30 * 1024 * 1024,
      maxUploadBytes: 20 * 1024 * 1024,
    },
  };
});

after(async () => {
  await world?.mq.close();
  await world?.gateway.close();
});

function submission(overrides: Partial<PortalSubmission>): PortalSubmission {
  return {
    mailboxId: world.mailbox.id,
    messageId: newMessageId(),
    to: { kind: 'new', addresses: ['post@behoerde.example'] },
    subject: 'Antrag',
    text: 'Sehr geehrte Damen und Herren,\nanbei mein Antrag.',
    attachments: [],
    client: { ip: '198.51.100.7', tls: true },
    ...overrides,
  };
}

describe('a portal message in the pipeline', () => {
  it('passes scan and deliver and arrives at the agencies relay from the portal user, authenticated by the gateway', async () => {
    const marker = `Antrag-${newMessageId()}`;
    const outcome = await submitPortalMessage(
      world.deps,
      submission({
        subject: marker,
        attachments: [{ filename: 'Nachweis.pdf', content: Buffer.from('%PDF-1.4\n% Nachweis\n') }],
      }),
    );
    assert.equal(outcome.kind, 'sent');
    const arrived = await waitFor('the message at the relay', () =>
      world.gateway.relay.messages.find((m) => m.raw.includes(Buffer.from(marker))),
    );
    assert.equal(arrived.mailFrom, world.mailbox.address);
    assert.deepEqual(arrived.rcptTo, ['post@behoerde.example']);
    const text = arrived.raw.toString('latin1');
    assert.ok(
      text.startsWith(
        `Authentication-Results: smgw.test;\r\n\tauth=pass (Messenger portal: user logged in) smtp.auth=${world.mailbox.address}\r\n`,
      ),
      text.slice(0, 300),
    );
    const parsed = await simpleParser(arrived.raw);
    assert.equal(parsed.from?.value[0]?.address, world.mailbox.address);
    assert.equal(parsed.subject, marker);
    assert.deepEqual(
      parsed.attachments.map((a) => [a.filename, a.contentType]),
      [['Nachweis.pdf', 'application/pdf']],
    );
    assert.equal(world.gateway.smarthost.messages.length, 0, 'nothing leaves for the outside');

    const id = outcome.kind === 'sent' ? outcome.messageId : '';
    await waitFor('the recipient delivered', async () => {
      const trace = await getTrace(world.gateway.db.pool, id);
      return trace?.recipients[0]?.state === 'delivered';
    });
    const trace = await getTrace(world.gateway.db.pool, id);
    const events = trace?.events.map((e) => `${e.stage}:${e.event}`) ?? [];
    for (const expected of ['portal:message.submitted', 'portal:message.sent-copy-stored', 'scan:message.scanned']) {
      assert.ok(events.includes(expected), events.join(', '));
    }
  });

  it('quarantines an EICAR attachment: not delivered; the user gets the content-free notice', async () => {
    // EICAR, assembled at run time so that this file is not itself a "virus".
    const eicar = `X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-${'STANDARD-ANTIVIRUS-TEST-FILE'}!$H+H*`;
    const marker = `Rechnung-${newMessageId()}`;
    const outcome = await submitPortalMessage(
      world.deps,
      submission({ subject: marker, attachments: [{ filename: 'rechnung.com', content: Buffer.from(eicar) }] }),
    );
    assert.equal(outcome.kind, 'sent', 'the portal cannot know yet; scan decides');
    const id = outcome.kind === 'sent' ? outcome.messageId : '';
    await waitFor('the message quarantined', async () => {
      const trace = await getTrace(world.gateway.db.pool, id);
      return trace?.recipients.length === 1 && trace.recipients[0]?.state === 'quarantined';
    });
    const notice = await waitFor('the virus notice to the portal user', () =>
      world.gateway.smarthost.messages.find(
        (m) => m.rcptTo.includes(world.mailbox.address) && m.raw.includes(Buffer.from(id)),
      ),
    );
    assert.equal(notice.raw.includes(Buffer.from(marker)), false, 'the notice quotes nothing of the message');
    assert.equal(
      world.gateway.relay.messages.some((m) => m.raw.includes(Buffer.from(marker))),
      false,
      'nothing reached the agency',
    );
  });
});
