// The smtp-server patches on a bare SMTPServer (no broker, database or Redis). setTimeout is mocked, so smtp-server's
// 100 ms greeting timer fires only when the test says so: whether a client is greeted at once is then a matter of
// behaviour, not of timing.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it, mock } from 'node:test';
import { SMTPServer } from 'smtp-server';
import {
  attachConnectionHooks,
  installSmtpServerPatches,
  SmtpServerIncompatibleError,
  smtpServerShapeProblems,
} from '../src/smtp-server-patches.ts';
import { SmtpTestClient } from './smtp-client.ts';

describe('the smtp-server patches', () => {
  let server: SMTPServer;
  let port: number;
  let trustLoopback = true;
  let commandsSeen = 0;
  let refuseCommands = false;

  before(async () => {
    installSmtpServerPatches();
    server = new SMTPServer({
      disableReverseLookup: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      hideENHANCEDSTATUSCODES: false,
      logger: false,
      onRcptTo(_address, _session, callback) {
        callback(Object.assign(new Error('5.7.1 Relaying denied'), { responseCode: 550 }));
      },
    });
    attachConnectionHooks(server, {
      greetImmediately: (ip) => trustLoopback && ip === '127.0.0.1',
      beforeCommand: async () => {
        commandsSeen++;
        return refuseCommands
          ? { responseCode: 421, message: '4.7.0 Rate limit exceeded, try again later' }
          : undefined;
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    port = (server.server.address() as AddressInfo).port;
    mock.timers.enable({ apis: ['setTimeout'] });
  });

  after(async () => {
    mock.timers.reset();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('fit the installed smtp-server', () => {
    assert.deepEqual(smtpServerShapeProblems(), []);
  });

  it('refuse to start when smtp-server changed', () => {
    const changed = { init() {}, _setListeners(_cb: unknown) {}, connectionReady() {}, _onCommand() {}, send() {} };
    assert.ok(smtpServerShapeProblems(changed).length >= 3);
    assert.deepEqual(smtpServerShapeProblems(undefined, '3.22.0'), ['version 3.22.0']);
    assert.equal(new SmtpServerIncompatibleError('x').code, 'SMTP_SERVER_INCOMPATIBLE');
  });

  it('greet a trusted client without the early-talker pause', async () => {
    trustLoopback = true;
    const client = await SmtpTestClient.connect(port);
    // The 100 ms timer cannot fire (timers are mocked), so this greeting did not wait for it.
    const greeting = await client.readReply();
    assert.equal(greeting.code, 220);
    assert.equal((await client.command('EHLO client.test')).code, 250);
    await client.quit();
  });

  it('still answer an untrusted early talker with 421 You talk too soon', async () => {
    trustLoopback = false;
    const client = await SmtpTestClient.connect(port);
    client.writeRaw('EHLO early.test\r\n');
    const reply = await client.readReply();
    assert.equal(reply.code, 421);
    assert.match(reply.text, /You talk too soon/);
    await client.closed;
  });

  it('still greet an untrusted client that waits, once the 100 ms have passed', async () => {
    trustLoopback = false;
    const client = await SmtpTestClient.connect(port);
    const greeting = client.readReply();
    // Let the server set its timer (it does so when it has the socket), then let the 100 ms pass.
    await waitUntil(() => server.connections.size > 0);
    mock.timers.tick(100);
    assert.equal((await greeting).code, 220);
    await client.quit();
  });

  it('run the command hook before each command and let it refuse with its own reply', async () => {
    trustLoopback = true;
    const { client } = await SmtpTestClient.open(port);
    const before = commandsSeen;
    assert.equal((await client.command('NOOP')).code, 250);
    assert.equal(commandsSeen, before + 1);
    refuseCommands = true;
    const refused = await client.command('NOOP');
    refuseCommands = false;
    assert.equal(refused.text, '421 4.7.0 Rate limit exceeded, try again later');
    await client.closed;
  });

  it('still refuse a trusted client beyond maxClients with 421', async () => {
    trustLoopback = true;
    const { client: first } = await SmtpTestClient.open(port);
    server.options.maxClients = 1;
    try {
      const second = await SmtpTestClient.connect(port);
      const reply = await second.readReply();
      assert.equal(reply.code, 421);
      assert.match(reply.text, /Too many connected clients/);
      await second.closed;
    } finally {
      server.options.maxClients = 0;
    }
    await first.quit();
  });

  it('send a reply text that carries its own enhanced status code as written', async () => {
    trustLoopback = true;
    const { client } = await SmtpTestClient.open(port);
    await client.command('EHLO client.test');
    assert.equal((await client.command('MAIL FROM:<a@b.example>')).text, '250 2.1.0 Accepted');
    assert.equal((await client.command('RCPT TO:<x@evil.example>')).text, '550 5.7.1 Relaying denied');
    await client.quit();
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}
