// The functions with the most self time in V8 .cpuprofile files (node --cpu-prof), summed over the files given.
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export interface SelfTime {
  name: string;
  ms: number;
  share: number;
}

/** Self time per function (name and file:line), from each profile's samples and their time deltas. */
export function selfTimes(profiles: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }[]): SelfTime[] {
  const byName = new Map<string, number>();
  let total = 0;
  for (const p of profiles) {
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const node = nodes.get(id);
      const us = p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0;
      if (!node) return;
      const { functionName, url, lineNumber } = node.callFrame;
      if (functionName === '(idle)') return; // waiting, not working; (program) is native work and stays
      const file = url.replace(
        /^file:\/\/.*?\/(node_modules\/\.pnpm\/[^/]+\/node_modules\/|services\/|packages\/)/,
        '',
      );
      const name = `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
      byName.set(name, (byName.get(name) ?? 0) + us);
      total += us;
    });
  }
  return [...byName.entries()]
    .map(([name, us]) => ({ name, ms: us / 1000, share: total ? us / total : 0 }))
    .sort((a, b) => b.ms - a.ms);
}

export async function topSelfTime(files: string[], n = 10): Promise<SelfTime[]> {
  const profiles = await Promise.all(files.map(async (f) => JSON.parse(await readFile(f, 'utf8'))));
  return selfTimes(profiles).slice(0, n);
}
