// Postfix's smtp-sink and smtp-source, the load and the sink every system of the comparison gets alike. Both print
// a running counter (-c); the times at which it moves are the arrival times at the sink and the times of the 250
// replies to DATA at the source.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';

/** The counter in one record (between carriage returns) of smtp-sink (`sess=1 quit=0 mesg=4`) or smtp-source (`4`). */
export function counterValue(record: string, kind: 'sink' | 'source'): number | undefined {
  const m = (kind === 'sink' ? /mesg=(\d+)/ : /^\s*(\d+)\s*$/).exec(record);
  return m ? Number(m[1]) : undefined;
}

/** Timestamps the ticks of a counter: a record that moves it from n to n+k adds k copies of now. */
export class CounterClock {
  private last = 0;
  private pending = '';
  readonly times: number[] = [];
  private readonly kind: 'sink' | 'source';
  constructor(kind: 'sink' | 'source') {
    this.kind = kind;
  }
  feed(chunk: string, now = performance.now()) {
    const records = (this.pending + chunk).split('\r');
    this.pending = records.pop() ?? '';
    for (const record of records) {
      const v = counterValue(record, this.kind);
      if (v !== undefined) this.advanceTo(v, now);
    }
  }
  /** The counter read `value` at `now` (a count polled from elsewhere); a lower value than before changes nothing. */
  advanceTo(value: number, now = performance.now()) {
    for (let i = this.last; i < value; i++) this.times.push(now);
    if (value > this.last) this.last = value;
  }
}

export interface SmtpSink {
  port: number;
  /** Messages taken so far and when each arrived (performance.now()). */
  arrivals: number[];
  count(): number;
  close(): Promise<void>;
}

export async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    }).on('error', () => resolve(false));
  });
}

/**
 * smtp-sink on 127.0.0.1:port; with `dumpFile` it appends every message to that file (-D), with `dumpEach` it writes
 * each message to a file of its own named `dumpEach` and a random suffix (-d).
 */
export async function startSmtpSink(port: number, dumpFile?: string, dumpEach?: string): Promise<SmtpSink> {
  // smtp-sink refuses to run as root without a user to drop to.
  const asUser = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
  const dump = [...(dumpFile ? ['-D', dumpFile] : []), ...(dumpEach ? ['-d', dumpEach] : [])];
  const child = spawn('smtp-sink', [...asUser, '-c', ...dump, `127.0.0.1:${port}`, '1000'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const clock = new CounterClock('sink');
  child.stdout.setEncoding('latin1').on('data', (chunk: string) => clock.feed(chunk));
  child.stderr.resume();
  for (let i = 0; i < 100 && !(await portOpen(port)); i++) await new Promise((r) => setTimeout(r, 50));
  return {
    port,
    arrivals: clock.times,
    count: () => clock.times.length,
    close: () => stopChild(child),
  };
}

async function stopChild(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

export interface SourceRun {
  /** When smtp-source started, and when each 250 to DATA came (performance.now()). */
  start: number;
  accepted: number[];
  end: number;
}

/**
 * smtp-source: `messages` of `bodyBytes` (body only, headers beside) over `sessions` parallel connections; `reuse`:
 * many messages per connection (-d), else one message per connection. `from` and `to` (default the internet to an
 * agency) are the envelope's and smtp-source writes them into From and To as well.
 */
export async function runSmtpSource(o: {
  port: number;
  messages: number;
  sessions: number;
  bodyBytes: number;
  reuse: boolean;
  from?: string;
  to?: string;
}): Promise<SourceRun> {
  const args = [
    '-c',
    ...(o.reuse ? ['-d'] : []),
    ...['-s', String(o.sessions), '-m', String(o.messages), '-l', String(o.bodyBytes)],
    ...['-f', o.from ?? 'bench@example.org', '-t', o.to ?? 'amt@behoerde.example', '-M', 'bench.test', '-S', 'bench'],
    `127.0.0.1:${o.port}`,
  ];
  const clock = new CounterClock('source');
  const start = performance.now();
  const child = spawn('smtp-source', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout.setEncoding('latin1').on('data', (chunk: string) => clock.feed(chunk));
  child.stderr.setEncoding('latin1').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const [code] = await once(child, 'exit');
  const end = performance.now();
  if (code !== 0) throw new Error(`smtp-source exited with ${code}: ${stderr.trim().slice(0, 500)}`);
  return { start, accepted: clock.times, end };
}
