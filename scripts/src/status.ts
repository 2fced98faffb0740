// `./smgw status`: each service's readiness; exit 0 only when all are ready. While `./smgw up` runs, the services
// it started (its local sinks depend on the relay settings it was started with); otherwise those this shell's
// settings would start.
import { join } from 'node:path';
import { isReady, localServices, readRunningServices } from './services.ts';

const state = process.env.SMGW_STATE_DIR ?? join(process.env.SMGW_ROOT ?? process.cwd(), '.smgw');
const services = readRunningServices(join(state, 'run')) ?? localServices();
const width = Math.max(...services.map((s) => s.name.length));
const results = await Promise.all(services.map(async (s) => ({ s, ready: await isReady(s.readyPort) })));
for (const { s, ready } of results) {
  process.stdout.write(
    `${s.name.padEnd(width)} ${ready ? '\x1b[32mready\x1b[0m' : '\x1b[31mnot ready\x1b[0m'}  http://127.0.0.1:${s.readyPort}/readyz\n`,
  );
}
process.exitCode = results.every((r) => r.ready) ? 0 : 1;
