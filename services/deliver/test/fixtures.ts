// Envelopes and messages for deliver's tests.
import type { Envelope } from '@smgw/envelope';
import { envelopeFixture } from '@smgw/testing';

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
