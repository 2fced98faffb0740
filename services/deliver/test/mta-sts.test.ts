// MTA-STS policies (mta-sts.ts): fetched by deliver itself, from a checked address only, bounded, never followed
// anywhere, kept as RFC 8461 §5.1 says; and applied by mx-connect. DNS is a test resolver (as in transports.test.ts),
// the policy host a local HTTPS server with a certificate for its name.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { cidrList } from '@smgw/config';
import { type SmtpSink, startSmtpSink } from '@smgw/testing';
import { createMtaStsPolicies, fetchMtaStsPolicy, MTA_STS_RETRY_MS, type MtaStsFetch } from '../src/mta-sts.ts';
import { sendToDestination } from '../src/send-to-destination.ts';
import { createTransports, mtaStsHostRefusal } from '../src/transports.ts';
import { sampleMessage, selfSignedCertificate } from './fixtures.ts';

const DOMAIN = 'firma.example';
const POLICY_HOST = `mta-sts.${DOMAIN}`;
const ENFORCE_OTHER_MX = 'version: STSv1\r\nmode: enforce\r\nmx: mx.other.example\r\nmax_age: 86400\r\n';
const TESTING_OTHER_MX = 'version: STSv1\r\nmode: testing\r\nmx: mx.other.example\r\nmax_age: 86400\r\n';

function dnsError(code: string): Error {
  return Object.assign(new Error(`${code} (test resolver)`), { code });
}

/** An HTTPS policy host on 127.0.0.1 that answers as `answer` says and counts connections and requests. */
interface PolicyHost {
  port: number;
  ca: Buffer;
  connections: number;
  requests: { host?: string; path?: string }[];
  answer: (res: import('node:http').ServerResponse) => void;
  server: Server;
}

async function startPolicyHost(name = POLICY_HOST): Promise<PolicyHost> {
  const { key, cert } = selfSignedCertificate(name, `DNS:${name}`);
  const host: PolicyHost = {
    port: 0,
    ca: cert,
    connections: 0,
    requests: [],
    answer: (res) => res.end(ENFORCE_OTHER_MX),
    server: createServer({ key, cert }, (req, res) => {
      host.requests.push({ host: req.headers.host, path: req.url });
      host.answer(res);
    }),
  };
  host.server.on('connection', () => host.connections++);
  await new Promise<void>((resolve) => host.server.listen(0, '127.0.0.1', resolve));
  host.port = (host.server.address() as AddressInfo).port;
  return host;
}

function stopPolicyHost(host: PolicyHost): Promise<void> {
  host.server.closeAllConnections();
  return new Promise((resolve) => host.server.close(() => resolve()));
}

/** A resolver: the domain's MX on this machine, its TXT record `id`, its policy host at `policyAt`. */
function resolverFor(policyAt: string[], id: () => string | undefined = () => '1') {
  const asked: string[] = [];
  const resolve = async (name: string, type: string): Promise<unknown> => {
    asked.push(`${name} ${type}`);
    if (name === DOMAIN && type === 'MX') return [{ exchange: `mx.${DOMAIN}`, priority: 10 }];
    if (name === `mx.${DOMAIN}` && type === 'A') return ['127.0.0.1'];
    if (name === `_mta-sts.${DOMAIN}` && type === 'TXT') {
      const current = id();
      if (current === undefined) throw dnsError('ENODATA');
      return [[`v=STSv1; id=${current}`]];
    }
    if (name === POLICY_HOST && type === 'A' && policyAt.some((a) => a.includes('.'))) {
      return policyAt.filter((a) => a.includes('.'));
    }
    if (name === POLICY_HOST && type === 'AAAA' && policyAt.some((a) => !a.includes('.'))) {
      return policyAt.filter((a) => !a.includes('.'));
    }
    throw dnsError('ENODATA');
  };
  return { resolve, asked };
}

describe('fetching an MTA-STS policy', () => {
  let host: PolicyHost;
  before(async () => {
    host = await startPolicyHost();
  });
  after(() => stopPolicyHost(host));

  const fetchFrom = (policyAt: string[], overrides: Partial<MtaStsFetch> = {}): MtaStsFetch => ({
    resolve: resolverFor(policyAt).resolve,
    refuse: async () => undefined,
    timeoutMs: 5000,
    maxBytes: 64 * 1024,
    testOnly: { port: host.port, ca: host.ca },
    ...overrides,
  });

  it('asks for the policy host once and fetches the policy from the address it checked', async () => {
    const { resolve, asked } = resolverFor(['127.0.0.1']);
    const checked: string[] = [];
    host.answer = (res) => res.end(ENFORCE_OTHER_MX);
    const before = host.requests.length;
    const policy = await fetchMtaStsPolicy(DOMAIN, {
      ...fetchFrom([]),
      resolve,
      refuse: async (address) => void checked.push(address),
    });
    assert.equal(policy.mode, 'enforce');
    assert.deepEqual(policy.mx, ['mx.other.example']);
    assert.deepEqual(checked, ['127.0.0.1']);
    assert.deepEqual(
      asked.filter((q) => q.startsWith(POLICY_HOST)),
      [`${POLICY_HOST} A`],
    );
    assert.deepEqual(host.requests.slice(before), [{ host: POLICY_HOST, path: '/.well-known/mta-sts.txt' }]);
  });

  // The addresses a stranger's DNS may give its policy host, and why each is refused (the agencies' relay is at
  // 1.2.3.4, their network 5.6.7.0/24). 0.0.0.0 and ::ffff:127.0.0.1 would reach the test's host on this machine.
  const refuse = mtaStsHostRefusal({
    closedNetwork: { relayHosts: [{ host: '1.2.3.4', port: 25 }], networks: cidrList('5.6.7.0/24') },
  });
  const refused: [string, RegExp][] = [
    ['1.2.3.4', /agencies' own network/],
    ['5.6.7.8', /agencies' own network/],
    ['64:ff9b::102:304', /rfc6052/], // NAT64: refused as any translated address is, the relay's or not
    ['127.0.0.1', /loopback/],
    ['::ffff:127.0.0.1', /loopback/],
    ['::1', /loopback/],
    ['0.0.0.0', /unspecified/],
    ['::', /unspecified/],
    ['10.1.2.3', /private/],
    ['169.254.169.254', /linkLocal/],
    ['fe80::1', /linkLocal/],
    ['100.64.0.1', /carrierGradeNat/],
  ];
  for (const [address, why] of refused) {
    it(`never contacts a policy host at ${address}`, async () => {
      const before = host.connections;
      await assert.rejects(fetchMtaStsPolicy(DOMAIN, fetchFrom([address], { refuse })), (err: Error) => {
        assert.match(err.message, why);
        assert.match(err.message, /not contacted$/);
        assert.doesNotMatch(err.message, /SMGW_REVOCATION_ALLOW/);
        return true;
      });
      assert.equal(host.connections, before);
    });
  }

  it('lets a public address be contacted', async () => {
    assert.equal(await refuse('8.8.8.8'), undefined);
    assert.equal(await refuse('2001:4860:4860::8888'), undefined);
  });

  it('refuses a policy host whose addresses mix a public and an internal one', async () => {
    const before = host.connections;
    await assert.rejects(fetchMtaStsPolicy(DOMAIN, fetchFrom(['8.8.8.8', '10.0.0.1'], { refuse })), /10\.0\.0\.1/);
    assert.equal(host.connections, before);
  });

  it('follows no redirect', async () => {
    host.answer = (res) => {
      res.writeHead(301, { location: `https://${POLICY_HOST}:${host.port}/elsewhere` });
      res.end();
    };
    const before = host.requests.length;
    await assert.rejects(fetchMtaStsPolicy(DOMAIN, fetchFrom(['127.0.0.1'])), /HTTP 301/);
    assert.equal(host.requests.length, before + 1);
  });

  it('gives up on a policy larger than the bound', async () => {
    host.answer = (res) => res.end(`${ENFORCE_OTHER_MX}${'# padding\r\n'.repeat(10_000)}`);
    await assert.rejects(fetchMtaStsPolicy(DOMAIN, fetchFrom(['127.0.0.1'])), /over 65536 bytes/);
  });

  it('gives up on a policy host that trickles or does not answer, at the deadline', async () => {
    host.answer = (res) => {
      res.writeHead(200);
      res.write('version: STSv1\r\n'); // and nothing more
    };
    await assert.rejects(fetchMtaStsPolicy(DOMAIN, fetchFrom(['127.0.0.1'], { timeoutMs: 300 })), /within 300 ms/);
  });

  it('refuses a policy host whose certificate is not for its name', async () => {
    const other = await startPolicyHost('mta-sts.other.example');
    try {
      await assert.rejects(
        fetchMtaStsPolicy(DOMAIN, fetchFrom(['127.0.0.1'], { testOnly: { port: other.port, ca: other.ca } })),
        /altnames|certificate/i,
      );
      assert.equal(other.requests.length, 0);
    } finally {
      await stopPolicyHost(other);
    }
  });
});

describe('MTA-STS policies kept per domain', () => {
  let host: PolicyHost;
  before(async () => {
    host = await startPolicyHost();
  });
  after(() => stopPolicyHost(host));

  function policies(id: () => string | undefined) {
    let now = 1_000_000;
    const kept = createMtaStsPolicies(
      {
        resolve: resolverFor(['127.0.0.1'], id).resolve,
        refuse: async () => undefined,
        timeoutMs: 5000,
        maxBytes: 64 * 1024,
        testOnly: { port: host.port, ca: host.ca },
      },
      { now: () => now },
    );
    return { kept, pass: (ms: number) => (now += ms) };
  }

  it('fetches a policy again only when its TXT id changes or it expired', async () => {
    let id = '1';
    const { kept, pass } = policies(() => id);
    host.answer = (res) => res.end(ENFORCE_OTHER_MX);
    const before = host.requests.length;
    assert.equal((await kept.policyFor(DOMAIN))?.mode, 'enforce');
    assert.equal((await kept.policyFor(DOMAIN))?.mode, 'enforce');
    assert.equal(host.requests.length, before + 1);
    id = '2';
    await kept.policyFor(DOMAIN);
    assert.equal(host.requests.length, before + 2);
    pass(86_400_000 + 1);
    await kept.policyFor(DOMAIN);
    assert.equal(host.requests.length, before + 3);
  });

  it('keeps applying an unexpired policy when the TXT record is gone or the policy host fails', async () => {
    let id: string | undefined = '1';
    const { kept, pass } = policies(() => id);
    host.answer = (res) => res.end(ENFORCE_OTHER_MX);
    assert.equal((await kept.policyFor(DOMAIN))?.mode, 'enforce');
    id = undefined;
    assert.equal((await kept.policyFor(DOMAIN))?.mode, 'enforce');
    id = '2';
    host.answer = (res) => {
      res.writeHead(500);
      res.end();
    };
    assert.equal((await kept.policyFor(DOMAIN))?.mode, 'enforce');
    pass(86_400_000 + 1);
    assert.equal(await kept.policyFor(DOMAIN), undefined, 'expired: none');
  });

  it('applies none when a policy cannot be fetched, and asks the policy host again only after a while', async () => {
    const { kept, pass } = policies(() => '1');
    host.answer = (res) => {
      res.writeHead(404);
      res.end();
    };
    const before = host.requests.length;
    assert.equal(await kept.policyFor(DOMAIN), undefined);
    assert.equal(await kept.policyFor(DOMAIN), undefined);
    assert.equal(host.requests.length, before + 1);
    pass(MTA_STS_RETRY_MS + 1);
    host.answer = (res) => res.end(ENFORCE_OTHER_MX);
    assert.equal((await kept.policyFor(DOMAIN))?.mode, 'enforce');
  });
});

describe('MTA-STS in delivery to an MX', () => {
  let host: PolicyHost;
  let sink: SmtpSink;
  before(async () => {
    host = await startPolicyHost();
    sink = await startSmtpSink();
  });
  after(async () => {
    await stopPolicyHost(host);
    await sink.close();
  });

  async function deliver(closedNetwork?: { relayHosts: { host: string; port: number }[]; networks: [] }) {
    const { resolve } = resolverFor(['127.0.0.1']);
    const transports = createTransports({
      hostname: 'smgw.test',
      connectionsPerDestination: 1,
      timeoutMs: 5000,
      requireTlsOutside: false,
      testOnlyAllowLoopbackMx: true,
      testOnlyMtaSts: { port: host.port, ca: host.ca },
      ...(closedNetwork ? { closedNetwork } : {}),
      mxConnectOptions: { port: sink.port, dnsOptions: { resolveRecords: resolve } },
    });
    const message = sampleMessage('MTA-STS');
    try {
      const [answer] = await transports.use({ kind: 'mx', key: `mx:${DOMAIN}`, domain: DOMAIN }, (t) =>
        sendToDestination(t, {
          raw: Readable.from([message]),
          from: 'sb@behoerde.example',
          to: [`x@${DOMAIN}`],
          size: message.length,
        }),
      );
      return answer;
    } finally {
      transports.close();
    }
  }

  it("delivers as without a policy when the policy host is in the agencies' own network, never contacting it", async () => {
    host.answer = (res) => res.end(ENFORCE_OTHER_MX);
    const before = host.connections;
    const delivered = sink.messages.length;
    // The relay is on this machine (127.0.0.1) in this test, where the policy host is too.
    const answer = await deliver({ relayHosts: [{ host: '127.0.0.1', port: 25 }], networks: [] });
    assert.equal(answer?.classification.result, 'delivered', JSON.stringify(answer));
    assert.equal(sink.messages.length, delivered + 1);
    assert.equal(host.connections, before, 'the policy host was not contacted');
  });

  it('applies an enforce policy it fetched: an MX the policy does not list is not connected to', async () => {
    host.answer = (res) => res.end(ENFORCE_OTHER_MX);
    const delivered = sink.messages.length;
    const answer = await deliver();
    assert.equal(answer?.classification.result, 'deferred', JSON.stringify(answer));
    assert.match(answer?.error ?? '', /MTA-STS policy check failed/);
    assert.equal(sink.messages.length, delivered);
  });

  it('delivers to an MX a testing policy does not list', async () => {
    host.answer = (res) => res.end(TESTING_OTHER_MX);
    const answer = await deliver();
    assert.equal(answer?.classification.result, 'delivered', JSON.stringify(answer));
  });
});
