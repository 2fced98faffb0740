// `./smgw status`: each service's readiness; exit 0 only when all are ready.
import { isReady, localServices } from './services.ts';

const services = localServices();
const results = await Promise.all(services.map(async (s) => ({ s, ready: await isReady(s.readyPort) })));
for (const { s, ready } of results) {
  process.stdout.write(
    `${s.name.padEnd(8)} ${ready ? '\x1b[32mready\x1b[0m' : '\x1b[31mnot ready\x1b[0m'}  http://127.0.0.1:${s.readyPort}/readyz\n`,
  );
}
process.exitCode = results.every((r) => r.ready) ? 0 : 1;
