// Crash safety in `./smgw test`: the chaos suite (@smgw/chaos, `./smgw chaos` at full size) at CI size. 300
// messages in both directions and every size go in over SMTP while each nemesis strikes once at a point drawn from
// the seed (kill -9 and SIGTERM of worker replicas, RabbitMQ, PostgreSQL and Redis restarts, clamd down, the next
// hops answering 4xx, a RabbitMQ alarm) plus two more kill -9s. Every attempt that got a 250 must arrive exactly
// once where it belongs; nothing reaches the outside in clear; nothing infected is delivered.
// The run has PostgreSQL, RabbitMQ, Redis and clamd of its own, so it restarts none of the shared servers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NEMESIS_KINDS, runChaos } from '@smgw/chaos';

const MESSAGES = Number(process.env.SMGW_CRASH_MESSAGES ?? 300);
/** Fixed, so CI plans the same run each time; SMGW_CHAOS_SEED tries others. */
const SEED = Number(process.env.SMGW_CHAOS_SEED ?? 20261203);

describe('crash safety', { timeout: 40 * 60_000 }, () => {
  it('delivers every message that got a 250 exactly once where it belongs through every nemesis, never in clear outside, never infected', async () => {
    const run = await runChaos({ messages: MESSAGES, seed: SEED, nemeses: NEMESIS_KINDS, extraKills: 2 });
    process.stdout.write(`${run.table}\n`);
    const v = run.verdict;
    assert.equal(v.neverAccepted, 0, `every message is accepted in the end:\n${run.table}`);
    assert.deepEqual(v.lost, [], `lost messages:\n${run.table}`);
    assert.deepEqual(v.unexpected, [], `unexpected messages:\n${run.table}`);
    assert.deepEqual(v.plaintextOutside, [], `plaintext outside:\n${run.table}`);
    assert.deepEqual(v.infectedDelivered, [], `infected delivered:\n${run.table}`);
    assert.deepEqual(v.violations, [], `${run.table}\nlogs: ${run.logsDir}`);
  });
});
