#!/usr/bin/env node
// The operator CLI: wraps the admin API (SPEC.md). `./smgw <command>` or `pnpm smgw <command>`.
// Reads SMGW_ADMIN_URL (default http://127.0.0.1:8081/api/v1) and SMGW_ADMIN_TOKEN.
import { formatTrace } from './format-trace.ts';

const USAGE = `operator commands (talk to the admin API):
  trace <message-id> [--json]   every stage, outcome, time and reason of a message, per recipient
  help                          this text
settings: SMGW_ADMIN_URL (default http://127.0.0.1:8081/api/v1), SMGW_ADMIN_TOKEN`;

export async function runCli(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [command, ...args] = argv;
  const base = (env.SMGW_ADMIN_URL ?? `http://127.0.0.1:${env.SMGW_ADMIN_PORT ?? '8081'}/api/v1`).replace(/\/$/, '');
  const json = args.includes('--json');
  const positional = args.filter((a) => !a.startsWith('--'));

  async function call(method: string, path: string): Promise<{ status: number; body: unknown }> {
    if (!env.SMGW_ADMIN_TOKEN) throw new CliError('SMGW_ADMIN_TOKEN is not set (./smgw up prints it)');
    let res: Response;
    try {
      res = await fetch(base + path, { method, headers: { authorization: `Bearer ${env.SMGW_ADMIN_TOKEN}` } });
    } catch (err) {
      throw new CliError(`cannot reach the admin API at ${base}: ${(err as Error).cause ?? (err as Error).message}`);
    }
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: res.status, body };
  }

  try {
    switch (command) {
      case 'trace':
      case 'message': {
        const id = positional[0];
        if (!id) throw new CliError('usage: trace <message-id>');
        const { status, body } = await call('GET', `/messages/${encodeURIComponent(id)}`);
        if (status !== 200) throw new CliError(errorText(status, body));
        process.stdout.write(json ? `${JSON.stringify(body, null, 2)}\n` : formatTrace(body as never));
        return 0;
      }
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        return 0;
      default:
        throw new CliError(`unknown command "${command}"\n${USAGE}`);
    }
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    process.stderr.write(`smgw: ${err.message}\n`);
    return 1;
  }
}

class CliError extends Error {}

function errorText(status: number, body: unknown): string {
  const e = (body as { error?: { code?: string; message?: string } })?.error;
  return e ? `${e.code}: ${e.message} (HTTP ${status})` : `HTTP ${status}: ${String(body).slice(0, 200)}`;
}

if (import.meta.main) {
  process.exitCode = await runCli(process.argv.slice(2));
}
