// The liveness of a deliver process as other deliver processes see it: a random instance id with a heartbeat in
// deliver_instances, renewed every `heartbeatMs` over the ordinary pool. Its `sending` claims name the instance
// (deliveries.owner_instance) and are taken over once the heartbeat is older than `deadAfterMs`. A lost database
// connection (a PostgreSQL restart) costs a heartbeat or two, never the claims: the id outlives every session. (The
// earlier owner, a dedicated session, was lost with it, and claims made while it reconnected had no owner at all.)
//
// No two live deliverers send one recipient at once: a process whose heartbeat has not been renewed for
// `fenceAfterMs` (shorter than `deadAfterMs`, measured from before the last renewal was sent, so it ends before the
// database's view of it does) aborts its sends in flight and claims nothing until a heartbeat succeeds again.
import { randomUUID } from 'node:crypto';
import type { Pool } from '@smgw/db';
import type { Logger } from '@smgw/observability';
import { DELIVER_OWNER_ALIVE_MS } from '@smgw/trace';

export interface OwnerTiming {
  heartbeatMs: number;
  fenceAfterMs: number;
  deadAfterMs: number;
}

/**
 * Renewed every 2 s; others take over after 20 s without one (DELIVER_OWNER_ALIVE_MS: the reaper counts a claim live
 * exactly as long); this process stops its sends after 10 s.
 */
export const OWNER_TIMING: OwnerTiming = {
  heartbeatMs: 2_000,
  fenceAfterMs: 10_000,
  deadAfterMs: DELIVER_OWNER_ALIVE_MS,
};

export interface DeliverOwner {
  /** The instance id its claims carry. */
  readonly id: string;
  /** How long others wait after its last heartbeat before they take its claims over. */
  readonly deadAfterMs: number;
  /** False while its heartbeat is overdue: it may not claim. */
  alive(): boolean;
  /** Aborted when its heartbeat became overdue: every send in flight stops. */
  fence(): AbortSignal;
  /** Stops the heartbeat and removes the instance, so its claims (if any are left) are free at once. */
  close(): Promise<void>;
}

export class OwnerFencedError extends Error {
  readonly code = 'DELIVER_OWNER_FENCED';
  constructor(overdueMs: number) {
    super(`no heartbeat for ${Math.round(overdueMs)} ms: sends stopped so another deliver may take the claims`);
    this.name = 'OwnerFencedError';
  }
}

export async function startOwnerHeartbeat(
  pool: Pool,
  log: Logger,
  timing: OwnerTiming = OWNER_TIMING,
): Promise<DeliverOwner> {
  if (!(timing.fenceAfterMs < timing.deadAfterMs)) throw new RangeError('fenceAfterMs must be below deadAfterMs');
  const id = randomUUID();
  let provenAt = Number.NEGATIVE_INFINITY;
  let fence = new AbortController();
  let beating = false;

  async function beat(): Promise<void> {
    if (beating) return;
    beating = true;
    const sentAt = performance.now();
    try {
      await pool.query(
        `insert into deliver_instances (id, heartbeat_at) values ($1, now())
         on conflict (id) do update set heartbeat_at = now()`,
        [id],
      );
      provenAt = sentAt;
      if (fence.signal.aborted) {
        fence = new AbortController();
        log.info({ code: 'DELIVER_OWNER_ALIVE_AGAIN', instance: id }, 'heartbeat renewed; claiming again');
      }
    } catch (err) {
      log.warn({ code: 'DELIVER_HEARTBEAT_FAILED', instance: id, err }, 'heartbeat not renewed');
    } finally {
      beating = false;
    }
  }
  const overdue = () => performance.now() - provenAt;
  function check(): void {
    if (fence.signal.aborted || overdue() <= timing.fenceAfterMs) return;
    fence.abort(new OwnerFencedError(overdue()));
    log.warn({ code: 'DELIVER_OWNER_FENCED', instance: id }, 'heartbeat overdue; sends in flight stopped');
  }

  // Instances gone for a day have no claims worth protecting.
  await pool.query(`delete from deliver_instances where heartbeat_at < now() - interval '1 day'`);
  await beat();
  if (overdue() > timing.fenceAfterMs) throw new Error('cannot record the deliver instance heartbeat');
  const timer = setInterval(() => {
    check();
    void beat();
  }, timing.heartbeatMs);
  timer.unref();

  return {
    id,
    deadAfterMs: timing.deadAfterMs,
    alive: () => overdue() <= timing.fenceAfterMs,
    fence: () => {
      check();
      return fence.signal;
    },
    async close() {
      clearInterval(timer);
      await pool.query('delete from deliver_instances where id = $1', [id]).catch(() => {});
    },
  };
}
