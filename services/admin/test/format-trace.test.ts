// The trace as `./smgw trace` prints it: the route ingest chose is shown, so an operator sees why a stage is missing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MessageTrace } from '@smgw/trace';
import { formatTrace } from '../src/format-trace.ts';

function trace(data: unknown): MessageTrace {
  return {
    id: '01JNQ2Z8Y6W3V9T4R5S7P8M0KA',
    traceId: 'a'.repeat(32),
    direction: 'inbound',
    mailFrom: 'a@example.org',
    size: 120,
    receivedAt: '2026-03-02T09:00:00.000Z',
    client: { ip: '192.0.2.1', helo: 'mx.example.org', user: null, tls: true },
    relatesTo: null,
    recipients: [],
    events: [
      {
        at: '2026-03-02T09:00:00.000Z',
        stage: 'ingest',
        event: 'message.received',
        outcome: 'next',
        code: null,
        reason: null,
        recipient: null,
        data,
      },
    ],
  };
}

describe('the trace an operator reads', () => {
  it('shows that plain inbound mail skipped encrypt', () => {
    const out = formatTrace(
      trace({
        envelopes: [{ direction: 'inbound', recipients: 1, itinerary: ['scan', 'verify', 'deliver'] }],
        encryptStage: { skipped: true, reasons: [] },
      }),
    );
    assert.match(
      out,
      /ingest {3}message\.received {2}→ next\n {37}route inbound: scan → verify → deliver \(encrypt skipped: plain\)\n/,
    );
  });

  it('shows why inbound mail goes through encrypt', () => {
    const out = formatTrace(
      trace({
        envelopes: [{ direction: 'inbound', recipients: 1, itinerary: ['encrypt', 'scan', 'verify', 'deliver'] }],
        encryptStage: { skipped: false, reasons: ['smime-encrypted'] },
      }),
    );
    assert.match(out, /route inbound: encrypt → scan → verify → deliver \(encrypt: smime-encrypted\)\n/);
  });

  it('shows each route of a split submission, and nothing for events without one (older traces too)', () => {
    const out = formatTrace(
      trace({
        envelopes: [
          { direction: 'internal', recipients: 1, itinerary: ['scan', 'verify', 'deliver'] },
          { direction: 'outbound', recipients: 2, itinerary: ['scan', 'encrypt', 'deliver'] },
        ],
      }),
    );
    assert.match(out, /route internal: scan → verify → deliver\n {37}route outbound: scan → encrypt → deliver\n/);
    for (const data of [null, { envelopes: [{ direction: 'inbound', recipients: 1 }] }, { envelopes: 'x' }]) {
      assert.doesNotMatch(formatTrace(trace(data)), /route/);
    }
  });

  it('keeps every event on its line when text from strangers in it holds line breaks', () => {
    const forged = '2026-03-02T09:00:01.000Z  deliver  recipient.delivered a@agency.example  → next';
    const t = trace(null);
    t.client.helo = `mx.example.org\n${forged}`;
    t.events.push({ ...(t.events[0] as MessageTrace['events'][number]), reason: `550 no\r\n${forged}`, code: 'X' });
    const out = formatTrace(t);
    assert.equal(out.split('\n').filter((line) => line.includes('recipient.delivered')).length, 2);
    for (const line of out.split('\n').filter((l) => l.includes('recipient.delivered'))) {
      assert.doesNotMatch(line, /^ {2}2026-03-02T09:00:01/, 'no line of its own');
      assert.match(line, /\\n2026-03-02T09:00:01/);
    }
  });
});
