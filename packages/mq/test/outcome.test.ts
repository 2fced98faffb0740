// How outcomes turn into publishes or parks: a pure function, tested without a broker.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { advance, retryQueue, workQueue } from '@smgw/envelope';
import { next, reject, retry } from '@smgw/mq';
import { isLastAttempt, planOutcome } from '../src/outcome.ts';
import { distinctDelays, mergeLadders } from '../src/topology.ts';
import { testEnvelope } from './fixtures.ts';

const LADDER = [10_000, 30_000, 60_000];

describe('planOutcome', () => {
  it('publishes each next envelope to the head of its own itinerary and drops finished ones', () => {
    const envelope = testEnvelope(['encrypt', 'deliver']);
    const done = advance(envelope, 'encrypt');
    const toMailbox = { ...done, itinerary: ['mailbox' as const] };
    const finished = { ...done, itinerary: [] };
    const plan = planOutcome('encrypt', envelope, next(done, toMailbox, finished), LADDER);
    assert.deepEqual(plan, {
      kind: 'publish',
      publications: [
        { routingKey: workQueue('deliver'), envelope: done },
        { routingKey: workQueue('mailbox'), envelope: toMailbox },
      ],
    });
  });

  const retries = [
    { attempt: 0, queue: retryQueue('scan', 10_000) },
    { attempt: 1, queue: retryQueue('scan', 30_000) },
    { attempt: 2, queue: retryQueue('scan', 60_000) },
  ];
  for (const { attempt, queue } of retries) {
    it(`sends attempt ${attempt} to ${queue} with attempt ${attempt + 1}`, () => {
      const envelope = testEnvelope(['scan'], { attempt });
      const plan = planOutcome('scan', envelope, retry('CLAMD_DOWN', 'refused'), LADDER);
      assert.deepEqual(plan, {
        kind: 'publish',
        publications: [{ routingKey: queue, envelope: { ...envelope, attempt: attempt + 1 } }],
      });
    });
  }

  it('parks with RETRIES_EXHAUSTED and the retry code in the reason after the last ladder step', () => {
    const envelope = testEnvelope(['scan'], { attempt: 3 });
    const plan = planOutcome('scan', envelope, retry('CLAMD_DOWN', 'refused'), LADDER);
    assert.deepEqual(plan, { kind: 'park', envelope, code: 'RETRIES_EXHAUSTED', reason: 'CLAMD_DOWN: refused' });
  });

  it('parks at once when a stage has no ladder', () => {
    const envelope = testEnvelope(['scan']);
    const plan = planOutcome('scan', envelope, retry('CLAMD_DOWN', 'refused'), []);
    assert.equal(plan.kind, 'park');
  });

  it('retries or parks the updated envelope a retry outcome carries', () => {
    const envelope = testEnvelope(['deliver']);
    const updated = { ...envelope, recipients: ['still-pending@example.org'] };
    const plan = planOutcome('deliver', envelope, retry('MX_DEFERRED', '451', updated), LADDER);
    assert.deepEqual(plan, {
      kind: 'publish',
      publications: [{ routingKey: retryQueue('deliver', 10_000), envelope: { ...updated, attempt: 1 } }],
    });
    const last = testEnvelope(['deliver'], { attempt: 3 });
    const parked = planOutcome('deliver', last, retry('MX_DEFERRED', '451', { ...last, hop: 9 }), LADDER);
    assert.equal(parked.kind === 'park' && parked.envelope.hop, 9);
  });

  it('parks a rejected envelope with the handler code and reason', () => {
    const envelope = testEnvelope(['scan']);
    const plan = planOutcome('scan', envelope, reject('MESSAGE_INFECTED', 'Eicar FOUND'), LADDER);
    assert.deepEqual(plan, { kind: 'park', envelope, code: 'MESSAGE_INFECTED', reason: 'Eicar FOUND' });
  });

  it('calls an attempt the last when no ladder step is left', () => {
    assert.equal(isLastAttempt(0, LADDER), false);
    assert.equal(isLastAttempt(2, LADDER), false);
    assert.equal(isLastAttempt(3, LADDER), true);
    assert.equal(isLastAttempt(0, []), true);
  });
});

describe('retry ladders', () => {
  it('needs one delay queue per distinct delay', () => {
    assert.deepEqual(distinctDelays([43_200_000, 300_000, 43_200_000]), [300_000, 43_200_000]);
  });

  it('adds up the ladders of several declarations', () => {
    assert.deepEqual(mergeLadders({ scan: [200], deliver: [5] }, { scan: [100, 200] }), {
      scan: [100, 200],
      deliver: [5],
    });
  });
});
