// countBuffersInHeapLimit: short-lived Buffers no longer set off mark-compacts of the whole heap (run-service.ts).
import assert from 'node:assert/strict';
import { constants, type NodeGCPerformanceDetail, PerformanceObserver } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { countBuffersInHeapLimit } from '../src/run-service.ts';

/** Mark-compacts (major collections) while a stream of 100 KB Buffers passes through, 20 alive at a time. */
async function majorCollectionsWhileStreaming(): Promise<number> {
  let majors = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const { kind } = (entry as { detail?: NodeGCPerformanceDetail }).detail ?? {};
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const inFlight: Buffer[] = [];
  for (let i = 0; i < 10_000; i++) {
    inFlight.push(Buffer.alloc(100 * 1024, i));
    if (inFlight.length > 20) inFlight.shift();
  }
  // The observer is told after the collection, from a task of its own.
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  return majors;
}

describe('countBuffersInHeapLimit', () => {
  it('lets young collections free streamed Buffers instead of mark-compacts', async () => {
    const before = await majorCollectionsWhileStreaming();
    countBuffersInHeapLimit();
    const after = await majorCollectionsWhileStreaming();
    assert.ok(before >= 5, `V8's default: a mark-compact every ~64 MB of Buffers (${before} for 1 GB)`);
    assert.equal(after, 0);
  });
});
