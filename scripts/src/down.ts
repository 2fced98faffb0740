// `./smgw down`: stops what `./smgw up` started: the supervisor (which stops every service) and our clamd.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const state = process.env.SMGW_STATE_DIR ?? join(process.env.SMGW_ROOT ?? process.cwd(), '.smgw');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stop(name: string, pidFile: string): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!pid || !alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(200);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  process.stdout.write(`stopped ${name} (pid ${pid})\n`);
}

await stop('gateway services', join(state, 'run', 'supervisor.pid'));
if (process.argv.includes('--all')) await stop('clamd', join(state, 'clamav', 'clamd.pid'));
else process.stdout.write('clamd keeps running (./smgw down --all stops it too)\n');
