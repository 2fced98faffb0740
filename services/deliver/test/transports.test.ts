import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { cidrList, inDomains } from '@smgw/config';
// @smgw/testing is not a dependency of this package (yet); its source is imported directly.
import { type SmtpSink, startSmtpSink } from '@smgw/testing';
import { checkOutboundGuard } from '../src/outbound-guard.ts';
import { type Destination, routeRecipient } from '../src/route-recipients.ts';
import { MAX_REMOTE_TEXT, type RecipientAnswer, sendToDestination } from '../src/send-to-destination.ts';
import {
  connectFirstReachable,
  createTransports,
  inClosedNetwork,
  mxDnsOptions,
  RELAY_LOOKUP_CACHE_MS,
  type TransportSettings,
  type Transports,
  withLookupCache,
} from '../src/transports.ts';
import { NOT_PLAIN_AGENCY_LOOKALIKES, sampleEnvelope, sampleMessage, selfSignedCertificate } from './fixtures.ts';

/** A port nothing listens on (taken from the OS, then released). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function dnsError(code: string): Error {
  return Object.assign(new Error(`${code} (test resolver)`), { code });
}

/** A resolver that knows one domain, whose MX is this machine; every other name does not exist. */
function resolverFor(domain: string) {
  return (name: string, type: string) => {
    if (name === domain && type === 'MX') return [{ exchange: `mx.${domain}`, priority: 10 }];
    if (name === `mx.${domain}` && type === 'A') return ['127.0.0.1'];
    if (name === domain || name === `mx.${domain}` || name.endsWith(`.${domain}`)) throw dnsError('ENODATA');
    throw dnsError('ENOTFOUND');
  };
}

describe('transports', () => {
  let sink: SmtpSink;
  const settings = (overrides: Partial<TransportSettings> = {}): TransportSettings => ({
    hostname: 'smgw.test',
    connectionsPerDestination: 2,
    timeoutMs: 5000,
    requireTlsOutside: false,
    ...overrides,
  });

  /** Sends a sample message from sb@behoerde.example to `to` through the transport for `destination`. */
  function sendSample(
    transports: Transports,
    destination: Destination,
    to: string[],
    message = sampleMessage(),
    signal?: AbortSignal,
  ) {
    return transports.use(destination, (t) =>
      sendToDestination(t, {
        raw: Readable.from([message]),
        from: 'sb@behoerde.example',
        to,
        size: message.length,
        signal,
      }),
    );
  }

  before(async () => {
    sink = await startSmtpSink();
  });
  after(async () => {
    await sink.close();
  });

  it('with TLS required, refuses a smarthost whose certificate is not valid, and sends nothing to it', async () => {
    // A smarthost offering STARTTLS with a self-signed certificate: anyone on the path could offer the same.
    const tlsSink = await startSmtpSink({ tls: selfSignedCertificate('localhost', 'DNS:localhost,IP:127.0.0.1') });
    const port = tlsSink.port;
    const smarthost: Destination = { kind: 'smarthost', key: 'smarthost', host: { host: '127.0.0.1', port } };
    try {
      const required = createTransports(settings({ requireTlsOutside: true }));
      try {
        const [answer] = await sendSample(required, smarthost, ['x@buerger.example']);
        assert.equal(answer?.classification.result, 'deferred', JSON.stringify(answer));
        assert.match(answer?.error ?? '', /certificate/i);
        assert.equal(tlsSink.messages.length, 0, 'nothing reached the smarthost');
      } finally {
        required.close();
      }
      // Without the requirement STARTTLS stays opportunistic (what leaves is encrypted already): it is sent.
      const opportunistic = createTransports(settings());
      try {
        const [answer] = await sendSample(opportunistic, smarthost, ['x@buerger.example']);
        assert.equal(answer?.classification.result, 'delivered', JSON.stringify(answer));
        assert.equal(tlsSink.messages[0]?.session.secure, true, 'over STARTTLS all the same');
      } finally {
        opportunistic.close();
      }
    } finally {
      await tlsSink.close();
    }
  });

  it('connects to the first relay host that takes the connection', async () => {
    const dead = await freePort();
    const { socket, host } = await connectFirstReachable(
      [
        { host: '127.0.0.1', port: dead },
        { host: '127.0.0.1', port: sink.port },
      ],
      5000,
    );
    socket.destroy();
    assert.deepEqual(host, { host: '127.0.0.1', port: sink.port });
  });

  it('fails with the last error when no relay host takes the connection', async () => {
    const dead = await freePort();
    await assert.rejects(connectFirstReachable([{ host: '127.0.0.1', port: dead }], 5000), { code: 'ECONNREFUSED' });
  });

  it('reuses one transport per destination and closes it once idle', async () => {
    const transports = createTransports(settings({ idleCloseMs: 60_000 }));
    const destination: Destination = {
      kind: 'smarthost',
      key: 'smarthost:test',
      host: { host: '127.0.0.1', port: sink.port },
    };
    const first = await transports.use(destination, async (t) => t);
    const second = await transports.use(destination, async (t) => t);
    assert.equal(first, second);
    assert.equal(transports.count(), 1);
    assert.equal(transports.closeIdle(Date.now()), 0, 'not idle long enough yet');
    assert.equal(transports.closeIdle(Date.now() + 60_000), 1);
    assert.equal(transports.count(), 0);
    transports.close();
  });

  it('never closes a transport while a message is being sent', async () => {
    const transports = createTransports(settings({ idleCloseMs: 0 }));
    const destination: Destination = {
      kind: 'smarthost',
      key: 'smarthost:test',
      host: { host: '127.0.0.1', port: sink.port },
    };
    await transports.use(destination, async () => {
      assert.equal(transports.closeIdle(Date.now() + 1000), 0);
    });
    assert.equal(transports.closeIdle(Date.now() + 1000), 1);
    transports.close();
  });

  it('delivers through the smarthost over a socket it connected itself (with its own connect timeout)', async () => {
    const transports = createTransports(settings({ connectTimeoutMs: 1000 }));
    const message = sampleMessage('über den Smarthost');
    const destination: Destination = {
      kind: 'smarthost',
      key: 'smarthost:test',
      host: { host: '127.0.0.1', port: sink.port },
    };
    const [answer] = await sendSample(transports, destination, ['y@firma.example'], message);
    const refused = createTransports(settings());
    const elsewhere: Destination = { ...destination, host: { host: '127.0.0.1', port: await freePort() } };
    const [none] = await sendSample(refused, elsewhere, ['z@firma.example']);
    transports.close();
    refused.close();
    assert.equal(answer?.classification.result, 'delivered');
    assert.ok(sink.messages.find((m) => m.rcptTo.includes('y@firma.example'))?.raw.equals(message));
    assert.deepEqual(none?.classification, { result: 'deferred', category: 'network', status: '4.4.1' });
  });

  it("delivers to a domain's MX found by mx-connect, over the socket it opened", async () => {
    const transports = createTransports(
      settings({
        testOnlyAllowLoopbackMx: true,
        mxConnectOptions: {
          port: sink.port,
          dnsOptions: { resolveRecords: resolverFor('firma.example') },
          mtaSts: { enabled: false },
        },
      }),
    );
    const message = sampleMessage('über MX');
    const answers = await transports.use({ kind: 'mx', key: 'mx:firma.example', domain: 'firma.example' }, (t) =>
      sendToDestination(t, {
        raw: Readable.from([message]),
        from: 'sb@behoerde.example',
        to: ['x@firma.example'],
        size: message.length,
      }),
    );
    transports.close();
    assert.equal(answers[0]?.classification.result, 'delivered');
    assert.equal(answers[0]?.remoteMta, 'mx.firma.example');
    const received = sink.messages.find((m) => m.rcptTo.includes('x@firma.example'));
    assert.ok(received?.raw.equals(message));
  });

  it('bounces recipients of a domain that does not exist', async () => {
    const transports = createTransports(
      settings({
        mxConnectOptions: { dnsOptions: { resolveRecords: resolverFor('firma.example') }, mtaSts: { enabled: false } },
      }),
    );
    const message = sampleMessage();
    const answers = await transports.use({ kind: 'mx', key: 'mx:nirgends.example', domain: 'nirgends.example' }, (t) =>
      sendToDestination(t, {
        raw: Readable.from([message]),
        from: 'sb@behoerde.example',
        to: ['x@nirgends.example'],
        size: message.length,
      }),
    );
    transports.close();
    assert.deepEqual(answers[0]?.classification, { result: 'bounced', category: 'dns', status: '5.1.2' });
  });

  it('defers recipients whose MX cannot be reached', async () => {
    const dead = await freePort();
    const transports = createTransports(
      settings({
        testOnlyAllowLoopbackMx: true,
        mxConnectOptions: {
          port: dead,
          dnsOptions: { resolveRecords: resolverFor('firma.example') },
          mtaSts: { enabled: false },
        },
      }),
    );
    const message = sampleMessage();
    const answers = await transports.use({ kind: 'mx', key: 'mx:firma.example', domain: 'firma.example' }, (t) =>
      sendToDestination(t, {
        raw: Readable.from([message]),
        from: 'sb@behoerde.example',
        to: ['y@firma.example'],
        size: message.length,
      }),
    );
    transports.close();
    assert.equal(answers[0]?.classification.result, 'deferred');
  });
  it('gives up finding and connecting to an MX after the SMTP timeout, as a connection failure (DNS that never answers)', async () => {
    const transports = createTransports(
      settings({
        timeoutMs: 200,
        // a resolver that never answers (mx-connect has no overall bound of its own)
        mxConnectOptions: { dnsOptions: { resolveRecords: () => new Promise(() => {}) }, mtaSts: { enabled: false } },
      }),
    );
    const stumm: Destination = { kind: 'mx', key: 'mx:stumm.example', domain: 'stumm.example' };
    // the attempt's own bound, far beyond: it is not what ends this send
    const [answer] = await sendSample(
      transports,
      stumm,
      ['x@stumm.example'],
      sampleMessage(),
      AbortSignal.timeout(60_000),
    );
    transports.close();
    assert.deepEqual(answer?.classification, { result: 'deferred', category: 'network', status: '4.4.1' });
    assert.match(answer?.error ?? '', /^no connection to an MX host of stumm\.example within 200 ms$/);
  });

  it('never lets an MX lead to a loopback address, even when an override brings its own dnsOptions', async () => {
    const transports = createTransports(
      settings({
        mxConnectOptions: {
          port: sink.port,
          // a JavaScript caller could pass the blocks too: they are set after the overrides
          dnsOptions: { resolveRecords: resolverFor('firma.example'), blockLocalAddresses: false } as never,
          mtaSts: { enabled: false },
        },
      }),
    );
    const message = sampleMessage();
    const before = sink.messages.length;
    const answers = await transports.use({ kind: 'mx', key: 'mx:firma.example', domain: 'firma.example' }, (t) =>
      sendToDestination(t, {
        raw: Readable.from([message]),
        from: 'sb@behoerde.example',
        to: ['blocked@firma.example'],
        size: message.length,
      }),
    );
    transports.close();
    assert.notEqual(answers[0]?.classification.result, 'delivered');
    assert.equal(sink.messages.length, before, 'nothing reached the loopback sink');
    assert.deepEqual(mxDnsOptions({ mxConnectOptions: { dnsOptions: { blockReservedNetworks: false } as never } }), {
      blockLocalAddresses: true,
      blockReservedNetworks: true,
    });
    assert.equal(mxDnsOptions({ testOnlyAllowLoopbackMx: true }).blockReservedNetworks, true);
  });

  it("never connects to an MX that leads to the agencies' own relay or networks, even at a public address", async () => {
    // The relay and the agencies' networks may lie in public address space, which blockLocalAddresses does not know.
    const ownAddresses: Record<string, string[]> = {
      'mx.relay-twin.example': ['1.2.3.4'],
      'mx.agency-net.example': [],
    };
    const resolveRecords = (name: string, type: string) => {
      if (type === 'MX' && !name.startsWith('mx.')) return [{ exchange: `mx.${name}`, priority: 10 }];
      if (type === 'A' && ownAddresses[name]?.length) return ownAddresses[name];
      if (type === 'AAAA' && name === 'mx.agency-net.example') return ['::ffff:5.6.7.8'];
      throw dnsError('ENODATA');
    };
    const transports = createTransports(
      settings({
        timeoutMs: 2000,
        connectTimeoutMs: 500,
        closedNetwork: { relayHosts: [{ host: '1.2.3.4', port: 25 }], networks: cidrList('5.6.7.0/24') },
        mxConnectOptions: { dnsOptions: { resolveRecords }, mtaSts: { enabled: false } },
      }),
    );
    try {
      for (const domain of ['relay-twin.example', 'agency-net.example']) {
        const [answer] = await sendSample(transports, { kind: 'mx', key: `mx:${domain}`, domain }, [`x@${domain}`]);
        assert.deepEqual(answer?.classification, { result: 'bounced', category: 'dns', status: '5.1.2' }, domain);
        assert.match(answer?.error ?? '', /an address of the agencies' own network; not connected$/, domain);
      }
    } finally {
      transports.close();
    }
    assert.equal(
      await inClosedNetwork('127.0.0.1', { relayHosts: [{ host: 'localhost', port: 25 }], networks: [] }),
      true,
    );
    assert.equal(
      await inClosedNetwork('1.2.3.5', { relayHosts: [{ host: '1.2.3.4', port: 25 }], networks: [] }),
      false,
    );
    // A relay name that does not exist has no addresses; one that cannot be looked up now stops the connection.
    const failing = (code: string) => async () => {
      throw Object.assign(new Error(`${code} (test)`), { code });
    };
    const relayByName = { relayHosts: [{ host: 'relay.behoerde.example', port: 25 }], networks: [] };
    assert.equal(await inClosedNetwork('1.2.3.4', { ...relayByName, lookup: failing('ENOTFOUND') }), false);
    await assert.rejects(inClosedNetwork('1.2.3.4', { ...relayByName, lookup: failing('EAI_AGAIN') }), /EAI_AGAIN/);
    // The same addresses behind a NAT64 translator or a 6to4 relay, and the IPv4-mapped form.
    const closed = { relayHosts: [{ host: '1.2.3.4', port: 25 }], networks: cidrList('5.6.7.0/24') };
    for (const ip of [
      '64:ff9b::1.2.3.4',
      '64:ff9b::102:304',
      '2002:102:304::1',
      '::ffff:1.2.3.4',
      '64:ff9b::506:708',
    ]) {
      assert.equal(await inClosedNetwork(ip, closed), true, ip);
    }
    for (const ip of ['64:ff9b::1.2.3.5', '2002:102:305::', '2001:db8::102:304', '64:ff9b:1::1.2.3.4']) {
      assert.equal(await inClosedNetwork(ip, closed), false, ip);
    }
  });

  it("looks the relay's name up once for the MX connections of a few seconds, failing closed meanwhile", async () => {
    let lookups = 0;
    const lookup = async () => {
      lookups++;
      return [{ address: '1.2.3.4' }];
    };
    const resolveRecords = (name: string, type: string) => {
      if (type === 'MX') return [{ exchange: `mx.${name}`, priority: 10 }];
      if (type === 'A' && name.startsWith('mx.')) return ['1.2.3.4'];
      throw dnsError('ENODATA');
    };
    const transports = createTransports(
      settings({
        timeoutMs: 2000,
        connectTimeoutMs: 500,
        closedNetwork: { relayHosts: [{ host: 'relay.behoerde.example', port: 25 }], networks: [], lookup },
        mxConnectOptions: { dnsOptions: { resolveRecords }, mtaSts: { enabled: false } },
      }),
    );
    try {
      for (const domain of ['relay-twin.example', 'relay-twin2.example']) {
        const [answer] = await sendSample(transports, { kind: 'mx', key: `mx:${domain}`, domain }, [`x@${domain}`]);
        assert.match(answer?.error ?? '', /agencies' own network/, domain);
      }
    } finally {
      transports.close();
    }
    assert.equal(lookups, 1);

    // Kept for RELAY_LOOKUP_CACHE_MS; a failure is not kept (the next connection asks again, none is made meanwhile).
    let now = 0;
    let fail = true;
    const counted: string[] = [];
    const cached = withLookupCache(
      async (host) => {
        counted.push(host);
        if (fail) throw dnsError('EAI_AGAIN');
        return [{ address: '1.2.3.4' }];
      },
      RELAY_LOOKUP_CACHE_MS,
      () => now,
    );
    const closed = { relayHosts: [{ host: 'relay.behoerde.example', port: 25 }], networks: [], lookup: cached };
    await assert.rejects(inClosedNetwork('1.2.3.4', closed), /EAI_AGAIN/);
    fail = false;
    assert.equal(await inClosedNetwork('1.2.3.4', closed), true);
    assert.equal(await inClosedNetwork('1.2.3.4', closed), true);
    assert.equal(counted.length, 2);
    now += RELAY_LOOKUP_CACHE_MS;
    assert.equal(await inClosedNetwork('1.2.3.4', closed), true);
    assert.equal(counted.length, 3);
  });

  it('sends the relay RCPT TO only the plain addresses it was routed, never what nodemailer would parse out', async () => {
    const table = { internalDomains: ['behoerde.example'], internalRelay: [{ host: '127.0.0.1', port: sink.port }] };
    const transports = createTransports(settings());
    const relay: Destination = { kind: 'relay', key: 'relay:test', hosts: table.internalRelay };
    for (const recipient of NOT_PLAIN_AGENCY_LOOKALIKES) {
      // the router and the last-line guard refuse it ...
      assert.equal(routeRecipient(recipient, table).kind, 'refused');
      const inbound = sampleEnvelope({ direction: 'inbound', recipients: [recipient] });
      assert.equal(checkOutboundGuard(inbound, table.internalDomains)?.code, 'PLAINTEXT_TO_OUTSIDE');
      // ... and so does the send itself, for any caller: the plain recipient beside it still goes
      const message = sampleMessage('entschlüsselter Inhalt');
      const sentBefore = sink.messages.length;
      const answers: RecipientAnswer[] = await transports.use(relay, (t) =>
        sendToDestination(t, {
          raw: Readable.from([message]),
          from: '',
          to: [recipient, 'ok@behoerde.example'],
          size: message.length,
        }),
      );
      const rcpts = sink.messages.slice(sentBefore).flatMap((m) => m.rcptTo);
      assert.deepEqual(rcpts, ['ok@behoerde.example'], JSON.stringify(recipient));
      assert.deepEqual(
        rcpts.filter((r) => !inDomains(r, table.internalDomains)),
        [],
      );
      assert.deepEqual(
        answers.map((a) => [a.recipient, a.classification.result, a.classification.code]),
        [
          [recipient, 'bounced', 'DELIVERY_RECIPIENT_INVALID'],
          ['ok@behoerde.example', 'delivered', undefined],
        ],
      );
    }
    transports.close();
  });

  it(`keeps at most ${MAX_REMOTE_TEXT} characters of a remote reply, saying that it was cut`, async () => {
    const transports = createTransports(settings());
    const relay: Destination = { kind: 'relay', key: 'relay:test', hosts: [{ host: '127.0.0.1', port: sink.port }] };
    const chatter = `5.1.1 unknown ${'blah '.repeat(2000)}`;
    sink.rejectRecipient = (rcpt) => (rcpt.startsWith('long') ? { code: 550, message: chatter } : undefined);
    try {
      const message = sampleMessage();
      const [answer] = await transports.use(relay, (t) =>
        sendToDestination(t, {
          raw: Readable.from([message]),
          from: 'sb@behoerde.example',
          to: ['long@behoerde.example'],
          size: message.length,
        }),
      );
      assert.equal(answer?.classification.result, 'bounced');
      assert.ok(answer?.reply?.startsWith('550 5.1.1 unknown blah'), answer?.reply);
      assert.match(answer?.reply ?? '', /… \[cut: \d+ characters\]$/);
      assert.ok((answer?.reply?.length ?? 0) < MAX_REMOTE_TEXT + 40);
      assert.ok((answer?.error?.length ?? 0) < MAX_REMOTE_TEXT + 40);
    } finally {
      sink.rejectRecipient = undefined;
      transports.close();
    }
  });
});
