// The key lookups every outbound message makes must be served by the addresses index: `$1 = any(addresses)` cannot
// use it and read every certificate (6 ms a message at 50,000 certificates), `addresses @> array[$1]` can.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { CURRENT_CERTIFICATES } from '../src/certificates.ts';
import { PGP_KEYS_FOR } from '../src/pgp-keys.ts';

describe('the key lookups of an outbound message', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db?.drop();
  });

  /** The plan of `statement` for one address, with sequential scans made as costly as PostgreSQL allows. */
  async function planOf(statement: (values: unknown[]) => { text: string }): Promise<string> {
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      await client.query('set local enable_seqscan = off');
      const { text } = statement([]);
      const { rows } = await client.query<{ 'QUERY PLAN': string }>({
        text: `explain ${text}`,
        values: ['citizen@buerger.example'],
      });
      return rows.map((row) => row['QUERY PLAN']).join('\n');
    } finally {
      await client.query('rollback');
      client.release();
    }
  }

  for (const [name, statement, table] of [
    ['current certificates', CURRENT_CERTIFICATES, 'certificates'],
    ['OpenPGP keys', PGP_KEYS_FOR, 'pgp_keys'],
  ] as const) {
    it(`finds an address's ${name} through the addresses index, never by reading every row`, async () => {
      const plan = await planOf(statement);
      // The index looked up by the address (a GIN index may also be read whole, for its partial predicate alone).
      assert.match(plan, new RegExp(`Index Scan on ${table}_\\w*addresses_idx`));
      assert.match(plan, /Index Cond: \(addresses @> /);
      assert.doesNotMatch(plan, /Seq Scan/);
    });
  }
});
