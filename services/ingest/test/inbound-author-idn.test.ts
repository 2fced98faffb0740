// The MX port's rule "no agency address in From or Sender" (README "inbound") for an agency with an IDN domain: a
// From written in raw UTF-8 (8BITMIME is offered; mail clients show RFC 6532 headers as UTF-8) is judged as shown,
// not byte by byte as Latin-1, where it named no agency domain and passed. A From whose domain is no name is refused
// (550), not answered 451 (the sending server would retry for days) by a normaliser that threw.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningIngest } from '../src/service.ts';
import { createTestWorld, type TestWorld } from './harness.ts';
import { SmtpTestClient } from './smtp-client.ts';

describe('agency addresses of an IDN domain in From on the MX port', () => {
  let world: TestWorld;
  let ingest: RunningIngest;

  before(async () => {
    world = await createTestWorld();
    ({ ingest } = await world.start({
      SMGW_INTERNAL_DOMAINS: 'behoerde.example,bücher.example',
      SMGW_MAIL_AUTH: 'off',
      SMGW_RECIPIENT_VERIFY: 'off',
    }));
  });
  after(() => world.close());

  async function send(from: Buffer) {
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    assert.equal((await client.command('EHLO sender.example')).code, 250);
    const body = Buffer.concat([
      Buffer.from('From: ', 'latin1'),
      from,
      Buffer.from('\r\nTo: amt@xn--bcher-kva.example\r\nSubject: Bescheid\r\n\r\nHallo\r\n', 'latin1'),
    ]);
    const reply = await client.sendMail({ from: 'x@extern.example', to: ['amt@xn--bcher-kva.example'], body });
    await client.quit();
    return reply.final?.text ?? '';
  }

  /** A message to `to` with SMTPUTF8 over a session of its own; the client's commands go as Latin-1, so U-labels as their UTF-8 bytes. */
  async function sendTo(port: number, to: string[]) {
    const { client } = await SmtpTestClient.open(port);
    assert.equal((await client.command('EHLO sender.example')).code, 250);
    const reply = await client.sendMail({
      from: 'x@extern.example',
      to: to.map((address) => Buffer.from(address, 'utf8').toString('latin1')),
      mailParams: 'SMTPUTF8',
      body: 'From: x@extern.example\r\nTo: amt@xn--bcher-kva.example\r\nSubject: Bescheid\r\n\r\nHallo\r\n',
    });
    await client.quit();
    return reply;
  }

  it('refuses the agency address written as its A-label', async () => {
    assert.match(await send(Buffer.from('Chefin <chefin@xn--bcher-kva.example>')), /^550 5\.7\.1/);
  });

  it('refuses the same agency address written in UTF-8', async () => {
    assert.match(await send(Buffer.from('Chefin <chefin@bücher.example>', 'utf8')), /^550 5\.7\.1/);
  });

  it('takes a stranger’s own From in UTF-8', async () => {
    assert.match(await send(Buffer.from('Jörg <jörg@bücherei.example>', 'utf8')), /^250 /);
  });

  it('takes a mailbox written with its U-label and with its A-label as one recipient, under the A-label', async () => {
    await world.takeInboundEnvelopes();
    const reply = await sendTo(ingest.inboundPort, [
      'amt@bücher.example',
      'amt@XN--BCHER-KVA.example',
      'poststelle@bücher.example',
    ]);
    assert.deepEqual(
      reply.rcpt.map((r) => r.code),
      [250, 250, 250],
    );
    assert.match(reply.final?.text ?? '', /^250 /);
    const envelopes = await world.takeInboundEnvelopes();
    assert.deepEqual(
      envelopes.map((e) => e.recipients),
      [['amt@xn--bcher-kva.example', 'poststelle@xn--bcher-kva.example']],
    );
  });

  it('counts mailboxes, not spellings, against SMGW_SMTP_MAX_RECIPIENTS', async () => {
    await world.takeInboundEnvelopes();
    const { ingest: strict } = await world.start({
      SMGW_INTERNAL_DOMAINS: 'behoerde.example,bücher.example',
      SMGW_MAIL_AUTH: 'off',
      SMGW_RECIPIENT_VERIFY: 'off',
      SMGW_SMTP_MAX_RECIPIENTS: '2',
    });
    // One mailbox in five spellings (U-label, A-label, full-width letters, upper case), then a second and a third.
    const spellings = ['amt@bücher.example', 'amt@xn--bcher-kva.example', 'amt@ｂücher.example', 'amt@BÜCHER.example'];
    const reply = await sendTo(strict.inboundPort, [
      ...spellings,
      'amt@bücher.example',
      'post@bücher.example',
      'dritte@bücher.example',
    ]);
    assert.deepEqual(
      reply.rcpt.map((r) => r.code),
      [250, 250, 250, 250, 250, 250, 452],
    );
    assert.match(reply.final?.text ?? '', /^250 /);
    const envelopes = await world.takeInboundEnvelopes();
    assert.deepEqual(
      envelopes.map((e) => [...e.recipients].sort()),
      [['amt@xn--bcher-kva.example', 'post@xn--bcher-kva.example']],
    );
  });

  it('answers a From whose domain is no name with 550 5.7.1, not 451', async () => {
    for (const from of ['chefin@behoerde.example..', 'x@[behoerde.example]']) {
      assert.match(await send(Buffer.from(from, 'latin1')), /^550 5\.7\.1/, from);
    }
  });
});
