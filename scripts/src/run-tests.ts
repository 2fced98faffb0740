// `./smgw test`: type check, lint, then every test file with Node's test runner against the real services
// that ./smgw set up (PostgreSQL, RabbitMQ, Redis, clamd). Exit code non-zero on any failure.
// The suites run in two passes: the crash test (the chaos suite at CI size, on servers of its own) runs after the
// others so its ten processes and the nemeses do not share the two cores with them; the last line adds both passes
// up as "tests: N passed, N failed".
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = process.env.SMGW_ROOT ?? process.cwd();
const state = process.env.SMGW_STATE_DIR ?? join(root, '.smgw');
const bin = (name: string) => join(root, 'node_modules', '.bin', name);
const only = process.argv.slice(2);
const totals = { pass: 0, fail: 0, skipped: 0 };
let failed = false;

function step(title: string, command: string, args: string[]): boolean {
  process.stdout.write(`\n\x1b[1m== ${title}\x1b[0m\n`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: process.env });
  if (result.status === 0) return true;
  process.stdout.write(`\n${title} failed (exit ${result.status ?? result.signal})\n`);
  failed = true;
  return false;
}

function tests(title: string, files: string[], extra: string[] = []): void {
  mkdirSync(state, { recursive: true });
  const tap = join(state, `tests-${Object.values(totals).reduce((a, b) => a + b, 0)}-${Date.now()}.tap`);
  step(title, process.execPath, [
    '--test',
    '--test-timeout=1200000',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tap}`,
    ...extra,
    ...files,
  ]);
  let text = '';
  try {
    text = readFileSync(tap, 'utf8');
  } catch {}
  const count = (name: string) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  totals.pass += count('pass');
  totals.fail += count('fail') + count('cancelled');
  totals.skipped += count('skipped') + count('todo');
}

if (only.length === 0) {
  if (!step('type check (tsc, every package)', bin('tsc'), ['-p', 'tsconfig.json'])) process.exit(1);
  if (!step('lint and format check (biome)', bin('biome'), ['check', '.'])) process.exit(1);
  tests(
    'tests (node --test, real PostgreSQL/RabbitMQ/Redis/clamd)',
    [
      'packages/*/test/**/*.test.ts',
      'services/*/test/**/*.test.ts',
      'deploy/test/**/*.test.ts',
      'scripts/test/**/*.test.ts',
      'tests/e2e/**/*.test.ts',
      'tests/browser/**/*.test.ts',
    ],
    ['--test-concurrency=2'],
  );
  tests('crash safety (the chaos suite, 300 messages, every nemesis; on its own PostgreSQL/RabbitMQ/Redis/clamd)', [
    'tests/crash/*.test.ts',
  ]);
} else {
  tests('tests', only);
}
process.stdout.write(`\ntests: ${totals.pass} passed, ${totals.fail} failed, ${totals.skipped} skipped\n`);
process.exit(failed || totals.fail > 0 || totals.pass === 0 ? 1 : 0);
