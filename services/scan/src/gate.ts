// At most `max` runs of one kind of work at once; the others wait their turn, in order. The scan stage holds a whole
// message (and what it takes out of its SignedData) only inside such a gate: with SMGW_PREFETCH envelopes in flight,
// a burst of large signed messages would otherwise hold prefetch × (message + contents) at once.

export interface Gate {
  run<T>(work: () => Promise<T>): Promise<T>;
}

export function createGate(max: number): Gate {
  let running = 0;
  const waiting: Array<() => void> = [];
  return {
    async run(work) {
      if (running < max) running++;
      else await new Promise<void>((enter) => waiting.push(enter));
      try {
        return await work();
      } finally {
        // The place goes straight to the next in line; only when nobody waits is it given back.
        const next = waiting.shift();
        if (next) next();
        else running--;
      }
    },
  };
}
