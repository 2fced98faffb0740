// Which local SMTP sinks `./smgw up` starts for which relay settings, what a sink does when its port is taken, and
// which exits the supervisor restarts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { localSink, planLocalRelays, sinkPortBusyNotice } from '../src/local-relays.ts';
import { afterExit, EXIT_CONFIG } from '../src/restart-policy.ts';
import { localServices } from '../src/services.ts';

const MAIL_SINK = fileURLToPath(new URL('../src/mail-sink.ts', import.meta.url));

describe('planLocalRelays: a sink only for a relay setting left at its local default', () => {
  const cases: {
    name: string;
    env: NodeJS.ProcessEnv;
    sinks: string[];
    relay: string;
    smarthost: string;
  }[] = [
    {
      name: 'nothing set: both sinks, and the gateway delivers to them',
      env: {},
      sinks: ['agency:2526', 'outside:2527'],
      relay: '127.0.0.1:2526',
      smarthost: '127.0.0.1:2527',
    },
    {
      name: "the agencies' mail server set: only the outside sink",
      env: { SMGW_INTERNAL_RELAY: 'mail.behoerde.example:25' },
      sinks: ['outside:2527'],
      relay: 'mail.behoerde.example:25',
      smarthost: '127.0.0.1:2527',
    },
    {
      name: 'a smarthost set: only the agency sink',
      env: { SMGW_SMARTHOST: 'smarthost.example:587' },
      sinks: ['agency:2526'],
      relay: '127.0.0.1:2526',
      smarthost: 'smarthost.example:587',
    },
    {
      name: 'both set: no sink',
      env: { SMGW_INTERNAL_RELAY: 'mail.behoerde.example:25', SMGW_SMARTHOST: 'smarthost.example:587' },
      sinks: [],
      relay: 'mail.behoerde.example:25',
      smarthost: 'smarthost.example:587',
    },
    {
      name: 'the smarthost set empty (MX lookup): no outside sink',
      env: { SMGW_SMARTHOST: '' },
      sinks: ['agency:2526'],
      relay: '127.0.0.1:2526',
      smarthost: '',
    },
    {
      name: "the agencies' relay set empty (deliver's default is the sink's address): the agency sink",
      env: { SMGW_INTERNAL_RELAY: '' },
      sinks: ['agency:2526', 'outside:2527'],
      relay: '127.0.0.1:2526',
      smarthost: '127.0.0.1:2527',
    },
    {
      name: "a setting spelled as the sink's own address: that sink",
      env: { SMGW_INTERNAL_RELAY: '127.0.0.1:2526', SMGW_SMARTHOST: '127.0.0.1:2527' },
      sinks: ['agency:2526', 'outside:2527'],
      relay: '127.0.0.1:2526',
      smarthost: '127.0.0.1:2527',
    },
    {
      name: 'sink ports moved: the defaults follow them',
      env: { SMGW_SINK_AGENCY_PORT: '3526', SMGW_SINK_OUTSIDE_PORT: '3527' },
      sinks: ['agency:3526', 'outside:3527'],
      relay: '127.0.0.1:3526',
      smarthost: '127.0.0.1:3527',
    },
    {
      name: 'a relay on the default port after the sink port moved: a real relay, no sink',
      env: { SMGW_SINK_AGENCY_PORT: '3526', SMGW_INTERNAL_RELAY: '127.0.0.1:2526' },
      sinks: ['outside:2527'],
      relay: '127.0.0.1:2526',
      smarthost: '127.0.0.1:2527',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const plan = planLocalRelays(c.env);
      assert.deepEqual(
        plan.sinks.map((s) => `${s.name}:${s.port}`),
        c.sinks,
      );
      assert.deepEqual(plan.relayEnv, { SMGW_INTERNAL_RELAY: c.relay, SMGW_SMARTHOST: c.smarthost });
    });
  }
});

describe('localServices: what ./smgw up runs and ./smgw status reports', () => {
  it('lists a sink service only for a wanted sink, beside the eight gateway services', () => {
    const names = (env: NodeJS.ProcessEnv) => localServices(env).map((s) => s.name);
    assert.deepEqual(names({}), [
      'sink-agency',
      'sink-outside',
      'ingest',
      'scan',
      'encrypt',
      'signature-verify',
      'deliver',
      'mailbox',
      'lifecycle-reaper',
      'admin',
    ]);
    assert.deepEqual(names({ SMGW_INTERNAL_RELAY: 'mail.behoerde.example:25', SMGW_SMARTHOST: 'relay.example:25' }), [
      'ingest',
      'scan',
      'encrypt',
      'signature-verify',
      'deliver',
      'mailbox',
      'lifecycle-reaper',
      'admin',
    ]);
  });

  it('gives each sink its own health port', () => {
    const ports = localServices({})
      .filter((s) => s.kind === 'sink')
      .map((s) => s.readyPort);
    assert.deepEqual(ports, [9109, 9110]);
  });
});

describe('a sink whose port another program holds', () => {
  it('names the port, the setting and the way out in one sentence', () => {
    const notice = sinkPortBusyNotice(localSink('agency', 2526, 9109));
    assert.match(notice, /^port 2526 is in use by another program; the local agency sink is not started/);
    assert.match(notice, /Set SMGW_INTERNAL_RELAY to your agencies' mail server or free the port\.$/);
    assert.match(sinkPortBusyNotice(localSink('outside', 2527, 9110)), /Set SMGW_SMARTHOST to your smarthost/);
  });

  it('says so once and exits 78 (EX_CONFIG)', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as { port: number }).port;
    const state = mkdtempSync(join(tmpdir(), 'smgw-sink-'));
    try {
      const child = spawn(process.execPath, [MAIL_SINK], {
        env: {
          ...process.env,
          SMGW_STATE_DIR: state,
          SMGW_SINK_NAME: 'agency',
          SMGW_SINK_PORT: String(port),
          SMGW_HEALTH_PORT: '0',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.stderr.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.equal(code, 78, output);
      const lines = output.trim().split('\n');
      assert.equal(lines.length, 1, output);
      assert.equal(JSON.parse(lines[0] ?? '').msg, sinkPortBusyNotice(localSink('agency', port, 0)));
    } finally {
      holder.close();
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('afterExit: the supervisor restarts with backoff, except what a restart cannot fix', () => {
  it('does not restart a process that exited 78 (EX_CONFIG: its settings or a port held by another program)', () => {
    assert.deepEqual(afterExit(EXIT_CONFIG, 0, 100), { restart: false });
  });

  it('restarts a crash after 1 s, 2 s, 4 s … at most 30 s', () => {
    let failures = 0;
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      const next = afterExit(1, failures, 100);
      assert.equal(next.restart, true);
      if (!next.restart) return;
      failures = next.failures;
      delays.push(next.delayMs);
    }
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  });

  it('starts the backoff over after a run of more than a minute, and restarts one killed by a signal', () => {
    assert.deepEqual(afterExit(1, 6, 61_000), { restart: true, delayMs: 1000, failures: 1 });
    assert.equal(afterExit('SIGKILL', 0, 100).restart, true);
  });
});
