// A PIN mail whose publish reached the broker but whose confirm did not come back (the channel or connection closed in
// between; or the process died between the confirm and the commit that marks the token) is made again by a later
// tick: under the same id (messageIdFor the token), so deliver, which sends a (message id, recipient) once, does not
// send a second PIN mail. (A fresh id per try made it two mails.)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Envelope } from '@smgw/envelope';
import { ensureActivationToken, ensureMailbox } from '@smgw/mailbox-store';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { type PinMailDeps, sendDuePinMails } from '../src/pin-mail-sweep.ts';
import { type SweepWorld, sweepWorld } from './sweep-world.ts';

const HOUR = 3_600_000;

describe('a PIN mail after an unconfirmed publish', () => {
  let db: TestDatabase;
  let world: SweepWorld;

  before(async () => {
    db = await createTestDatabase();
    world = await sweepWorld(db);
  });
  after(async () => {
    await db?.drop();
  });

  it('sends the PIN mail again under the same id, so deliver can tell it is the same mail', async () => {
    const t0 = new Date('2026-03-01T10:00:00Z');
    const address = 'pin-zweimal@buerger.example';
    const { mailbox } = await ensureMailbox(db.pool, address, world.mailboxKeys);
    await ensureActivationToken(db.pool, {
      mailbox,
      keys: world.mailboxKeys,
      now: t0,
      lifetimeMs: 24 * HOUR,
      pinDelayMs: HOUR,
    });

    // What reached the broker (and so deliver), whether or not the confirm came back.
    const atBroker: Envelope[] = [];
    let confirmLost = true;
    const deps = (now: Date): PinMailDeps => ({
      ...world.deps(now),
      retryDelayMs: 60_000,
      publish: async (envelope) => {
        atBroker.push(envelope);
        if (confirmLost) {
          confirmLost = false;
          throw Object.assign(new Error('channel closed before the confirm arrived'), {
            code: 'MQ_PUBLISH_UNCONFIRMED',
          });
        }
      },
    });

    const t1 = new Date(t0.getTime() + HOUR);
    assert.equal(await sendDuePinMails(deps(t1)), 0, 'first try: the confirm is lost, the token is deferred');
    assert.equal(await sendDuePinMails(deps(new Date(t1.getTime() + 61_000))), 1, 'second try: confirmed');

    const toCitizen = atBroker.filter((e) => e.recipients.includes(address));
    assert.equal(toCitizen.length, 2, 'both publishes reached the broker');
    assert.equal(
      new Set(toCitizen.map((e) => e.id)).size,
      1,
      `deliver de-duplicates by message id: two ids (${toCitizen.map((e) => e.id).join(', ')}) are two PIN mails`,
    );
  });
});
