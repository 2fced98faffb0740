import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { TestDatabase } from './isolation.ts';

/** `pg_dump` of the test's schema (bytea columns come out as hex): for "no plaintext at rest" assertions. */
export async function dumpTestSchema(db: Pick<TestDatabase, 'url' | 'schema'>): Promise<Buffer> {
  const url = new URL(db.url);
  const { stdout } = await promisify(execFile)(
    'pg_dump',
    [
      '--no-owner',
      '-n',
      db.schema,
      '-h',
      url.hostname,
      '-p',
      url.port || '5432',
      '-U',
      url.username || 'postgres',
      url.pathname.slice(1),
    ],
    { maxBuffer: 256 * 1024 * 1024, encoding: 'buffer', env: { ...process.env, PGPASSWORD: url.password } },
  );
  return stdout as Buffer;
}

/** Whether the dump holds `marker`, as text or as the hex of a bytea column. */
export function dumpHolds(dump: Buffer, marker: string): boolean {
  return dump.includes(Buffer.from(marker)) || dump.includes(Buffer.from(Buffer.from(marker).toString('hex')));
}
