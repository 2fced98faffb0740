// The statements every message runs are prepared by name (preparedStatement) so that PostgreSQL plans them once per
// connection. Its default (plan_cache_mode=auto) plans them anew on any call where its estimates favour a plan for
// the call's values: measured in the bench (20,000 messages), deliver's claim was planned on 71 % of its calls
// (0.37 ms of PostgreSQL's CPU per message) and its outcomes on 41 %. Every pool therefore asks for generic plans.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPool, type Pool, preparedStatement } from '../src/index.ts';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/smgw';

describe('a pool', () => {
  let pool: Pool;
  before(() => {
    pool = createPool({ url, max: 1, applicationName: 'smgw-db-test-plans' });
  });
  after(async () => {
    await pool.end();
  });

  it('plans a named statement once per connection, whatever the values of its calls', async () => {
    const numbersUpTo = preparedStatement(
      'db-test-numbers-up-to',
      'select count(*) from generate_series(1, $1::int) n',
    );
    for (const n of [1, 2, 3, 1000, 4, 5, 6]) {
      const { rows } = await pool.query<{ count: string }>(numbersUpTo([n]));
      assert.equal(Number(rows[0]?.count), n);
    }
    const { rows } = await pool.query<{ generic_plans: string; custom_plans: string }>(
      `select generic_plans, custom_plans from pg_prepared_statements where name = 'db-test-numbers-up-to'`,
    );
    assert.deepEqual(
      rows.map((r) => ({ generic: Number(r.generic_plans), custom: Number(r.custom_plans) })),
      [{ generic: 7, custom: 0 }],
    );
  });
});
