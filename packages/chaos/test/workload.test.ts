// The generator's messages: the same seed plans the same run; every special size and content is in it; an attempt
// has exactly the planned size, names itself in sender and Message-ID, and carries its secret (or EICAR) in the body.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BLOB_CHUNK_BYTES,
  composeAttempt,
  destinationOf,
  EICAR,
  LARGE_BYTES,
  planNemeses,
  planWorkload,
  secretOf,
  seededRandom,
} from '../src/index.ts';

const STREAM_MAX = 6 * 1024 * 1024;

describe('the chaos workload', () => {
  it('plans the same messages and nemeses from the same seed, and others from another', () => {
    const a = planWorkload(300, seededRandom(7), STREAM_MAX);
    assert.deepEqual(a, planWorkload(300, seededRandom(7), STREAM_MAX));
    assert.notDeepEqual(a, planWorkload(300, seededRandom(8), STREAM_MAX));
    assert.deepEqual(
      planNemeses(seededRandom(7), ['kill-9', 'clamd-down'], 2),
      planNemeses(seededRandom(7), ['kill-9', 'clamd-down'], 2),
    );
  });

  it('has every special size and content, even in a small run', () => {
    const plan = planWorkload(60, seededRandom(1), STREAM_MAX);
    const sizes = new Set(plan.map((m) => m.size));
    for (const size of [0, BLOB_CHUNK_BYTES - 1, BLOB_CHUNK_BYTES, BLOB_CHUNK_BYTES + 1, LARGE_BYTES]) {
      assert.ok(sizes.has(size), `size ${size}`);
    }
    assert.ok(plan.some((m) => m.content === 'over-limit' && m.size > STREAM_MAX));
    assert.ok(plan.filter((m) => m.content === 'infected').length >= 2);
    assert.deepEqual(new Set(plan.map((m) => m.direction)).size, 3);
  });

  it('composes an attempt of exactly the planned size that names itself and carries its secret', () => {
    for (const size of [BLOB_CHUNK_BYTES - 1, BLOB_CHUNK_BYTES, BLOB_CHUNK_BYTES + 1, 10240]) {
      const a = composeAttempt({ seq: 4, direction: 'inbound', content: 'clean', size, recipientIndex: 0 }, 2, 'r1');
      assert.equal(a.raw.length, size);
      assert.ok(a.raw.toString().endsWith('\r\n'));
      assert.ok(a.raw.includes('Message-ID: <chaos-r1-4.2@chaos.test>'));
      assert.ok(a.raw.includes(secretOf('r1', '4.2')));
      assert.equal(a.envelope.from, 'chaos.r1.4.2@sender.example');
      assert.equal(a.listener, 'inbound');
    }
  });

  it('sends an empty body as a header block only, and EICAR inline or as a base64 attachment', () => {
    const empty = composeAttempt(
      { seq: 0, direction: 'outbound-portal', content: 'clean', size: 0, recipientIndex: 0 },
      1,
      'r',
    );
    assert.ok(empty.raw.toString().endsWith('\r\n\r\n'));
    assert.equal(empty.envelope.to[0], 'p.r.0.1@buerger.example');
    const inline = composeAttempt(
      { seq: 2, direction: 'inbound', content: 'infected', size: 10240, recipientIndex: 0 },
      1,
      'r',
    );
    assert.ok(inline.raw.includes(EICAR));
    const attached = composeAttempt(
      { seq: 3, direction: 'outbound-smime', content: 'infected', size: 10240, recipientIndex: 1 },
      1,
      'r',
    );
    assert.ok(attached.raw.includes(Buffer.from(EICAR).toString('base64')));
    assert.equal(attached.listener, 'submission');
  });

  it('sends every message that is not clean to the quarantine', () => {
    assert.equal(destinationOf({ direction: 'outbound-smime', content: 'over-limit' }), 'quarantine');
    assert.equal(destinationOf({ direction: 'inbound', content: 'infected' }), 'quarantine');
    assert.equal(destinationOf({ direction: 'outbound-portal', content: 'clean' }), 'mailbox');
  });
});
