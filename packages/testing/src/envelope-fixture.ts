import { type Envelope, newEnvelope } from '@smgw/envelope';

/**
 * A valid envelope for a test, made the way ingest makes one (newEnvelope): by default a message from outside to
 * an agency. `overrides` replace fields; a changed direction brings its own itinerary unless one is given too.
 */
export function envelopeFixture(overrides: Partial<Envelope> = {}): Envelope {
  const envelope = newEnvelope({
    direction: overrides.direction ?? 'inbound',
    mailFrom: 'absender@extern.example',
    recipients: ['eingang@behoerde.example'],
    client: { listener: 'inbound', ip: '192.0.2.10', helo: 'mx.extern.example', tls: true },
    blob: { ref: 'a'.repeat(64), sha256: 'a'.repeat(64), size: 100 },
  });
  return { ...envelope, ...overrides };
}
