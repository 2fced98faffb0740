// Messages, archives, envelopes and a private clamd for scan's tests. Not a test file itself.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants, crc32, deflateRawSync } from 'node:zlib';
import { ping } from '@smgw/clamd';
import { type Direction, type Envelope, itineraryFor } from '@smgw/envelope';
import type { HandlerContext } from '@smgw/mq';
import { createLogger } from '@smgw/observability';
import { envelopeFixture, freePort, waitFor } from '@smgw/testing';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const TESTFILES = '/usr/share/clamav-testfiles';
export const CLAMD_URL = process.env.CLAMD_URL ?? 'tcp://127.0.0.1:3310';

export { EICAR } from '@smgw/testing';

export const testLogger = createLogger('scan-test', 'silent');

export function handlerContext(overrides: Partial<HandlerContext> = {}): HandlerContext {
  return { attempt: 0, lastAttempt: false, log: testLogger, signal: new AbortController().signal, ...overrides };
}

const HEADERS = [
  'From: Sachbearbeitung <clerk@behoerde.example>',
  'To: colleague@behoerde.example',
  'Date: Mon, 02 Mar 2026 10:00:00 +0100',
  'MIME-Version: 1.0',
];

/** A plain text mail. */
export function textMail(body: string | Buffer, subject = 'Bescheid'): Buffer {
  return Buffer.concat([
    Buffer.from([...HEADERS, `Subject: ${subject}`, 'Content-Type: text/plain; charset=utf-8', '', ''].join('\r\n')),
    Buffer.from(body),
    Buffer.from('\r\n'),
  ]);
}

/** A multipart/mixed part (no top-level headers) holding a text part and a base64 attachment. */
function attachmentParts(name: string, type: string, bytes: Buffer, boundary: string): string {
  return [
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Anbei die Unterlagen.',
    `--${boundary}`,
    `Content-Type: ${type}; name="${name}"`,
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${name}"`,
    '',
    bytes.toString('base64').replace(/.{76}/g, '$&\r\n'),
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

/** A mail with one base64 attachment. */
export function mailWithAttachment(name: string, bytes: Buffer, type = 'application/octet-stream'): Buffer {
  const boundary = 'b1-smgw-test';
  return Buffer.from(
    [
      ...HEADERS,
      'Subject: Unterlagen',
      `Content-Type: multipart/mixed; boundary="${boundary}"`,
      '',
      attachmentParts(name, type, bytes, boundary),
    ].join('\r\n'),
  );
}

/** The attachment three MIME levels down: mixed → message/rfc822 → mixed → attachment. */
export function mailThreeLevelsDeep(name: string, bytes: Buffer): Buffer {
  const inner = mailWithAttachment(name, bytes).toString();
  const middle = [
    'From: weiter@behoerde.example',
    'Subject: Fwd: Unterlagen',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b2-smgw-test"',
    '',
    '--b2-smgw-test',
    'Content-Type: text/plain',
    '',
    'Weitergeleitet.',
    '--b2-smgw-test',
    'Content-Type: message/rfc822',
    '',
    inner,
    '--b2-smgw-test--',
    '',
  ].join('\r\n');
  return Buffer.from(
    [
      ...HEADERS,
      'Subject: Fwd: Fwd: Unterlagen',
      'Content-Type: multipart/mixed; boundary="b3-smgw-test"',
      '',
      '--b3-smgw-test',
      'Content-Type: text/plain',
      '',
      'Nochmals weitergeleitet.',
      '--b3-smgw-test',
      'Content-Type: message/rfc822',
      '',
      middle,
      '--b3-smgw-test--',
      '',
    ].join('\r\n'),
  );
}

/** A zip (made with the `zip` command) holding `files`; with a password, the entries are encrypted. */
export function zipOf(files: Record<string, Buffer>, password?: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'smgw-zip-'));
  try {
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
    const args = [
      '-q',
      '-j',
      ...(password ? ['-P', password] : []),
      join(dir, 'out.zip'),
      ...Object.keys(files).map((n) => join(dir, n)),
    ];
    execFileSync('zip', args);
    return readFileSync(join(dir, 'out.zip'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function testEnvelope(
  blob: Envelope['blob'],
  direction: Direction = 'internal',
  overrides: Partial<Envelope> = {},
): Envelope {
  return envelopeFixture({
    direction,
    mailFrom: direction === 'inbound' ? 'absender@extern.example' : 'clerk@behoerde.example',
    recipients: direction === 'outbound' ? ['citizen@mail.example'] : ['colleague@behoerde.example'],
    client: { listener: direction === 'inbound' ? 'inbound' : 'submission', ip: '127.0.0.1', helo: 'test', tls: false },
    blob,
    // As it reaches scan: whatever came before scan on the route (inbound: decryption) is done.
    itinerary: itineraryFor(direction).slice(itineraryFor(direction).indexOf('scan')),
    ...overrides,
  });
}

export interface PrivateClamd {
  url: string;
  port: number;
  start(): Promise<void>;
  /** kill -9, and wait for the exit. */
  kill(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A clamd of our own on a free port, with the shared clamd's configuration and signatures (plus `extraConfig`
 * lines, which override), for tests that kill clamd or need other limits. Never touches the shared clamd.
 */
export async function startPrivateClamd(extraConfig: Record<string, string> = {}): Promise<PrivateClamd> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'smgw-clamd-'));
  const shared = readFileSync(join(ROOT, '.smgw/clamav/clamd.conf'), 'utf8');
  const options = new Map<string, string>();
  for (const line of shared.split('\n')) {
    const match = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (match?.[1] && match[2] !== undefined) options.set(match[1], match[2]);
  }
  options.set('TCPSocket', String(port));
  options.set('TCPAddr', '127.0.0.1');
  options.set('Foreground', 'true');
  options.set('PidFile', join(dir, 'clamd.pid'));
  options.set('LogFile', join(dir, 'clamd.log'));
  for (const [key, value] of Object.entries(extraConfig)) options.set(key, value);
  const conf = join(dir, 'clamd.conf');
  writeFileSync(conf, `${[...options].map(([k, v]) => `${k} ${v}`).join('\n')}\n`);
  const url = `tcp://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const handle: PrivateClamd = {
    url,
    port,
    async start() {
      child = spawn('clamd', ['-c', conf], { stdio: 'ignore' });
      const started = child;
      await waitFor(
        `private clamd on port ${port}`,
        async () => {
          if (started.exitCode !== null) throw new Error(`clamd exited with ${started.exitCode}`);
          await ping({ url, deadlineMs: 1000 });
          return true;
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
    },
    async kill() {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null) return;
      const exited = once(running, 'exit');
      running.kill('SIGKILL');
      await exited;
    },
    async close() {
      await handle.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await handle.start();
  return handle;
}

/** One entry of streamedZip: its name and its content, produced chunk by chunk (never held whole). */
export interface StreamedEntry {
  name: string;
  chunks: () => Iterable<Buffer>;
  /** Deflate (default) or store. */
  stored?: boolean;
  /** The uncompressed size written in the headers, if not the true one (a sender may write any). */
  declaredSize?: number;
}

/**
 * A zip written here from streams, deflated on the way: 60 MiB of zeros become about 60 KB without ever being held.
 * Sizes and CRC in the local headers (no data descriptor), no zip64: members below 4 GiB.
 */
export function streamedZip(entries: readonly StreamedEntry[]): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    let crc = 0;
    let size = 0;
    const plain: Buffer[] = [];
    const deflater = !entry.stored;
    const deflated: Buffer[] = [];
    for (const chunk of entry.chunks()) {
      crc = crc32(chunk, crc);
      size += chunk.length;
      if (deflater) deflated.push(deflateRawSync(chunk, { finishFlush: constants.Z_SYNC_FLUSH }));
      else plain.push(chunk);
    }
    // One raw deflate stream: sync-flushed blocks, then an empty final block.
    const data = deflater ? Buffer.concat([...deflated, Buffer.from([0x03, 0x00])]) : Buffer.concat(plain);
    const header = (signature: number, length: number) => {
      const b = Buffer.alloc(length);
      b.writeUInt32LE(signature, 0);
      return b;
    };
    const local = header(0x04034b50, 30);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(entry.stored ? 0 : 8, 8);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(entry.declaredSize ?? size, 22);
    local.writeUInt16LE(name.length, 26);
    const record = header(0x02014b50, 46);
    record.writeUInt16LE(20, 4);
    record.writeUInt16LE(20, 6);
    record.writeUInt16LE(0x0800, 8);
    record.writeUInt16LE(entry.stored ? 0 : 8, 10);
    record.writeUInt32LE(crc >>> 0, 16);
    record.writeUInt32LE(data.length, 20);
    record.writeUInt32LE(entry.declaredSize ?? size, 24);
    record.writeUInt16LE(name.length, 28);
    record.writeUInt32LE(offset, 42);
    locals.push(local, name, data);
    central.push(record, name);
    offset += local.length + name.length + data.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/** `mib` MiB of zeros in 1 MiB chunks, then `tail`. */
export function zerosThen(mib: number, tail: Buffer = Buffer.alloc(0)): () => Iterable<Buffer> {
  return function* () {
    const zeros = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < mib; i++) yield zeros;
    if (tail.length > 0) yield tail;
  };
}

/** A tar archive (ustar) holding one file: for tests of containers the scan stage leaves to clamd. */
export function tarOf(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const field = (at: number, length: number, value: string) => header.write(value, at, length, 'latin1');
  const octal = (value: number, length: number) => `${value.toString(8).padStart(length - 1, '0')}\0`;
  field(0, 100, name);
  field(100, 8, octal(0o644, 8));
  field(108, 8, octal(0, 8));
  field(116, 8, octal(0, 8));
  field(124, 12, octal(content.length, 12));
  field(136, 12, octal(Math.floor(Date.now() / 1000), 12));
  field(148, 8, '        '); // the checksum counts its own field as spaces
  field(156, 1, '0');
  field(257, 8, 'ustar\u000000');
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}
