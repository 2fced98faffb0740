// What Kubernetes (or `./smgw up`) does for the run: a service process that exits on its own is started again. Each
// such exit is recorded with the last error code it logged: not a lost message, but a finding for the table.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServiceProcess, TestGateway } from '@smgw/testing';

export interface UnplannedExit {
  process: string;
  /** Epoch milliseconds. */
  at: number;
  exit: string;
  /** The `code` of the last error or fatal log line before the exit. */
  lastCode: string | undefined;
}

function lastErrorCode(p: ServiceProcess): string | undefined {
  for (const line of p.output.join('').split('\n').reverse()) {
    try {
      const entry = JSON.parse(line) as { level?: number; code?: unknown };
      if ((entry.level ?? 0) >= 50 && typeof entry.code === 'string') return entry.code;
    } catch {} // not a log line
  }
  return undefined;
}

/** Restarts any process that exits while no nemesis holds it (`busy`), until `stop()`; returns what it saw. */
export function superviseProcesses(gateway: TestGateway, busy: ReadonlySet<string>) {
  const exits: UnplannedExit[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const p of Object.values(gateway.services)) {
        const child = p.child;
        if (!running || busy.has(p.name) || !child || (child.exitCode === null && child.signalCode === null)) continue;
        exits.push({
          process: p.name,
          at: Date.now(),
          exit: child.signalCode ? `signal ${child.signalCode}` : `exit ${child.exitCode}`,
          lastCode: lastErrorCode(p),
        });
        await p.start().catch(() => {}); // tried again on the next round
      }
      await sleep(250);
    }
  })();
  return {
    exits,
    async stop() {
      running = false;
      await loop;
    },
  };
}
