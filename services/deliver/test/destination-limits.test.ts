// What keeps a stalling MX (a tarpit) from taking deliver's handlers: the slots per domain and for all MX together,
// the memory of MX destinations that did not answer, and the connect timeout.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyAnswer, type DeliveryAnswer } from '../src/bounce-classification.ts';
import { DestinationSlots, destinationLimitFor, mxLimitFor, noSlotAnswer } from '../src/destination-slots.ts';
import type { RecipientAnswer } from '../src/send-to-destination.ts';
import { SuspendedDestinations, suspendedAnswer, whatAttemptHeard } from '../src/suspended-destinations.ts';
import { connectTimeoutFor } from '../src/transports.ts';

function answer(a: DeliveryAnswer, error?: string): RecipientAnswer {
  return { recipient: 'x@firma.example', classification: classifyAnswer(a), reply: a.reply, error, remoteMta: '' };
}

const timedOut = answer({ errorCode: 'ETIMEDOUT' }, 'Greeting never received');
const refused = answer({ errorCode: 'ECONNREFUSED' }, 'connect ECONNREFUSED 192.0.2.7:25');
const greylisted = answer({ reply: '451 4.7.1 greylisted' });
const unknownUser = answer({ reply: '550 5.1.1 no such user' });
const aborted = answer({ errorCode: 'EABORT' }, 'Message sending aborted');

describe('deliveries at once per destination', () => {
  it('gives a destination its limit of slots and no more, and each its own count', () => {
    const slots = new DestinationSlots(2);
    assert.equal(slots.take('mx:a.example'), 'taken');
    assert.equal(slots.take('mx:a.example'), 'taken');
    assert.equal(slots.take('mx:a.example'), 'destination-full');
    assert.equal(slots.take('mx:b.example'), 'taken');
    slots.release('mx:a.example');
    assert.equal(slots.take('mx:a.example'), 'taken');
    assert.equal(slots.take('mx:a.example'), 'destination-full');
  });

  it('gives all destinations together their total and no more, however many domains are named', () => {
    const slots = new DestinationSlots(2, 3);
    assert.deepEqual(
      ['mx:a.example', 'mx:b.example', 'mx:c.example', 'mx:d.example', 'mx:e.example'].map((k) => slots.take(k)),
      ['taken', 'taken', 'taken', 'all-full', 'all-full'],
    );
    assert.deepEqual(slots.usage(), { inUse: 3, limit: 3 });
    slots.release('mx:b.example');
    assert.equal(slots.take('mx:d.example'), 'taken');
    assert.equal(slots.take('mx:a.example'), 'all-full');
  });

  it('counts nothing back for a slot that was never taken', () => {
    const slots = new DestinationSlots(2, 1);
    slots.release('mx:never.example');
    assert.equal(slots.take('mx:a.example'), 'taken');
    assert.equal(slots.take('mx:b.example'), 'all-full');
  });

  it('leaves half of the handlers (SMGW_PREFETCH) to other destinations, at least 2 for one', () => {
    assert.deepEqual([1, 2, 4, 5, 16, 50].map(destinationLimitFor), [2, 2, 2, 2, 8, 25]);
  });

  it('keeps a quarter of the handlers, at least one, for the relay and the smarthost (none left to keep at 1)', () => {
    assert.deepEqual([1, 2, 3, 4, 8, 16, 50].map(mxLimitFor), [1, 1, 2, 3, 6, 12, 38]);
    for (const prefetch of [2, 3, 4, 8, 16, 50, 1000]) assert.ok(mxLimitFor(prefetch) < prefetch, `${prefetch}`);
  });

  it('defers a recipient without a slot as destination-busy, saying which limit was reached', () => {
    const slots = new DestinationSlots(2, 3);
    const own = noSlotAnswer('x@a.example', 'destination-full', slots);
    const all = noSlotAnswer('x@a.example', 'all-full', slots);
    for (const a of [own, all]) {
      assert.deepEqual(a.classification, { result: 'deferred', category: 'destination-busy', status: '4.4.5' });
    }
    assert.match(own.error ?? '', /as many deliveries in progress as one domain may have/);
    assert.match(all.error ?? '', /^all MX handlers busy: 0 of 3 /);
  });
});

describe('MX destinations that did not answer', () => {
  function memory(options: { maxEntries?: number } = {}) {
    let now = Date.parse('2026-03-02T10:00:00Z');
    const suspended = new SuspendedDestinations({ forMs: 5 * 60_000, now: () => now, ...options });
    return { suspended, advance: (ms: number) => (now += ms) };
  }

  const cases: [string, RecipientAnswer[], boolean, string][] = [
    ['a timeout', [timedOut], false, 'silent'],
    ['a refused connection', [refused], false, 'silent'],
    ['a 4xx reply', [greylisted], false, 'answered'],
    ['a 5xx reply', [unknownUser], false, 'answered'],
    ['a reply for one recipient and a timeout for the others', [unknownUser, timedOut], false, 'silent'],
    ["an abort at the attempt's bound", [aborted], true, 'silent'],
    ['an abort before that bound', [aborted], false, 'unknown'],
    ['replies, with the bound reached just after', [greylisted], true, 'answered'],
    ['no answers at all', [], true, 'unknown'],
  ];
  for (const [what, answers, boundReached, kind] of cases) {
    it(`hears ${kind} in ${what}`, () => {
      assert.equal(whatAttemptHeard(answers, boundReached).kind, kind);
    });
  }

  it('suspends a destination that timed out for a while, then connects to it again', () => {
    const { suspended, advance } = memory();
    suspended.learn('mx:tarpit.example', [timedOut], false);
    assert.match(suspended.suspensionOf('mx:tarpit.example')?.reason ?? '', /^timeout: Greeting never received/);
    assert.equal(suspended.suspensionOf('mx:other.example'), undefined, 'only that destination');
    advance(5 * 60_000 - 1);
    assert.ok(suspended.suspensionOf('mx:tarpit.example'));
    advance(1);
    assert.equal(suspended.suspensionOf('mx:tarpit.example'), undefined);
    assert.equal(suspended.size, 0, 'an expired one is forgotten');
  });

  it('never suspends a destination that replied, and ends a suspension when a reply comes', () => {
    const { suspended } = memory();
    suspended.learn('mx:grey.example', [greylisted], false);
    suspended.learn('mx:strict.example', [unknownUser], false);
    assert.equal(suspended.size, 0);
    suspended.learn('mx:flaky.example', [refused], false);
    assert.ok(suspended.suspensionOf('mx:flaky.example'));
    // an attempt that began before the suspension got through after all
    suspended.learn('mx:flaky.example', [greylisted], false);
    assert.equal(suspended.suspensionOf('mx:flaky.example'), undefined);
  });

  it('remembers a bounded number of destinations, forgetting the oldest first', () => {
    const { suspended, advance } = memory({ maxEntries: 3 });
    for (const d of ['a', 'b', 'c']) {
      suspended.suspend(`mx:${d}.example`, 'timeout');
      advance(1000);
    }
    suspended.suspend('mx:a.example', 'timeout again'); // suspended anew: now the newest
    for (let n = 0; n < 1000; n++) suspended.suspend(`mx:stranger-${n}.example`, 'timeout');
    assert.equal(suspended.size, 3);
    assert.equal(suspended.suspensionOf('mx:a.example'), undefined);
    assert.ok(suspended.suspensionOf('mx:stranger-999.example'));

    const small = memory({ maxEntries: 2 }).suspended;
    small.suspend('mx:a.example', 'timeout');
    small.suspend('mx:b.example', 'timeout');
    small.suspend('mx:a.example', 'timeout');
    small.suspend('mx:c.example', 'timeout');
    assert.equal(small.suspensionOf('mx:b.example'), undefined, 'b was the oldest');
    assert.ok(small.suspensionOf('mx:a.example'));
  });

  it('keeps only the start of a long error', () => {
    const { suspended } = memory();
    suspended.learn('mx:chatty.example', [answer({ errorCode: 'ECONNRESET' }, 'x'.repeat(5000))], false);
    assert.ok((suspended.suspensionOf('mx:chatty.example')?.reason.length ?? 0) <= 200);
  });

  it('defers a recipient of a suspended destination as destination-suspended (4.4.1), saying why', () => {
    const a = suspendedAnswer('x@tarpit.example', 'mx:tarpit.example', {
      since: Date.parse('2026-03-02T10:00:00Z'),
      reason: 'timeout: Greeting never received',
    });
    assert.deepEqual(a.classification, { result: 'deferred', category: 'destination-suspended', status: '4.4.1' });
    assert.equal(
      a.error,
      'delivery to mx:tarpit.example temporarily suspended: its last attempt (2026-03-02T10:00:00.000Z) got no ' +
        'answer (timeout: Greeting never received); not connected, tried again later',
    );
  });
});

describe('connect timeout', () => {
  it('is 30 s, or the SMTP timeout when that is shorter', () => {
    assert.deepEqual([300_000, 30_000, 5000, 1000].map(connectTimeoutFor), [30_000, 30_000, 5000, 1000]);
  });
});
