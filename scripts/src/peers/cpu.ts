// CPU time of a system under test: every process of its process trees, read from /proc/<pid>/stat.
import { readdir, readFile } from 'node:fs/promises';

/** Clock ticks per second of /proc/<pid>/stat's times (`getconf CLK_TCK`: 100 on Linux). */
const TICKS_PER_SECOND = 100;

export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime: the process's own CPU ticks. */
  ownTicks: number;
  /** cutime + cstime: the ticks of its children that have exited and been waited for. */
  reapedChildTicks: number;
}

/** One /proc/<pid>/stat line; the command name may hold spaces and parentheses, so fields count from the last ')'. */
export function parseProcStat(line: string): ProcStat | undefined {
  const pid = Number.parseInt(line, 10);
  const close = line.lastIndexOf(')');
  if (!(pid > 0) || close < 0) return undefined;
  // After ") ": state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17).
  const f = line.slice(close + 2).split(' ');
  const n = (i: number) => Number(f[i - 3]);
  if (![n(4), n(14), n(15), n(16), n(17)].every(Number.isFinite)) return undefined;
  return { pid, ppid: n(4), ownTicks: n(14) + n(15), reapedChildTicks: n(16) + n(17) };
}

/** Every process on the machine now. */
export async function readProcesses(): Promise<ProcStat[]> {
  const names = (await readdir('/proc')).filter((name) => /^\d+$/.test(name));
  const stats = await Promise.all(
    names.map((name) => readFile(`/proc/${name}/stat`, 'utf8').then(parseProcStat, () => undefined)),
  );
  return stats.filter((s): s is ProcStat => s !== undefined);
}

/**
 * CPU milliseconds so far of the trees rooted at `roots`: each process's own time plus the time of its children that
 * have exited (a Postfix smtpd ending at max_use, a PostgreSQL backend at disconnect): their time moves into the
 * parent's cutime, so the sum only grows, and the difference of two readings is the CPU spent in between.
 * `excluded` processes (and their trees) are left out: the bench's own work inside a system's tree, such as the
 * PostgreSQL backend that serves its polling; they must stay alive between the two readings.
 */
export function treeCpuMs(processes: ProcStat[], roots: number[], excluded: number[] = []): number {
  const children = new Map<number, number[]>();
  for (const p of processes) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const byPid = new Map(processes.map((p) => [p.pid, p]));
  const seen = new Set<number>(excluded);
  const stack = roots.filter((pid) => byPid.has(pid));
  let ticks = 0;
  while (stack.length) {
    const pid = stack.pop() as number;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const p = byPid.get(pid) as ProcStat;
    ticks += p.ownTicks + p.reapedChildTicks;
    stack.push(...(children.get(pid) ?? []));
  }
  return (ticks * 1000) / TICKS_PER_SECOND;
}
