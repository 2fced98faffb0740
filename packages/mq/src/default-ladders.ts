// The retry ladders the gateway runs with when nothing is configured: deliver's from SMGW_DELIVER_RETRY_LADDER's
// default, every other stage's from SMGW_STAGE_RETRY_LADDER's. Used to export the deployable definitions file.
import { type Setting, settings } from '@smgw/config';
import { STAGES } from '@smgw/envelope';
import type { RetryLadders } from './topology.ts';

function fallbackOf(setting: Setting<number[]>): number[] {
  if (setting.fallback === undefined) throw new Error(`${setting.env} has no default`);
  return setting.parse(setting.fallback);
}

export function defaultRetryLadders(): RetryLadders {
  const deliver = fallbackOf(settings.deliverRetryLadder);
  const other = fallbackOf(settings.stageRetryLadder);
  const ladders: RetryLadders = {};
  for (const stage of STAGES) ladders[stage] = stage === 'deliver' ? deliver : other;
  return ladders;
}
