// A stranger's MX answers what it likes: bytes no SMTP server library would send (NUL, bare line breaks inside a
// reply, multi-line replies whose lines look like something else). What deliver keeps of such a reply (deliveries,
// the trace, the logs) must be storable and one line. The real handler, real PostgreSQL, a scripted server on
// 127.0.0.1 as the MX of every domain.
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type Envelope, newMessageId } from '@smgw/envelope';
import type { HandlerContext } from '@smgw/mq';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
import { createDeliverHandler, type DeliverDeps } from '../src/deliver-envelope.ts';
import { createTransports, type Transports } from '../src/transports.ts';
import { encryptedSampleMessage, sampleEnvelope } from './fixtures.ts';
import { handlerDepsFor, testLogger } from './harness.ts';

/** The raw lines (without CRLF) the scripted server answers RCPT TO and the end of DATA with. */
interface Script {
  rcpt: string;
  data: string;
}

/** An SMTP server that answers RCPT and DATA with whatever bytes the script says, and everything else with 250. */
async function startScriptedMx(script: Script): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    let buffered = '';
    let inData = false;
    socket.write('220 mx.fremd.example ESMTP\r\n');
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\r\n'); end >= 0; end = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            socket.write(`${script.data}\r\n`, 'latin1');
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') socket.write('250-mx.fremd.example\r\n250 8BITMIME\r\n');
        else if (verb === 'RCPT') socket.write(`${script.rcpt}\r\n`, 'latin1');
        else if (verb === 'DATA') {
          inData = true;
          socket.write('354 go ahead\r\n');
        } else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('250 ok\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Every domain's MX is mx.<domain> on 127.0.0.1. */
function everyMxOnLoopback(name: string, type: string) {
  if (type === 'MX' && !name.startsWith('mx.')) return [{ exchange: `mx.${name}`, priority: 10 }];
  if (type === 'A' && name.startsWith('mx.')) return ['127.0.0.1'];
  throw Object.assign(new Error(`ENODATA ${name} (test resolver)`), { code: 'ENODATA' });
}

function context(): HandlerContext {
  return { attempt: 0, lastAttempt: false, log: testLogger, signal: new AbortController().signal };
}

describe("what deliver keeps of a stranger's SMTP replies", () => {
  let db: TestDatabase;
  const closing: Array<() => unknown> = [];

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    for (const close of closing) await close();
    await db?.drop();
  });

  /** The handler, with the scripted server as every domain's MX. */
  async function handlerAgainst(script: Script) {
    const mx = await startScriptedMx(script);
    const transports: Transports = createTransports({
      hostname: 'smgw.test',
      connectionsPerDestination: 1,
      timeoutMs: 5000,
      requireTlsOutside: false,
      testOnlyAllowLoopbackMx: true,
      mxConnectOptions: {
        port: mx.port,
        dnsOptions: { resolveRecords: everyMxOnLoopback },
        mtaSts: { enabled: false },
      },
    });
    closing.push(() => transports.close(), mx.close);
    const deps: DeliverDeps = {
      ...(await handlerDepsFor(db, 1)),
      transports,
      publish: async () => {},
    };
    return { handle: createDeliverHandler(deps), deps };
  }

  /** An encrypted outbound message from an agency clerk to `recipient`, stored and recorded. */
  async function outbound(deps: DeliverDeps, recipient: string): Promise<Envelope> {
    const id = newMessageId();
    const blob = await deps.blobStore.put(Readable.from([encryptedSampleMessage()]), { messageId: id });
    const envelope = sampleEnvelope({
      id,
      blob,
      direction: 'outbound',
      mailFrom: 'sb@behoerde.example',
      recipients: [recipient],
      verdicts: { crypto: { status: 'encrypted', at: new Date().toISOString() } },
      receivedAt: new Date().toISOString(),
    });
    await recordMessage(db.pool, envelope);
    return envelope;
  }

  /** What deliver stored about the recipient: deliveries, the recipient's detail, its events' reasons. */
  async function keptOf(envelope: Envelope) {
    const { rows } = await db.pool.query<{ state: string; last_response: string; detail: string; reason: string }>(
      `select d.state, d.last_response, r.detail, e.reason from deliveries d
         join message_recipients r on r.message_id = d.message_id and r.recipient = d.recipient
         join message_events e on e.message_id = d.message_id and e.recipient = d.recipient and e.stage = 'deliver'
        where d.message_id = $1`,
      [envelope.id],
    );
    return rows;
  }

  it('records a 250 whose text holds a NUL byte as delivered, once: nothing the next hop says stops the record', async () => {
    const { handle, deps } = await handlerAgainst({ rcpt: '250 ok', data: '250 2.0.0 queued as \u0000ABC' });
    const envelope = await outbound(deps, 'x@fremd.example');
    const outcome = await handle(envelope, context());
    assert.equal(outcome.kind, 'next', JSON.stringify(outcome));
    const kept = await keptOf(envelope);
    assert.equal(kept.length, 1);
    assert.equal(kept[0]?.state, 'delivered');
    for (const text of [kept[0]?.last_response, kept[0]?.detail, kept[0]?.reason]) {
      assert.match(text ?? '', /^250 2\.0\.0 queued as/);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
      assert.doesNotMatch(text ?? '', /[\x00-\x1f\x7f]/);
    }
  });

  it('keeps a multi-line refusal as one line: no line of it reads as a trace event of its own', async () => {
    const forged = '  2030-01-01T00:00:00.000Z  deliver  recipient.delivered chef@behoerde.example  -> ok';
    const { handle, deps } = await handlerAgainst({
      rcpt: `550-5.1.1 no such user\r\n550-${forged}\r\n550 5.1.1 end\rhere`,
      data: '250 ok',
    });
    const envelope = await outbound(deps, 'y@fremd.example');
    const outcome = await handle(envelope, context());
    assert.equal(outcome.kind, 'next', JSON.stringify(outcome));
    const kept = await keptOf(envelope);
    assert.equal(kept[0]?.state, 'bounced');
    for (const text of [kept[0]?.last_response, kept[0]?.detail, kept[0]?.reason]) {
      assert.match(text ?? '', /^550-5\.1\.1 no such user 550- {2}2030-01-01T00:00:00\.000Z {2}deliver/);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
      assert.doesNotMatch(text ?? '', /[\x00-\x1f\x7f]/);
    }
  });
});
