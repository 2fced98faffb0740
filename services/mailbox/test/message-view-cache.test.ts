// The minute's view cache (message-view-cache.ts) on its own: a view or quote made while its mailbox or message was
// forgotten (a logout, a deletion while the worker ran) is not kept when it comes back.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CachedViewOutcome, createMessageViewCache } from '../src/portal/message-view-cache.ts';

const outcome: CachedViewOutcome = { timedOut: 'parsing' };
const cache = () => createMessageViewCache({ ttlMs: 60_000, maxBytes: 1024 * 1024, now: () => 0 });

describe('the message view cache', () => {
  it('keeps a view made with no forget since its stamp, for its mailbox and message only', () => {
    const views = cache();
    views.set('view', 'a', 'r1', outcome, views.stamp());
    assert.deepEqual(views.get('view', 'a', 'r1'), outcome);
    assert.equal(views.get('view', 'b', 'r1'), undefined);
    assert.equal(views.get('quote', 'a', 'r1'), undefined);
  });

  it('does not keep a view whose mailbox was forgotten while it was made (logout, mailbox deleted)', () => {
    const views = cache();
    const stamp = views.stamp();
    views.forgetMailbox('a');
    views.set('view', 'a', 'r1', outcome, stamp);
    views.set('quote', 'a', 'r1', { done: undefined }, stamp);
    assert.equal(views.get('view', 'a', 'r1'), undefined);
    assert.equal(views.get('quote', 'a', 'r1'), undefined);
    // Made after the forget, it is kept.
    views.set('view', 'a', 'r1', outcome, views.stamp());
    assert.deepEqual(views.get('view', 'a', 'r1'), outcome);
  });

  it("does not keep a view whose message was deleted while it was made; other mailboxes' views are kept", () => {
    const views = cache();
    const stamp = views.stamp();
    views.forgetMessages('a', ['r1']);
    views.set('view', 'a', 'r1', outcome, stamp);
    views.set('view', 'b', 'r1', outcome, stamp);
    assert.equal(views.get('view', 'a', 'r1'), undefined);
    assert.deepEqual(views.get('view', 'b', 'r1'), outcome);
  });
});
