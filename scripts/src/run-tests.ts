// `./smgw test`: type check, lint, then every test file with Node's test runner against the real services
// that ./smgw set up (PostgreSQL, RabbitMQ, Redis, clamd). Exit code non-zero on any failure.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = process.env.SMGW_ROOT ?? process.cwd();
const bin = (name: string) => join(root, 'node_modules', '.bin', name);
const only = process.argv.slice(2);

function step(title: string, command: string, args: string[]): void {
  process.stdout.write(`\n\x1b[1m== ${title}\x1b[0m\n`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: process.env });
  if (result.status !== 0) {
    process.stdout.write(`\n${title} failed (exit ${result.status ?? result.signal})\n`);
    process.exit(result.status || 1);
  }
}

if (only.length === 0) {
  step('type check (tsc, every package)', bin('tsc'), ['-p', 'tsconfig.json']);
  step('lint and format check (biome)', bin('biome'), ['check', '.']);
}
const files = only.length
  ? only
  : ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'deploy/test/**/*.test.ts', 'tests/**/*.test.ts'];
step('tests (node --test, real PostgreSQL/RabbitMQ/Redis/clamd)', process.execPath, [
  '--test',
  '--test-concurrency=2',
  '--test-timeout=600000',
  '--test-reporter=spec',
  ...files,
]);
