import type { StageMetrics } from '@smgw/observability';
import type { Handler } from './types.ts';

/** Wraps a stage's handler so it counts outcomes, times envelopes and tracks how many are in flight. */
export function instrumentHandler(handler: Handler, metrics: StageMetrics): Handler {
  return async (envelope, context) => {
    metrics.inFlight.inc();
    const stopTimer = metrics.duration.startTimer();
    try {
      const outcome = await handler(envelope, context);
      metrics.processed.inc({ outcome: outcome.kind });
      return outcome;
    } finally {
      stopTimer();
      metrics.inFlight.dec();
    }
  };
}
