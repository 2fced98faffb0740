// The comparison's arithmetic and its table: plain functions over what the rounds measured.

export interface RoundFigures {
  msgPerSecond: number;
  /** k-th 250 at the source to k-th arrival at the sink, ms (undefined when nothing arrived). */
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  cpuMsPerMessage: number;
  /** The same by part of the system (its processes with their children). */
  cpuMsPerMessageByPart: Record<string, number>;
}

export const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  if (!s.length) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

export const percentile = (sorted: number[], p: number): number | undefined =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : undefined;

/**
 * Latencies without a per-message id on both ends: smtp-source's messages are alike, so the k-th arrival is paired
 * with the k-th 250 (exact for a first-in first-out system, close for one with parallel lanes).
 */
export function orderedLatencies(accepted: number[], arrived: number[]): number[] {
  const a = [...accepted].sort((x, y) => x - y);
  const b = [...arrived].sort((x, y) => x - y);
  const n = Math.min(a.length, b.length);
  return Array.from({ length: n }, (_, i) => (b[i] as number) - (a[i] as number)).sort((x, y) => x - y);
}

export function roundFigures(o: {
  messages: number;
  sourceStart: number;
  accepted: number[];
  arrived: number[];
  cpuByPartMs: Record<string, number>;
}): RoundFigures {
  const cpuMs = Object.values(o.cpuByPartMs).reduce((a, b) => a + b, 0);
  const last = Math.max(...o.arrived);
  const latencies = orderedLatencies(o.accepted, o.arrived);
  return {
    msgPerSecond: o.messages / ((last - o.sourceStart) / 1000),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuMsPerMessage: cpuMs / o.messages,
    cpuMsPerMessageByPart: Object.fromEntries(
      Object.entries(o.cpuByPartMs).map(([part, ms]) => [part, ms / o.messages]),
    ),
  };
}

export interface SystemSummary {
  system: string;
  rounds: RoundFigures[];
}

const fixed = (v: number | undefined, digits: number) =>
  v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);

/** median (min–max) of one figure over the rounds. */
export function spread(rounds: RoundFigures[], pick: (r: RoundFigures) => number | undefined, digits: number): string {
  const values = rounds.map(pick).filter((v): v is number => v !== undefined && Number.isFinite(v));
  if (!values.length) return '–';
  const m = fixed(median(values), digits);
  return values.length > 1 ? `${m} (${fixed(Math.min(...values), digits)}–${fixed(Math.max(...values), digits)})` : m;
}

/** `a / b: throughput …x, CPU per message …x` from the medians of their rounds. */
export function ratioLine(a: SystemSummary, b: SystemSummary): string {
  const rate = (s: SystemSummary) => median(s.rounds.map((r) => r.msgPerSecond));
  const cpu = (s: SystemSummary) => median(s.rounds.map((r) => r.cpuMsPerMessage));
  return (
    `${a.system} / ${b.system}: throughput ${fixed(rate(a) / rate(b), 2)}x, ` +
    `CPU per message ${fixed(cpu(a) / cpu(b), 2)}x`
  );
}

/**
 * One table per message size: a row per system, then the gateway's ratios to each peer (throughput: ours over
 * theirs, higher is better; CPU per message: ours over theirs, lower is better).
 */
export function comparisonTable(label: string, systems: SystemSummary[], ours: string): string {
  const header = ['system', 'msg/s median (range)', 'p50 ms', 'p99 ms', 'CPU ms/msg median (range)'];
  const rows = systems.map((s) => [
    s.system,
    spread(s.rounds, (r) => r.msgPerSecond, 1),
    spread(s.rounds, (r) => r.p50Ms, 0),
    spread(s.rounds, (r) => r.p99Ms, 0),
    spread(s.rounds, (r) => r.cpuMsPerMessage, 2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ');
  const out = [`${label}`, line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  for (const s of systems) {
    const parts = Object.keys(s.rounds[0]?.cpuMsPerMessageByPart ?? {});
    if (parts.length < 2) continue;
    const byPart = parts.map(
      (part) => `${part} ${fixed(median(s.rounds.map((r) => r.cpuMsPerMessageByPart[part] ?? 0)), 2)}`,
    );
    out.push(`  ${s.system} CPU ms/msg by part (median): ${byPart.join(', ')}`);
  }
  const gateway = systems.find((s) => s.system === ours);
  if (gateway) {
    for (const peer of systems.filter((s) => s !== gateway)) out.push(`  ${ratioLine(gateway, peer)}`);
  }
  return out.join('\n');
}
