// What the generator sends: N messages, each with a direction, a content and a size, planned from the seed; and
// the bytes of one attempt at sending one of them. Every attempt is identified by `<seq>.<try>` in its envelope
// sender, its Message-ID (an outer header field that survives encryption) and, in its body, a secret that must
// never reach the outside in clear.
import type { Random } from './random.ts';

/** inbound: internet → agency (MX port); outbound: agency → outside (submission) to a recipient with a certificate
 * (S/MIME) or without any key (the portal mailbox). */
export type Direction = 'inbound' | 'outbound-smime' | 'outbound-portal';
export type Content = 'clean' | 'infected' | 'over-limit';
/** Where a message that got a 250 must end up, exactly once. */
export type Destination = 'relay' | 'smarthost' | 'mailbox' | 'quarantine';

export interface PlannedMessage {
  seq: number;
  direction: Direction;
  content: Content;
  /** Bytes of the whole message as sent (header and body); 0-byte messages have a header and an empty body. */
  size: number;
  /** Which of the certificate holders an S/MIME message goes to. */
  recipientIndex: number;
}

export const BLOB_CHUNK_BYTES = 256 * 1024;
export const LARGE_BYTES = 5 * 1024 * 1024;
export const TYPICAL_BYTES = 10 * 1024;
/** S/MIME recipients the run issues certificates for. */
export const CERTIFICATE_HOLDERS = ['buerger0@example.org', 'buerger1@example.org', 'buerger2@example.org'] as const;

export function destinationOf(m: Pick<PlannedMessage, 'direction' | 'content'>): Destination {
  if (m.content !== 'clean') return 'quarantine'; // scan fails closed: a finding or a message clamd refuses
  if (m.direction === 'inbound') return 'relay';
  return m.direction === 'outbound-smime' ? 'smarthost' : 'mailbox';
}

/**
 * N messages: most of 10 KB, and of each special size and content at least one (for N large enough several): an
 * empty body, one byte either side of the blob chunk boundary, 5 MB, more than clamd's StreamMaxLength, and
 * infected ones (EICAR). Directions: 60 % inbound, 30 % S/MIME, 10 % portal, drawn per message.
 */
export function planWorkload(n: number, random: Random, clamdStreamMaxBytes: number): PlannedMessage[] {
  const special: Array<{ size: number; content: Content; count: number }> = [
    { size: 0, content: 'clean', count: Math.max(2, Math.floor(n / 100)) },
    { size: BLOB_CHUNK_BYTES - 1, content: 'clean', count: Math.max(1, Math.floor(n / 200)) },
    { size: BLOB_CHUNK_BYTES, content: 'clean', count: Math.max(1, Math.floor(n / 200)) },
    { size: BLOB_CHUNK_BYTES + 1, content: 'clean', count: Math.max(1, Math.floor(n / 200)) },
    { size: LARGE_BYTES, content: 'clean', count: Math.max(1, Math.floor(n / 400)) },
    { size: clamdStreamMaxBytes + 1024 * 1024, content: 'over-limit', count: Math.max(1, Math.floor(n / 500)) },
    { size: TYPICAL_BYTES, content: 'infected', count: Math.max(2, Math.floor(n / 50)) },
  ];
  const kinds: Array<{ size: number; content: Content }> = special.flatMap((s) =>
    Array.from({ length: s.count }, () => ({ size: s.size, content: s.content })),
  );
  while (kinds.length < n) kinds.push({ size: TYPICAL_BYTES, content: 'clean' });
  // Shuffle (Fisher–Yates) so the large and special ones are spread over the run.
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j] as (typeof kinds)[number], kinds[i] as (typeof kinds)[number]];
  }
  return kinds.slice(0, n).map((k, seq) => {
    const r = random.next();
    const direction: Direction = r < 0.6 ? 'inbound' : r < 0.9 ? 'outbound-smime' : 'outbound-portal';
    return { seq, direction, ...k, recipientIndex: random.int(0, CERTIFICATE_HOLDERS.length - 1) };
  });
}

/** EICAR, assembled at run time so that this file is not itself a "virus". */
export const EICAR = `X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-${'STANDARD-ANTIVIRUS-TEST-FILE'}!$H+H*`;

export interface ComposedAttempt {
  listener: 'inbound' | 'submission';
  envelope: { from: string; to: string[] };
  raw: Buffer;
}

export const attemptId = (seq: number, tryNo: number) => `${seq}.${tryNo}`;

/** The secret in an attempt's body: found outside in clear means a plaintext leak. */
export const secretOf = (runId: string, id: string) => `SECRET-${runId}-${id}-`;
export const messageIdOf = (runId: string, id: string) => `chaos-${runId}-${id}@chaos.test`;
/** A portal recipient of its own per attempt: one mailbox per attempt tells copies apart. */
export const portalRecipientOf = (runId: string, id: string) => `p.${runId}.${id}@buerger.example`;

/** The bytes and envelope of one attempt at sending `m` (`tryNo` from 1). */
export function composeAttempt(m: PlannedMessage, tryNo: number, runId: string): ComposedAttempt {
  const id = attemptId(m.seq, tryNo);
  const local = `chaos.${runId}.${id}`;
  const [listener, from, to]: [ComposedAttempt['listener'], string, string] =
    m.direction === 'inbound'
      ? ['inbound', `${local}@sender.example`, `amt${m.seq % 7}@behoerde.example`]
      : m.direction === 'outbound-smime'
        ? ['submission', `${local}@behoerde.example`, CERTIFICATE_HOLDERS[m.recipientIndex] as string]
        : ['submission', `${local}@behoerde.example`, portalRecipientOf(runId, id)];
  const infectedAsAttachment = m.content === 'infected' && m.seq % 2 === 1;
  const boundary = `chaos-${id}`;
  const header = [
    `From: <${from}>`,
    `To: <${to}>`,
    `Subject: chaos ${runId} ${id}`,
    `Message-ID: <${messageIdOf(runId, id)}>`,
    'Date: Thu, 03 Dec 2026 10:00:00 +0000',
    'MIME-Version: 1.0',
    infectedAsAttachment
      ? `Content-Type: multipart/mixed; boundary="${boundary}"`
      : 'Content-Type: text/plain; charset=us-ascii',
    '',
    '',
  ].join('\r\n');
  let body = '';
  if (m.size > 0 || m.content !== 'clean') {
    const secret = `${secretOf(runId, id)}\r\n`;
    const payload =
      m.content === 'infected'
        ? infectedAsAttachment
          ? [
              `--${boundary}\r\nContent-Type: text/plain\r\n\r\n${secret}`,
              `--${boundary}\r\nContent-Type: application/octet-stream; name="r.com"\r\n`,
              `Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="r.com"\r\n\r\n`,
              `${Buffer.from(EICAR).toString('base64')}\r\n--${boundary}--\r\n`,
            ].join('')
          : `${secret}${EICAR}\r\n`
        : secret;
    const line = `${id} `.padEnd(76, 'x');
    const fill = Math.max(0, m.size - header.length - payload.length);
    body = payload + `${line}\r\n`.repeat(Math.ceil(fill / 78)).slice(0, fill);
    if (fill > 0 && !body.endsWith('\r\n')) body = `${body.slice(0, -2)}\r\n`; // SMTP data ends with CRLF
  }
  return { listener, envelope: { from, to: [to] }, raw: Buffer.from(header + body, 'latin1') };
}
