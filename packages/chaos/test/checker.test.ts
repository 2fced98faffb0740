// The checker's rules, case by case, on hand-made observations (no servers): what counts as delivered, lost,
// bounced, duplicated (and with which cause), recovered and unexpected, and what breaks the outside promises.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Attempt, check, type NemesisEvent, type Observations, type PlannedMessage } from '../src/index.ts';
import type { Arrival } from '../src/observe.ts';

const inbound: PlannedMessage = { seq: 0, direction: 'inbound', content: 'clean', size: 10240, recipientIndex: 0 };
const smime: PlannedMessage = { seq: 1, direction: 'outbound-smime', content: 'clean', size: 10240, recipientIndex: 0 };
const infected: PlannedMessage = { seq: 2, direction: 'inbound', content: 'infected', size: 10240, recipientIndex: 0 };
const portal: PlannedMessage = { seq: 3, direction: 'outbound-portal', content: 'clean', size: 0, recipientIndex: 0 };
const planned = [inbound, smime, infected, portal];

const accepted = (seq: number, tryNo = 1): Attempt => ({
  id: `${seq}.${tryNo}`,
  seq,
  tryNo,
  reply: '250',
  text: '250 2.0.0 Ok: queued as X',
  gatewayId: `G${seq}${tryNo}`,
});
const refused = (seq: number, reply: Attempt['reply'], tryNo = 1): Attempt => ({
  id: `${seq}.${tryNo}`,
  seq,
  tryNo,
  reply,
  text: reply,
});
const arrival = (over: Partial<Arrival>): Arrival => ({
  sink: 'relay',
  mailFrom: 'someone@example.org',
  attemptId: undefined,
  at: 1000,
  secrets: [],
  eicar: false,
  encrypted: false,
  ...over,
});
const observed = (over: Partial<Observations> = {}): Observations => ({
  arrivals: [],
  mailbox: new Map(),
  quarantine: new Map(),
  states: new Map(),
  queued: { work: 0, retry: 0, parked: 0 },
  ...over,
});
const kill = (startedAt: number): NemesisEvent => ({
  kind: 'kill-9',
  target: 'deliver-2',
  startedAt,
  endedAt: startedAt + 500,
  atAccepted: 1,
});

describe('the chaos checker', () => {
  it('counts an accepted message that reached its destination once as delivered, with no violation', () => {
    const v = check(
      planned,
      [accepted(0), accepted(1), accepted(2), accepted(3)],
      observed({
        arrivals: [
          arrival({ sink: 'relay', attemptId: '0.1', secrets: ['0.1'] }),
          arrival({ sink: 'smarthost', attemptId: '1.1', encrypted: true }),
        ],
        quarantine: new Map([['2.1', [1]]]),
        mailbox: new Map([['3.1', [1]]]),
      }),
      [],
    );
    assert.equal(v.delivered, 4);
    assert.deepEqual(v.violations, []);
    assert.deepEqual(v.byDestination.quarantine, { accepted: 1, once: 1 });
  });

  it('calls an accepted message found nowhere lost, and a bounced one bounced', () => {
    const v = check(planned, [accepted(0), accepted(1)], observed({ states: new Map([['1.1', ['bounced']]]) }), []);
    assert.deepEqual(v.lost, ['0.1']);
    assert.deepEqual(v.bounced, ['1.1']);
    assert.equal(v.violations.length, 1);
    assert.match(v.violations[0] ?? '', /^lost: 0\.1/);
  });

  it('names the fault behind a duplicate, and fails a duplicate that no fault explains', () => {
    const twice = [arrival({ attemptId: '0.1', at: 10_000 }), arrival({ attemptId: '0.1', at: 20_000 })];
    const explained = check(planned, [accepted(0)], observed({ arrivals: twice }), [kill(15_000)]);
    assert.deepEqual(
      explained.duplicated.map((d) => [d.attemptId, d.copies, d.cause]),
      [['0.1', 2, 'kill-9 deliver-2']],
    );
    assert.deepEqual(explained.violations, []);
    const mailboxKill = { ...kill(16_000), target: 'mailbox' };
    const preferred = check(planned, [accepted(0)], observed({ arrivals: twice }), [kill(15_000), mailboxKill]);
    assert.equal(preferred.duplicated[0]?.cause, 'kill-9 deliver-2', 'a deliver crash, not a later mailbox one');
    const unexplained = check(planned, [accepted(0)], observed({ arrivals: twice }), [kill(500_000)]);
    assert.match(unexplained.violations.join('\n'), /duplicate without a fault/);
  });

  it('counts a message that got no 250 but arrived as recovered, and one refused with 5xx that arrived as unexpected', () => {
    const v = check(
      planned,
      [refused(0, 'timeout'), accepted(0, 2), refused(1, '5xx')],
      observed({
        arrivals: [
          arrival({ attemptId: '0.1' }),
          arrival({ attemptId: '0.2' }),
          arrival({ sink: 'smarthost', attemptId: '1.1', encrypted: true }),
        ],
      }),
      [],
    );
    assert.deepEqual(v.recovered, ['0.1']);
    assert.deepEqual(v.refusals, { timeout: 1, '5xx': 1 });
    assert.equal(v.unexpected.length, 1);
    assert.match(v.unexpected[0] ?? '', /1\.1 answered 5xx/);
  });

  it('reports mail no attempt sent, and mail at the wrong sink, as unexpected', () => {
    const v = check(
      planned,
      [accepted(0)],
      observed({
        arrivals: [
          arrival({ attemptId: '0.1' }),
          arrival({ attemptId: undefined, mailFrom: 'stranger@example.org' }),
          arrival({ sink: 'smarthost', attemptId: '0.1', encrypted: true }),
        ],
      }),
      [],
    );
    assert.equal(v.unexpected.length, 2);
  });

  it('fails on anything at the smarthost not wholly encrypted, and on a secret in clear there, even in a notice', () => {
    const v = check(
      planned,
      [accepted(1)],
      observed({
        arrivals: [
          arrival({ sink: 'smarthost', attemptId: '1.1', encrypted: false }),
          arrival({ sink: 'smarthost', mailFrom: '', secrets: ['1.1'] }),
        ],
      }),
      [],
    );
    assert.equal(v.plaintextOutside.length, 2);
  });

  it('fails when an infected message, or EICAR in any mail, reaches a sink', () => {
    const v = check(
      planned,
      [accepted(2)],
      observed({
        arrivals: [arrival({ attemptId: '2.1' }), arrival({ mailFrom: '', eicar: true })],
        quarantine: new Map([['2.1', [1]]]),
      }),
      [],
    );
    assert.equal(v.infectedDelivered.length, 2);
  });

  it('fails when a worker did not stop within its grace period', () => {
    const v = check(planned, [], observed(), [
      { ...kill(1), kind: 'sigterm', violation: 'scan-2 did not stop cleanly within 60 s of SIGTERM' },
    ]);
    assert.deepEqual(v.violations, ['scan-2 did not stop cleanly within 60 s of SIGTERM']);
  });
});
