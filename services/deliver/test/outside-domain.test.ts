// An address outside the agencies whose domain is an IPv4 address or a bare host (x@127.0.0.1, x@localhost): the real
// handler, real PostgreSQL, an SMTP sink on 127.0.0.1 that a test resolver makes every name's address, loopback
// allowed for the MX (testOnlyAllowLoopbackMx). Without the rule, mx-connect connected straight to an address given as
// domain (no MX lookup; in production any public one, on port 25) and looked a bare host up; now deliver refuses
// both before any lookup or connection, whoever chose the address (an agency's RCPT, a stranger's MAIL FROM that gets
// a DSN).
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type Envelope, newMessageId } from '@smgw/envelope';
import type { HandlerContext } from '@smgw/mq';
import { createTestDatabase, type SmtpSink, startSmtpSink, type TestDatabase } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
import { createDeliverHandler, type DeliverDeps } from '../src/deliver-envelope.ts';
import { createTransports } from '../src/transports.ts';
import { encryptedSampleMessage, sampleEnvelope } from './fixtures.ts';
import { handlerDepsFor, testLogger } from './harness.ts';

/** No name has an MX; every name's address (localhost, mailhost, anything) is 127.0.0.1, where the sink listens. */
function everyNameOnLoopback(name: string, type: string) {
  if (type === 'A') return ['127.0.0.1'];
  throw Object.assign(new Error(`ENODATA ${name} (test resolver)`), { code: 'ENODATA' });
}

function context(): HandlerContext {
  return { attempt: 0, lastAttempt: false, log: testLogger, signal: new AbortController().signal };
}

describe('deliver and a domain outside that is no name of the internet', () => {
  let db: TestDatabase;
  let sink: SmtpSink;
  let deps: DeliverDeps;
  let transports: ReturnType<typeof createTransports>;

  before(async () => {
    db = await createTestDatabase();
    sink = await startSmtpSink();
    transports = createTransports({
      hostname: 'smgw.test',
      connectionsPerDestination: 1,
      timeoutMs: 5000,
      requireTlsOutside: false,
      testOnlyAllowLoopbackMx: true,
      mxConnectOptions: {
        port: sink.port,
        dnsOptions: { resolveRecords: everyNameOnLoopback },
        mtaSts: { enabled: false },
      },
    });
    deps = { ...(await handlerDepsFor(db, 1)), transports, publish: async () => {} };
  });
  after(async () => {
    transports?.close();
    await sink?.close();
    await db?.drop();
  });

  async function stored(overrides: Partial<Envelope>): Promise<Envelope> {
    const id = newMessageId();
    const blob = await deps.blobStore.put(Readable.from([encryptedSampleMessage()]), { messageId: id });
    const envelope = sampleEnvelope({ id, blob, receivedAt: new Date().toISOString(), ...overrides });
    await recordMessage(db.pool, envelope);
    return envelope;
  }

  async function deliveryOf(envelope: Envelope) {
    const { rows } = await db.pool.query<{ state: string; last_response: string }>(
      'select state, last_response from deliveries where message_id = $1',
      [envelope.id],
    );
    return rows;
  }

  it('sends to a name of the internet at the same sink (the world works)', async () => {
    const envelope = await stored({
      direction: 'outbound',
      mailFrom: 'sb@behoerde.example',
      recipients: ['x@firma.example'],
      verdicts: { crypto: { status: 'encrypted', at: new Date().toISOString() } },
    });
    await createDeliverHandler(deps)(envelope, context());
    assert.equal((await deliveryOf(envelope))[0]?.state, 'delivered');
    assert.ok(sink.messages.some((m) => m.rcptTo.includes('x@firma.example')));
  });

  const cases = [
    ['an IPv4 address as domain (connected to without a lookup)', 'x@127.0.0.1'],
    ['a short IPv4 form', 'x@127.1'],
    ['a bare host (localhost)', 'x@localhost'],
    ['a bare host name', 'x@mailhost'],
    ['a private-use name', 'x@db.corp.internal'],
  ] as const;
  for (const [what, recipient] of cases) {
    it(`bounces ${what}, ${recipient}, without connecting: an agency's recipient`, async () => {
      const before = sink.messages.length;
      const envelope = await stored({
        direction: 'outbound',
        mailFrom: 'sb@behoerde.example',
        recipients: [recipient],
        verdicts: { crypto: { status: 'encrypted', at: new Date().toISOString() } },
      });
      await createDeliverHandler(deps)(envelope, context());
      assert.equal(sink.messages.length, before, 'nothing reached the sink');
      const [delivery] = await deliveryOf(envelope);
      assert.equal(delivery?.state, 'bounced');
      assert.match(delivery?.last_response ?? '', /no name of the internet/);
    });

    it(`sends no DSN or notice to ${recipient} (a stranger's forged MAIL FROM)`, async () => {
      const before = sink.messages.length;
      // What deliver publishes for a bounce to that sender: generated, from the null sender.
      const dsn = await stored({ direction: 'generated', mailFrom: '', recipients: [recipient] });
      await createDeliverHandler(deps)(dsn, context());
      assert.equal(sink.messages.length, before, 'nothing reached the sink');
      assert.equal((await deliveryOf(dsn))[0]?.state, 'bounced');
    });
  }
});
