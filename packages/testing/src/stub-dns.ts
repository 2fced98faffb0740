// A DNS server for tests on 127.0.0.1 (UDP, a random port): answers A, AAAA, MX and TXT from a table the test fills,
// NXDOMAIN for names it does not know, an empty answer (NODATA) for a known name without records of the asked type.
// `silent` makes it swallow every query (a resolver that times out). Tests, `./smgw bench` and the test gateway point
// SMGW_DNS_RESOLVERS at it, so SPF, DKIM and DMARC never reach the internet.
//
// The wire format (RFC 1035 §4) is small enough to write here: one question per query, no compression in what we
// send, no TCP (answers stay under 512 bytes, 1232 for a query with EDNS, as node:dns sends; a longer one sets TC).
import { createSocket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';

export type StubRecord =
  | { type: 'A'; address: string }
  | { type: 'AAAA'; address: string }
  | { type: 'MX'; priority: number; exchange: string }
  | { type: 'TXT'; text: string };

export interface StubDns {
  /** `127.0.0.1:<port>`, the value for SMGW_DNS_RESOLVERS. */
  address: string;
  port: number;
  /** Replaces the records of `name` (all types); an empty list removes the name (NXDOMAIN). */
  set(name: string, records: StubRecord[]): void;
  /** True: every query goes unanswered (the resolver times out). */
  silent: boolean;
  /** Names asked so far, as `TYPE name` (lower case). */
  queries: string[];
  close(): Promise<void>;
}

const TYPES = { A: 1, MX: 15, TXT: 16, AAAA: 28 } as const;
const NXDOMAIN = 3;
const FORMERR = 1;
const MAX_UDP_BYTES = 512;
/** RFC 9715's size for EDNS answers. */
const MAX_EDNS_UDP_BYTES = 1232;

export async function startStubDns(records: Record<string, StubRecord[]> = {}): Promise<StubDns> {
  const table = new Map<string, StubRecord[]>();
  const socket = createSocket('udp4');
  const stub: StubDns = {
    address: '',
    port: 0,
    set(name, list) {
      if (list.length === 0) table.delete(normalName(name));
      else table.set(normalName(name), [...list]);
    },
    silent: false,
    queries: [],
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
  for (const [name, list] of Object.entries(records)) stub.set(name, list);

  socket.on('message', (query, peer) => {
    if (stub.silent) return;
    const answer = answerQuery(query, table, stub.queries);
    if (answer) socket.send(answer, peer.port, peer.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  stub.port = socket.address().port;
  stub.address = `127.0.0.1:${stub.port}`;
  return stub;
}

function normalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** The reply to one query, or undefined for something that is no query at all. */
function answerQuery(query: Buffer, table: Map<string, StubRecord[]>, log: string[]): Buffer | undefined {
  if (query.length < 12 || (query[2] as number) & 0x80) return undefined;
  const question = readQuestion(query, 12);
  if (!question || query.readUInt16BE(4) !== 1) return header(query, FORMERR, 0, 0);
  const typeName = Object.entries(TYPES).find(([, code]) => code === question.type)?.[0] ?? String(question.type);
  log.push(`${typeName} ${question.name}`);
  const known = table.get(question.name);
  const answers = (known ?? [])
    .filter((r) => TYPES[r.type] === question.type)
    .map((r) => resourceRecord(question.name, r));
  const questionBytes = query.subarray(12, question.end);
  let reply = Buffer.concat([header(query, known ? 0 : NXDOMAIN, 1, answers.length), questionBytes, ...answers]);
  const limit = query.readUInt16BE(10) > 0 ? MAX_EDNS_UDP_BYTES : MAX_UDP_BYTES;
  if (reply.length > limit) {
    reply = Buffer.concat([header(query, 0, 1, 0), questionBytes]);
    reply[2] = (reply[2] as number) | 0x02; // TC: truncated
  }
  return reply;
}

/** The 12-byte header of a reply to `query`: same id, QR and RD copied, RA set. */
function header(query: Buffer, rcode: number, questions: number, answers: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(query.readUInt16BE(0), 0);
  h[2] = 0x80 | ((query[2] as number) & 0x01) | 0x04; // QR, authoritative, RD as asked
  h[3] = 0x80 | rcode; // RA
  h.writeUInt16BE(questions, 4);
  h.writeUInt16BE(answers, 6);
  return h;
}

function readQuestion(query: Buffer, start: number): { name: string; type: number; end: number } | undefined {
  const labels: string[] = [];
  let at = start;
  for (;;) {
    const length = query[at];
    if (length === undefined || length > 63) return undefined;
    at += 1;
    if (length === 0) break;
    if (at + length > query.length) return undefined;
    labels.push(query.toString('latin1', at, at + length));
    at += length;
  }
  if (at + 4 > query.length) return undefined;
  return { name: normalName(labels.join('.')), type: query.readUInt16BE(at), end: at + 4 };
}

function encodeName(name: string): Buffer {
  const parts = name
    .split('.')
    .filter(Boolean)
    .map((label) => {
      const bytes = Buffer.from(label, 'latin1');
      return Buffer.concat([Buffer.from([bytes.length]), bytes]);
    });
  return Buffer.concat([...parts, Buffer.from([0])]);
}

function resourceRecord(name: string, record: StubRecord): Buffer {
  const data = recordData(record);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(TYPES[record.type], 0);
  fixed.writeUInt16BE(1, 2); // class IN
  fixed.writeUInt32BE(60, 4); // TTL
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([encodeName(name), fixed, data]);
}

function recordData(record: StubRecord): Buffer {
  switch (record.type) {
    case 'A':
      if (!isIPv4(record.address)) throw new Error(`${record.address} is not an IPv4 address`);
      return Buffer.from(record.address.split('.').map(Number));
    case 'AAAA':
      if (!isIPv6(record.address)) throw new Error(`${record.address} is not an IPv6 address`);
      return ipv6Bytes(record.address);
    case 'MX': {
      const priority = Buffer.alloc(2);
      priority.writeUInt16BE(record.priority, 0);
      return Buffer.concat([priority, encodeName(record.exchange)]);
    }
    case 'TXT': {
      // A TXT record is a list of strings of at most 255 bytes; long values (DKIM keys) are split.
      const bytes = Buffer.from(record.text, 'utf8');
      const strings: Buffer[] = [];
      for (let at = 0; at < bytes.length || strings.length === 0; at += 255) {
        const piece = bytes.subarray(at, at + 255);
        strings.push(Buffer.from([piece.length]), piece);
      }
      return Buffer.concat(strings);
    }
  }
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const groups = (part: string) => (part ? part.split(':') : []);
  const missing = 8 - groups(head).length - groups(tail).length;
  const all = address.includes('::')
    ? [...groups(head), ...Array<string>(missing).fill('0'), ...groups(tail)]
    : groups(address);
  const out = Buffer.alloc(16);
  all.forEach((g, i) => {
    out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  return out;
}
