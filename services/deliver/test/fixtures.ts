import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// Envelopes and messages for deliver's tests.
import type { Envelope } from '@smgw/envelope';
import { envelopeFixture } from '@smgw/testing';

/** A throw-away self-signed certificate and key (PEM) for `subjectAltName` (`DNS:name,IP:address`), by openssl. */
export function selfSignedCertificate(commonName: string, subjectAltName: string): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'smgw-deliver-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        `/CN=${commonName}`,
        '-addext',
        `subjectAltName=${subjectAltName}`,
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A message as encrypt would send it outside: sampleMessage encrypted to a throw-away certificate by the real
 * openssl (the deliver guard reads the bytes, so a plaintext with an "encrypted" verdict would not leave).
 */
export function encryptedSampleMessage(subject = 'Bescheid 2026/17'): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'smgw-deliver-'));
  try {
    writeFileSync(join(dir, 'c.pem'), selfSignedCertificate('buerger', 'email:buerger@example.org').cert);
    writeFileSync(join(dir, 'm.eml'), sampleMessage(subject));
    const encrypted = execFileSync('openssl', [
      'cms',
      '-encrypt',
      '-aes256',
      '-in',
      join(dir, 'm.eml'),
      join(dir, 'c.pem'),
    ]);
    // openssl writes LF line ends; on the wire (and in what ingest stores) every line ends in CRLF.
    return Buffer.from(encrypted.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function sampleMessage(subject = 'Bescheid 2026/17'): Buffer {
  return Buffer.from(
    [
      'From: Sachbearbeitung <sb@behoerde.example>',
      'To: buerger@behoerde.example',
      `Subject: ${subject}`,
      'Message-ID: <original-1@behoerde.example>',
      'Date: Mon, 02 Mar 2026 10:00:00 +0100',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      'Sehr geehrte Damen und Herren,',
      '',
      'anbei der Bescheid. Größe und Umlaute müssen unverändert ankommen.',
      '.leading dot must survive dot-stuffing',
      '',
    ].join('\r\n'),
  );
}

export function sampleEnvelope(overrides: Partial<Envelope> = {}): Envelope {
  return envelopeFixture({ receivedAt: '2026-03-02T09:00:00.000Z', itinerary: ['deliver'], hop: 1, ...overrides });
}

/**
 * Recipients whose text after the last `@` is the agency domain `behoerde.example`, but which are no plain address:
 * nodemailer's addressparser reads the first four as (or as including) the outside address `x@evil.example` (found
 * by the security review), the last is longer than an address may be.
 */
export const NOT_PLAIN_AGENCY_LOOKALIKES = [
  '<x@evil.example>@behoerde.example',
  'x@evil.example, y@behoerde.example',
  'x@evil.example;y@behoerde.example',
  'x@evil.example\n@behoerde.example',
  // 255 octets: longer than RFC 5321 lets an address be (@smgw/config addressTooLong); an envelope from before ingest
  // refused them may still hold one.
  `${'l'.repeat(238)}@behoerde.example`,
];
