// What `./smgw up` does when one of its processes exits: restart with backoff, as a supervisor would, unless the
// process said that retrying cannot help.

/** EX_CONFIG (sysexits.h): bad settings, or a port another program holds; the process has said why. */
export const EXIT_CONFIG = 78;

export type AfterExit = { restart: false } | { restart: true; delayMs: number; failures: number };

/** Back off 1 s, 2 s, 4 s … 30 s; a run that lasted a minute counts as healthy again. */
export function afterExit(code: number | string, failuresBefore: number, ranForMs: number): AfterExit {
  if (code === EXIT_CONFIG) return { restart: false };
  const failures = ranForMs > 60_000 ? 1 : failuresBefore + 1;
  return { restart: true, delayMs: Math.min(30_000, 1000 * 2 ** (failures - 1)), failures };
}
