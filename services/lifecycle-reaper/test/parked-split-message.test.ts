// A message split at ingest into an internal and an outbound envelope has one message id. When one half is parked
// and the other records anything afterwards (its delivery, a portal read), the parked half is still parked: reported
// and, with SMGW_PARKED_ACTION=remove, given up with a DSN naming its own recipients only. (The parked sweep used to
// want `envelope.parked` as the message's last event: such a half was never reported nor given up, its sender never
// told, its recipient pending for ever.)
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { newMessageId } from '@smgw/envelope';
import { envelopeFixture } from '@smgw/testing';
import { getTrace, recordEvent, recordMessage, recordParkedAt, setRecipientState } from '@smgw/trace';
import { runSweeps } from '../src/run-sweeps.ts';
import { DAY_MS, World } from './world.ts';

const at = (days: number) => new Date(Date.now() + days * DAY_MS);

describe('the parked half of a split message', () => {
  let world: World;
  before(async () => {
    world = await World.create();
  });
  after(() => world.drop());

  /** A message from an agency split at ingest into an internal and an outbound half, both recorded. */
  async function splitMessage(text: string, colleague: string, citizen: string) {
    const id = newMessageId();
    const blob = await world.store.put(Readable.from([Buffer.from(text)]), { messageId: id });
    const common = { id, blob, mailFrom: 'absender@behoerde.example' };
    const internal = envelopeFixture({ ...common, direction: 'internal', recipients: [colleague] });
    const outbound = envelopeFixture({ ...common, direction: 'outbound', recipients: [citizen] });
    await recordMessage(world.db.pool, internal, [
      { stage: 'ingest', event: 'message.received', outcome: 'next', data: { blob: blob.ref } },
    ]);
    await recordMessage(world.db.pool, outbound);
    return { id, internal, outbound };
  }

  it('is given up (DSN to the sender) even though the other half was delivered after it was parked', async () => {
    const { id, outbound } = await splitMessage(
      'Subject: Bescheid\r\nMessage-ID: <b@behoerde.example>\r\n\r\nText\r\n',
      'kollegin@behoerde.example',
      'buerger@extern.example',
    );
    // The outbound half: encrypt's retry ladder ran out, the envelope is parked.
    await recordParkedAt(world.db.pool, 'encrypt')(outbound, 'RETRIES_EXHAUSTED', 'ENCRYPT_FAILED: CRL fetch failed');
    // The internal half reaches its recipient after that (the internal relay was busy for a while).
    await setRecipientState(world.db.pool, id, ['kollegin@behoerde.example'], 'delivered');
    await recordEvent(world.db.pool, id, {
      stage: 'deliver',
      event: 'recipient.delivered',
      outcome: 'done',
      recipient: 'kollegin@behoerde.example',
    });

    const reports = await runSweeps(world.reaperDeps({ parkedAction: 'remove' }), { now: at(31) });
    const parked = reports.find((r) => r.sweep === 'parked');
    const trace = await getTrace(world.db.pool, id);
    const dsns = world.published.filter((e) => e.relatesTo === id);
    assert.deepEqual(
      {
        parkedNote: parked?.note?.startsWith('(1 parked'),
        expired: parked?.items,
        citizenState: trace?.recipients.find((r) => r.address === 'buerger@extern.example')?.state,
        dsnsToSender: dsns.filter((d) => d.recipients.includes('absender@behoerde.example')).length,
      },
      { parkedNote: true, expired: 1, citizenState: 'bounced', dsnsToSender: 1 },
      `parked sweep said: ${JSON.stringify(parked)}`,
    );
  });

  it('gives up both halves parked at one stage together, with one DSN naming both recipients', async () => {
    const { id, internal, outbound } = await splitMessage(
      'Subject: Zwei\r\n\r\nText\r\n',
      'kollege@behoerde.example',
      'buergerin@extern.example',
    );
    await recordParkedAt(world.db.pool, 'scan')(internal, 'RETRIES_EXHAUSTED', 'CLAMD_UNREACHABLE');
    await recordParkedAt(world.db.pool, 'scan')(outbound, 'RETRIES_EXHAUSTED', 'CLAMD_UNREACHABLE');

    const reports = await runSweeps(world.reaperDeps({ parkedAction: 'remove' }), { now: at(31) });
    assert.equal(reports.find((r) => r.sweep === 'parked')?.items, 1);
    const trace = await getTrace(world.db.pool, id);
    assert.deepEqual(
      trace?.recipients.map((r) => r.state),
      ['bounced', 'bounced'],
    );
    assert.equal(trace?.events.filter((e) => e.event === 'envelope.expired').length, 1);
    const dsns = world.published.filter((e) => e.relatesTo === id);
    assert.equal(dsns.length, 1);
    const again = await runSweeps(world.reaperDeps({ parkedAction: 'remove' }), { now: at(32) });
    assert.equal(again.find((r) => r.sweep === 'parked')?.items ?? 0, 0, 'given up once');
  });
});
