// A PostgreSQL restart as each service sees it: every one of its database sessions terminated at once
// (pg_terminate_backend on exactly that process's sessions, so nothing else sharing the server is disturbed). The
// service must stay up and work again as soon as the database answers: the chaos suite saw ingest and mailbox exit 1
// after a restart (an 'error' event of a checked-out pg client without a listener).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  databaseSessionsOf,
  startTestGateway,
  type TestGateway,
  terminateDatabaseSessionsOf,
  waitFor,
} from '@smgw/testing';
import nodemailer from 'nodemailer';

describe('a service whose database sessions are all terminated', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startTestGateway({
      services: ['ingest', 'encrypt', 'scan', 'signature-verify', 'deliver', 'mailbox', 'admin'],
    });
  });
  after(async () => {
    await gw?.close();
  });

  async function send(subject: string): Promise<void> {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: gw.inboundPort,
      secure: false,
      tls: { rejectUnauthorized: false },
    });
    try {
      await transport.sendMail({
        envelope: { from: 'buergerin@example.org', to: ['amt@behoerde.example'] },
        raw: `From: buergerin@example.org\r\nTo: amt@behoerde.example\r\nSubject: ${subject}\r\n\r\nHallo.\r\n`,
      });
    } finally {
      transport.close();
    }
  }

  async function killSessionsWhileBusy(names: string[], rounds: number): Promise<void> {
    for (let round = 0; round < rounds; round++) {
      // Mail on its way while the sessions go: a transaction of ingest or a claim of deliver is cut in the middle.
      const sending = send(`during round ${round}`).catch(() => {});
      for (const name of names) {
        const pid = gw.service(name).child?.pid;
        assert.ok(pid, `${name} runs`);
        await terminateDatabaseSessionsOf(gw.db.pool, pid);
      }
      await sending;
      await sleep(200);
    }
  }

  it('stays up, opens new sessions and accepts and delivers mail again', async () => {
    const names = ['ingest', 'encrypt', 'scan', 'signature-verify', 'deliver', 'mailbox', 'admin'];
    // Mail through every stage first, so each service holds sessions (idle ones close after a while).
    await send('before');
    await waitFor('the first message to reach the relay', () => gw.relay.messages.length > 0, { timeoutMs: 60_000 });
    const held = await Promise.all(
      names.map(async (name) => (await databaseSessionsOf(gw.db.pool, gw.service(name).child?.pid ?? 0)).length),
    );
    assert.ok(
      held.some((n) => n > 0),
      'the services hold database sessions',
    );
    await killSessionsWhileBusy(names, 5);

    for (const name of names) {
      const service = gw.service(name);
      assert.equal(service.child?.exitCode, null, `${name} exited:\n${service.output.join('').slice(-3000)}`);
      assert.equal(service.child?.signalCode, null, `${name} was killed`);
      await waitFor(`${name} to be ready again`, async () => {
        const res = await fetch(`http://127.0.0.1:${service.healthPort}/readyz`).catch(() => undefined);
        return res?.ok;
      });
    }
    const before = gw.relay.messages.length;
    await waitFor('a message after the sessions were killed to be accepted', async () => {
      await send('after');
      return true;
    });
    await waitFor(
      'the message to reach the relay',
      () => gw.relay.messages.slice(before).some((m) => m.raw.toString('latin1').includes('Subject: after')),
      { timeoutMs: 60_000 },
    );
  });
});
