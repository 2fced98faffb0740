// The comparison's pieces that decide its numbers: which processes' CPU counts, how smtp-sink's and smtp-source's
// counters become timestamps, the latency pairing and ratios, and that the peers' configs stay on loopback and
// the filter peer scans viruses only. The whole bench (Postfix, amavisd-new, the gateway) is `./smgw bench`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { amavisConfig } from '../src/peers/amavis.ts';
import { parseProcStat, readProcesses, treeCpuMs } from '../src/peers/cpu.ts';
import { comparisonTable, orderedLatencies, ratioLine, roundFigures, spread } from '../src/peers/figures.ts';
import { postfixMainCf, postfixMasterCf } from '../src/peers/postfix.ts';
import { CounterClock } from '../src/peers/smtp-tools.ts';

const stat = (pid: number, ppid: number, utime: number, stime: number, cutime: number, cstime: number, comm = 'x') =>
  `${pid} (${comm}) S ${ppid} ${pid} ${pid} 0 -1 4194560 100 0 0 0 ${utime} ${stime} ${cutime} ${cstime} 20 0 1 0 5 0 0`;

describe('CPU of a system from /proc', () => {
  it('reads the times after the last parenthesis, whatever the command name holds', () => {
    assert.deepEqual(parseProcStat(stat(42, 7, 10, 5, 3, 2, 'amavisd (ch1-avail)')), {
      pid: 42,
      ppid: 7,
      ownTicks: 15,
      reapedChildTicks: 5,
    });
    assert.equal(parseProcStat('garbage'), undefined);
  });

  it('sums the trees of the roots with their exited children, and nothing outside them', () => {
    const processes = [
      stat(100, 1, 10, 10, 50, 0), // postfix master: 50 ticks of smtpds it has reaped
      stat(101, 100, 5, 5, 0, 0), // a live smtpd
      stat(102, 101, 1, 0, 0, 0), // its child
      stat(200, 1, 1000, 1000, 0, 0), // another system's process
      stat(300, 1, 7, 0, 0, 0), // a second root (clamd)
    ].map((l) => parseProcStat(l) as NonNullable<ReturnType<typeof parseProcStat>>);
    assert.equal(treeCpuMs(processes, [100, 300]), (20 + 50 + 10 + 1 + 7) * 10);
    assert.equal(treeCpuMs(processes, [999]), 0, 'a root that is gone counts nothing');
  });

  it('leaves out the bench’s own processes inside a tree, with their children, and nothing else', () => {
    const processes = [
      stat(100, 1, 10, 10, 50, 0), // postmaster: 50 ticks of backends that have exited
      stat(101, 100, 5, 5, 0, 0), // a backend of the gateway
      stat(102, 100, 30, 0, 0, 0), // the bench's poll backend
      stat(103, 102, 4, 0, 0, 0), // (a child of it, were there one)
    ].map((l) => parseProcStat(l) as NonNullable<ReturnType<typeof parseProcStat>>);
    assert.equal(treeCpuMs(processes, [100], [102]), (20 + 50 + 10) * 10);
    assert.equal(treeCpuMs(processes, [100], []), (20 + 50 + 10 + 30 + 4) * 10);
    assert.equal(treeCpuMs(processes, [100], [999]), (20 + 50 + 10 + 30 + 4) * 10, 'an unknown pid changes nothing');
    assert.equal(treeCpuMs(processes, [100], [100]), 0, 'a root left out leaves nothing');
  });

  it('counts a real child that burned CPU and exited (into our cutime)', async () => {
    const before = treeCpuMs(await readProcesses(), [process.pid]);
    const child = spawn(
      process.execPath,
      ['-e', 'while (process.cpuUsage().user + process.cpuUsage().system < 300_000);'],
      { stdio: 'ignore' },
    );
    await once(child, 'exit');
    const after = treeCpuMs(await readProcesses(), [process.pid]);
    assert.ok(after - before >= 300, `${after - before} ms`);
  });
});

describe('counters of smtp-sink and smtp-source', () => {
  it('timestamps every message, also when a record is split across chunks or counts several at once', () => {
    const sink = new CounterClock('sink');
    sink.feed('sess=1 quit=0 mesg=1\rsess=1 quit=0 me', 10);
    sink.feed('sg=3\r', 20);
    assert.deepEqual(sink.times, [10, 20, 20]);
    const source = new CounterClock('source');
    source.feed('1\r2\r1', 5);
    source.feed('2\r\n', 7);
    assert.equal(source.times.length, 12);
    assert.deepEqual(source.times.slice(0, 3), [5, 5, 7]);
  });

  it('timestamps a polled count the same way, and a count that goes back changes nothing', () => {
    const polled = new CounterClock('sink');
    polled.advanceTo(2, 10);
    polled.advanceTo(2, 20);
    polled.advanceTo(1, 30);
    polled.advanceTo(4, 40);
    assert.deepEqual(polled.times, [10, 10, 40, 40]);
  });
});

describe('figures', () => {
  it('pairs the k-th 250 with the k-th arrival and reports throughput from the start of the load', () => {
    assert.deepEqual(orderedLatencies([3, 1, 2], [12, 11, 10]), [9, 9, 9]);
    const r = roundFigures({
      messages: 4,
      sourceStart: 0,
      accepted: [1, 2, 3, 4],
      arrived: [5, 6, 7, 2000],
      cpuByPartMs: { ingest: 6, postgres: 2 },
    });
    assert.equal(r.msgPerSecond, 2);
    assert.equal(r.cpuMsPerMessage, 2);
    assert.deepEqual(r.cpuMsPerMessageByPart, { ingest: 1.5, postgres: 0.5 });
    assert.equal(r.p50Ms, 4);
    assert.equal(r.p99Ms, 1996);
  });

  it('prints median and range, and the gateway over each peer', () => {
    const fig = (msgPerSecond: number, cpuMsPerMessage: number) => ({
      msgPerSecond,
      cpuMsPerMessage,
      cpuMsPerMessageByPart: { scan: cpuMsPerMessage / 2, clamd: cpuMsPerMessage / 2 },
      p50Ms: 1,
      p99Ms: 2,
    });
    assert.equal(
      spread([fig(10, 1), fig(30, 1), fig(20, 1)], (r) => r.msgPerSecond, 1),
      '20.0 (10.0–30.0)',
    );
    const table = comparisonTable(
      '10 KB',
      [
        { system: 'postfix+amavis', rounds: [fig(50, 20)] },
        { system: 'gateway', rounds: [fig(250, 5)] },
      ],
      'gateway',
    );
    assert.match(table, /gateway \/ postfix\+amavis: throughput 5\.00x, CPU per message 0\.25x/);
    assert.match(table, /gateway CPU ms\/msg by part \(median\): scan 2\.50, clamd 2\.50/);
    // Any two systems (the floor against the classic gateway), from the medians of their rounds.
    const floor = { system: 'floor', rounds: [fig(300, 4), fig(200, 6), fig(100, 9)] };
    const amavis = { system: 'postfix+amavis', rounds: [fig(50, 20), fig(40, 24)] };
    assert.equal(ratioLine(floor, amavis), 'floor / postfix+amavis: throughput 4.44x, CPU per message 0.27x');
  });
});

describe('the peers’ configurations', () => {
  const options = { dir: '/tmp/b/pf', name: 'pf', smtpPort: 2525, relayPort: 2626 };
  it('keep Postfix on loopback in its own folders, relaying to the sink, with no content filter in the plain relay', () => {
    const main = postfixMainCf(options);
    assert.match(main, /^inet_interfaces = 127\.0\.0\.1$/m);
    assert.match(main, /^queue_directory = \/tmp\/b\/pf\/queue$/m);
    assert.match(main, /^relayhost = \[127\.0\.0\.1\]:2626$/m);
    assert.match(main, /^mydestination =$/m);
    assert.doesNotMatch(main, /content_filter/);
    assert.match(postfixMasterCf(options), /^2525 inet n - n - - smtpd$/m);
  });

  it('put amavisd-new between smtpd and a reinjection smtpd, and have amavis scan for viruses only', () => {
    const cf = { amavisPort: 10024, reinjectPort: 10025, processes: 4 };
    assert.match(
      postfixMainCf({ ...options, contentFilter: cf }),
      /^content_filter = smtp-amavis:\[127\.0\.0\.1\]:10024$/m,
    );
    assert.match(
      postfixMasterCf({ ...options, contentFilter: cf }),
      /^127\.0\.0\.1:10025 inet n - n - - smtpd\n {2}-o content_filter=$/m,
    );
    const amavis = amavisConfig({ dir: '/tmp/b/am', port: 10024, reinjectPort: 10025, clamdPort: 3310, processes: 4 });
    for (const line of ['@bypass_spam_checks_maps = (1);', "$inet_socket_bind = '127.0.0.1';", '$max_servers = 4;']) {
      assert.ok(amavis.includes(line), line);
    }
    assert.match(amavis, /CONTSCAN \{\}\\n", '127\.0\.0\.1:3310'/);
    assert.match(amavis, /\$forward_method = 'smtp:\[127\.0\.0\.1\]:10025';/);
  });
});
