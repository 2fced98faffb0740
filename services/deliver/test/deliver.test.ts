// deliver against the real PostgreSQL and RabbitMQ: envelopes go in through the broker, mail comes out at SMTP sinks.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import { encryptedSampleMessage, sampleMessage } from './fixtures.ts';
import {
  dsnsOf,
  receivedFor,
  type SmtpSink,
  startWorld,
  submit,
  trace,
  type World,
  waitFor,
  waitForState,
} from './harness.ts';

/** How the sinks answer RCPT TO, by the recipient's local part. */
function recipientPolicy() {
  const seen = new Map<string, number>();
  return (rcpt: string) => {
    const local = rcpt.slice(0, rcpt.indexOf('@'));
    if (local.startsWith('perm')) return { code: 550, message: '5.1.1 no such user here' };
    if (local.startsWith('never')) return { code: 451, message: '4.3.0 try again later' };
    if (local.startsWith('later')) {
      const n = (seen.get(rcpt) ?? 0) + 1;
      seen.set(rcpt, n);
      return n === 1 ? { code: 451, message: '4.7.1 greylisted, come back later' } : undefined;
    }
    return undefined;
  };
}

describe('deliver', () => {
  let relay: SmtpSink;
  let smarthost: SmtpSink;
  let world: World;

  before(async () => {
    world = await startWorld();
    ({ relay, smarthost } = world);
    relay.rejectRecipient = recipientPolicy();
    smarthost.rejectRecipient = recipientPolicy();
  });

  after(async () => {
    await world?.close();
  });

  it('delivers an envelope published twice only once', async () => {
    await waitFor('nothing in flight', async () => (await world.deliver.metric('smgw_deliver_in_flight')) === 0);
    const handledBefore = await world.deliver.metric('smgw_deliver_envelopes_total', { outcome: 'next' });
    const parkedDepth = async () => (await world.vhost.queueDepth('smgw.deliver.parked')) ?? 0;
    const parkedBefore = await parkedDepth();
    const envelope = await submit(world, sampleMessage(), { recipients: ['doppelt@behoerde.example'] });
    await world.publisher.publish(envelope);
    await waitForState(world, envelope.id, 'doppelt@behoerde.example', 'delivered');
    // The copy that finds the recipient being sent waits for it; on a loaded machine the send can outlast this world's
    // short ladder (200 ms twice), and the copy is parked instead of finding it delivered: it sent nothing either way.
    await waitFor('both copies handled', async () => {
      const handled = await world.deliver.metric('smgw_deliver_envelopes_total', { outcome: 'next' });
      const settled =
        handled === handledBefore + 2 || (handled === handledBefore + 1 && (await parkedDepth()) === parkedBefore + 1);
      return settled && (await world.deliver.metric('smgw_deliver_in_flight')) === 0;
    });
    assert.equal(receivedFor(relay, 'doppelt@behoerde.example').length, 1);
  });

  it('delivers an inbound message to the relay byte for byte, with its envelope sender and recipient', async () => {
    const message = sampleMessage('Byte für Byte');
    const envelope = await submit(world, message, { recipients: ['eingang-a@behoerde.example'] });
    const t = await waitForState(world, envelope.id, 'eingang-a@behoerde.example', 'delivered');
    const [received, ...more] = receivedFor(relay, 'eingang-a@behoerde.example');
    assert.equal(more.length, 0);
    assert.ok(received?.raw.equals(message), 'the message arrives unchanged');
    assert.equal(received?.mailFrom, 'absender@extern.example');
    assert.deepEqual(received?.rcptTo, ['eingang-a@behoerde.example']);
    const event = t.events.find((e) => e.event === 'recipient.delivered');
    assert.equal(event?.recipient, 'eingang-a@behoerde.example');
    assert.match(event?.reason ?? '', /^250 /);
  });

  it('sends two recipients of one destination in one SMTP transaction', async () => {
    const recipients = ['zwei-a@behoerde.example', 'zwei-b@behoerde.example'];
    const envelope = await submit(world, sampleMessage(), { recipients });
    for (const r of recipients) await waitForState(world, envelope.id, r, 'delivered');
    const received = relay.messages.filter((m) => m.rcptTo.some((r) => recipients.includes(r)));
    assert.equal(received.length, 1);
    assert.deepEqual(received[0]?.rcptTo, recipients);
  });

  it('retries a recipient answered 451 through the delay queue and does not send the accepted one again', async () => {
    const envelope = await submit(world, sampleMessage(), {
      recipients: ['sofort-c@behoerde.example', 'later-c@behoerde.example'],
    });
    const t = await waitForState(world, envelope.id, 'later-c@behoerde.example', 'delivered');
    assert.equal(t.recipients.find((r) => r.address === 'sofort-c@behoerde.example')?.state, 'delivered');
    assert.equal(receivedFor(relay, 'sofort-c@behoerde.example').length, 1, 'the accepted recipient got one copy');
    const later = receivedFor(relay, 'later-c@behoerde.example');
    assert.equal(later.length, 1);
    assert.deepEqual(later[0]?.rcptTo, ['later-c@behoerde.example'], 'the retry carries only the deferred recipient');
    const events = t.events.filter((e) => e.recipient === 'later-c@behoerde.example').map((e) => [e.event, e.code]);
    assert.deepEqual(events, [
      ['recipient.deferred', 'DELIVERY_DEFERRED'],
      ['recipient.delivered', null],
    ]);
    const { rows } = await world.db.pool.query(
      'select recipient, attempts from deliveries where message_id = $1 order by 1',
      [envelope.id],
    );
    assert.deepEqual(
      rows.map((r) => [r.recipient, r.attempts]),
      [
        ['later-c@behoerde.example', 2],
        ['sofort-c@behoerde.example', 1],
      ],
    );
  });

  it('bounces a recipient answered 550 and delivers a DSN to the sender', async () => {
    const envelope = await submit(world, sampleMessage('Wird abgelehnt'), {
      mailFrom: 'absender-d@extern.example',
      recipients: ['perm-d@behoerde.example'],
    });
    const t = await waitForState(world, envelope.id, 'perm-d@behoerde.example', 'bounced');
    assert.equal(t.events.find((e) => e.event === 'recipient.bounced')?.code, 'DELIVERY_BOUNCED');
    assert.ok(t.events.some((e) => e.event === 'dsn.generated'));
    const [dsn] = await waitFor('the DSN at the sender', () => {
      const got = receivedFor(smarthost, 'absender-d@extern.example');
      return got.length > 0 ? got : undefined;
    });
    assert.equal(dsn?.mailFrom, '', 'a DSN has the null sender');
    const parsed = await simpleParser(dsn?.raw ?? Buffer.alloc(0));
    const contentType = parsed.headers.get('content-type') as { value: string } | undefined;
    assert.equal(contentType?.value, 'multipart/report');
    assert.match(parsed.text ?? '', /perm-d@behoerde\.example/);
    assert.match(parsed.text ?? '', /Final-Recipient: rfc822; perm-d@behoerde\.example/);
    assert.match(parsed.text ?? '', /Status: 5\.1\.1/);
    // The sender is outside the agencies: not the relay's name or its reply.
    assert.doesNotMatch(parsed.text ?? '', /no such user here|Diagnostic-Code|Remote-MTA/);
    assert.doesNotMatch(dsn?.raw.toString() ?? '', /Sehr geehrte Damen und Herren/, 'headers only, no content');
    const [recorded] = await dsnsOf(world, envelope.id);
    assert.equal(recorded?.mail_from, '');
    await waitForState(world, recorded?.id ?? '', 'absender-d@extern.example', 'delivered');
  });

  it('bounces with a DSN saying the retry period expired once the ladder is exhausted', async () => {
    const envelope = await submit(world, sampleMessage(), {
      direction: 'internal',
      mailFrom: 'sb-e@behoerde.example',
      recipients: ['never-e@behoerde.example'],
      client: { listener: 'submission', ip: '10.0.0.7', helo: 'mail.behoerde.example', tls: true },
    });
    const t = await waitForState(world, envelope.id, 'never-e@behoerde.example', 'bounced');
    const codes = t.events.filter((e) => e.recipient === 'never-e@behoerde.example').map((e) => e.code);
    assert.deepEqual(codes, ['DELIVERY_DEFERRED', 'DELIVERY_DEFERRED', 'DELIVERY_EXPIRED']);
    const [dsn] = await waitFor('the DSN at the agency sender', () => {
      const got = receivedFor(relay, 'sb-e@behoerde.example');
      return got.length > 0 ? got : undefined;
    });
    const parsed = await simpleParser(dsn?.raw ?? Buffer.alloc(0));
    assert.match(parsed.text ?? '', /retry period expired/);
    assert.match(parsed.text ?? '', /Status: 4\.3\.0/);
  });

  it('parks an outbound message without a crypto verdict and sends nothing', async () => {
    const envelope = await submit(world, sampleMessage(), {
      direction: 'outbound',
      mailFrom: 'sb-g@behoerde.example',
      recipients: ['buerger-g@firma.example'],
      client: { listener: 'submission', ip: '10.0.0.7', helo: 'mail.behoerde.example', tls: true },
    });
    const parked = await waitFor('the park in the trace', async () =>
      (await trace(world, envelope.id)).events.find((e) => e.event === 'envelope.parked'),
    );
    assert.equal(parked.code, 'OUTBOUND_NOT_ENCRYPTED');
    await waitFor(
      'the envelope in smgw.deliver.parked',
      async () => ((await world.vhost.queueDepth('smgw.deliver.parked')) ?? 0) >= 1,
    );
    assert.equal(receivedFor(smarthost, 'buerger-g@firma.example').length, 0);
    const { rows } = await world.db.pool.query('select * from deliveries where message_id = $1', [envelope.id]);
    assert.equal(rows.length, 0, 'no delivery was even attempted');
  });

  it('sends an encrypted outbound message to the smarthost', async () => {
    const message = encryptedSampleMessage('verschlüsselt');
    const envelope = await submit(world, message, {
      direction: 'outbound',
      mailFrom: 'sb-h@behoerde.example',
      recipients: ['buerger-h@firma.example'],
      client: { listener: 'submission', ip: '10.0.0.7', helo: 'mail.behoerde.example', tls: true },
      verdicts: { crypto: { status: 'encrypted', at: new Date().toISOString() } },
    });
    await waitForState(world, envelope.id, 'buerger-h@firma.example', 'delivered');
    const received = receivedFor(smarthost, 'buerger-h@firma.example');
    assert.equal(received.length, 1);
    assert.ok(received[0]?.raw.equals(message));
    assert.equal(receivedFor(relay, 'buerger-h@firma.example').length, 0);
  });

  it('never sends outbound plaintext, even with an "encrypted" verdict: the bytes decide', async () => {
    const envelope = await submit(world, sampleMessage('Klartext'), {
      direction: 'outbound',
      mailFrom: 'sb-x@behoerde.example',
      recipients: ['buerger-x@firma.example'],
      client: { listener: 'submission', ip: '10.0.0.7', helo: 'mail.behoerde.example', tls: true },
      verdicts: { crypto: { status: 'encrypted', at: new Date().toISOString() } },
    });
    const parked = await waitFor('the park in the trace', async () =>
      (await trace(world, envelope.id)).events.find((e) => e.event === 'envelope.parked'),
    );
    assert.equal(parked.code, 'OUTBOUND_NOT_ENCRYPTED');
    assert.equal(receivedFor(smarthost, 'buerger-x@firma.example').length, 0);
  });

  it('makes no DSN when a null-sender message bounces', async () => {
    const envelope = await submit(world, sampleMessage(), {
      direction: 'generated',
      mailFrom: '',
      recipients: ['perm-i@behoerde.example'],
      client: { listener: 'gateway', ip: '', helo: 'smgw.test', tls: false },
    });
    const t = await waitForState(world, envelope.id, 'perm-i@behoerde.example', 'bounced');
    assert.equal(
      t.events.some((e) => e.event === 'dsn.generated'),
      false,
    );
    assert.deepEqual(await dsnsOf(world, envelope.id), []);
  });

  it('makes no DSN for a recipient that asked for none (NOTIFY=NEVER)', async () => {
    const envelope = await submit(world, sampleMessage(), {
      mailFrom: 'absender-k@extern.example',
      recipients: ['perm-k@behoerde.example'],
      dsn: { notify: { 'perm-k@behoerde.example': ['NEVER'] } },
    });
    await waitForState(world, envelope.id, 'perm-k@behoerde.example', 'bounced');
    assert.deepEqual(await dsnsOf(world, envelope.id), []);
  });

  it('is ready when broker and database are, and counts recipients by result', async () => {
    const res = await fetch(`http://127.0.0.1:${world.deliver.healthPort}/readyz`);
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { checks: unknown }).checks, { amqp: true, db: true });
    assert.ok((await world.deliver.metric('smgw_deliver_recipients_total', { result: 'delivered' })) > 0);
    assert.ok((await world.deliver.metric('smgw_deliver_recipients_total', { result: 'bounced' })) > 0);
    assert.ok((await world.deliver.metric('smgw_deliver_transports')) >= 1);
  });
});
