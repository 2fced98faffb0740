// Envelopes and messages for deliver's tests.
import { type Envelope, newMessageId, newTraceId } from '@smgw/envelope';

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
  return {
    v: 1,
    id: newMessageId(),
    traceId: newTraceId(),
    receivedAt: '2026-03-02T09:00:00.000Z',
    direction: 'inbound',
    mailFrom: 'absender@extern.example',
    recipients: ['eingang@behoerde.example'],
    client: { listener: 'inbound', ip: '192.0.2.10', helo: 'mx.extern.example', tls: true },
    blob: { ref: 'a'.repeat(64), sha256: 'a'.repeat(64), size: 100 },
    itinerary: ['deliver'],
    hop: 1,
    verdicts: {},
    attempt: 0,
    ...overrides,
  };
}
