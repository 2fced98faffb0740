// `./smgw chaos [--messages N] [--seed S]`: the chaos suite at full size (issue 12). The gateway runs on servers of
// its own (PostgreSQL, RabbitMQ, Redis, clamd on free ports), so the shared ones and other tests are not touched.
// Prints the checker's table; exit 1 on any violation (lost, unexpected, plaintext outside, infected delivered, a
// duplicate no fault explains, a worker that did not stop within its grace period).
import { parseArgs } from 'node:util';
import { NEMESIS_KINDS, runChaos } from '@smgw/chaos';

const { values } = parseArgs({
  options: { messages: { type: 'string', default: '2000' }, seed: { type: 'string' } },
});
const messages = Number(values.messages);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isInteger(messages) || messages < 10 || !Number.isInteger(seed) || seed < 0) {
  process.stderr.write('usage: ./smgw chaos [--messages N (10 or more, default 2000)] [--seed S (a whole number)]\n');
  process.exit(64);
}

const result = await runChaos({
  messages,
  seed,
  nemeses: NEMESIS_KINDS,
  // Every kind once, and a further kill -9 of a random replica per 150 messages.
  extraKills: Math.floor(messages / 150),
});
process.stdout.write(`${result.table}\n`);
if (result.logsDir) process.stdout.write(`each process's last output: ${result.logsDir}\n`);
process.stdout.write(`again with the same messages and nemeses: ./smgw chaos --messages ${messages} --seed ${seed}\n`);
process.exit(result.verdict.violations.length === 0 ? 0 : 1);
