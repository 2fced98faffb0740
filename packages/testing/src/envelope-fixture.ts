import assert from 'node:assert/strict';
import { type Envelope, isMessageId, newEnvelope } from '@smgw/envelope';

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

/** Asserts that a reply is ingest's `250 2.0.0 Ok: queued as <message id>` and returns the message id. */
export function assertQueued(reply: string | undefined): string {
  const id = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(reply ?? '')?.[1];
  assert.ok(id !== undefined && isMessageId(id), `not a "queued as <message id>" reply: ${reply}`);
  return id;
}
