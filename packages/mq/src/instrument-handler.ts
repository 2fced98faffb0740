import type { StageMetrics } from '@smgw/observability';
import type { Handler } from './types.ts';

/**
 * Wraps a stage's handler so it counts outcomes, times envelopes, tracks how many are in flight and how old the
 * messages are when the stage takes them.
 */
export function instrumentHandler(handler: Handler, metrics: StageMetrics): Handler {
  return async (envelope, context) => {
    const age = (Date.now() - Date.parse(envelope.receivedAt)) / 1000;
    if (Number.isFinite(age)) metrics.age.observe(Math.max(0, age));
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
