// Migration 024: a member of smgw_app (the role the services connect as) reads and writes the gateway's rows and can
// do nothing else: no DDL, no TRUNCATE, no migration bookkeeping. Every table, also one a later migration adds, has
// the rights; the schema is one of the test's own, as the migration must work in whatever schema it runs in.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createPool, migrate, type Pool } from '../src/index.ts';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/smgw';

describe('migration 024: the application role', () => {
  const schema = `t_m024_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  // A login role of this test's own, a member of smgw_app as the deployment's service role is (trusted: no password).
  const serviceRole = `smgw_t_${randomBytes(6).toString('hex')}`;
  let owner: Pool;
  let service: Pool;

  before(async () => {
    owner = createPool({ url, schema, max: 2, applicationName: 'smgw-db-test-app-role' });
    await migrate(owner, { schema });
    await owner.query(`create role ${serviceRole} login in role smgw_app`);
    const asService = new URL(url);
    asService.username = serviceRole;
    asService.password = '';
    service = createPool({ url: asService.toString(), schema, max: 2, applicationName: 'smgw-db-test-app-role' });
  });
  after(async () => {
    await service?.end();
    await owner.query(`drop schema if exists ${schema} cascade`).catch(() => {});
    await owner.query(`drop role if exists ${serviceRole}`).catch(() => {});
    await owner.end();
  });

  /** The SQLSTATE a statement run as the service role fails with (undefined: it worked). */
  async function refusal(sql: string): Promise<string | undefined> {
    try {
      await service.query(sql);
      return undefined;
    } catch (err) {
      return (err as { code?: string }).code;
    }
  }

  async function tablesOfSchema(): Promise<string[]> {
    const { rows } = await owner.query(
      `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relkind in ('r', 'p') order by 1`,
      [schema],
    );
    return rows.map((r) => r.relname as string);
  }

  it('may select, insert, update and delete in every table but schema_migrations, and nothing more', async () => {
    const tables = await tablesOfSchema();
    assert.ok(tables.includes('messages') && tables.includes('mailboxes'), 'the schema was migrated');
    const missing: string[] = [];
    const excess: string[] = [];
    for (const table of tables) {
      const qualified = `${schema}.${table}`;
      const has = async (privilege: string) =>
        (await owner.query('select has_table_privilege($1, $2, $3) as ok', ['smgw_app', qualified, privilege])).rows[0]
          .ok as boolean;
      const dml = ['select', 'insert', 'update', 'delete'];
      for (const privilege of dml) {
        const granted = await has(privilege);
        if (table === 'schema_migrations' && granted) excess.push(`${table} ${privilege}`);
        if (table !== 'schema_migrations' && !granted) missing.push(`${table} ${privilege}`);
      }
      for (const privilege of ['truncate', 'references', 'trigger']) {
        if (await has(privilege)) excess.push(`${table} ${privilege}`);
      }
    }
    // A table a migration adds without a grant (the migrating role changed, the default privileges were dropped)
    // shows up here by name: the services would fail on it in production only.
    assert.deepEqual(missing, []);
    assert.deepEqual(excess, []);
    const owned = await owner.query(
      `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and pg_has_role('smgw_app', c.relowner, 'usage')`,
      [schema],
    );
    assert.deepEqual(owned.rows, [], 'smgw_app owns nothing (an owner may alter and drop)');
  });

  it('reads and writes rows, sequences included', async () => {
    await service.query(`insert into messages (id, trace_id, direction, mail_from, blob_sha256, size, received_at)
        values ('m-app-role', 't', 'outbound', 'a@behoerde.example', 'c', 1, now())`);
    await service.query(`insert into message_events (message_id, stage, event, outcome)
        values ('m-app-role', 'ingest', 'message.received', 'next')`);
    await service.query(`update messages set client_helo = 'mx' where id = 'm-app-role'`);
    const { rows } = await service.query(
      `select count(*)::int as n from message_events where message_id = 'm-app-role'`,
    );
    assert.equal(rows[0].n, 1);
    await service.query(`delete from message_events where message_id = 'm-app-role'`);
  });

  it('is refused every change of the schema, TRUNCATE and the migration bookkeeping', async () => {
    const cases: [string, string][] = [
      ['drop table messages', '42501'],
      ['alter table mailboxes add column stolen text', '42501'],
      ['create table loot (x text)', '42501'],
      ['create index messages_loot_idx on messages (mail_from)', '42501'],
      ['create function loot() returns int language sql as $$ select 1 $$', '42501'],
      ['create trigger loot after insert on messages execute function key_directory_changed()', '42501'],
      ['truncate messages', '42501'],
      [`create schema loot_${randomBytes(3).toString('hex')}`, '42501'],
      ['drop schema public cascade', '42501'],
      ['select * from schema_migrations', '42501'],
      [`insert into schema_migrations (name) values ('999_skipped.sql')`, '42501'],
      [`delete from schema_migrations`, '42501'],
    ];
    const results = [];
    for (const [sql] of cases) results.push([sql, await refusal(sql)]);
    assert.deepEqual(results, cases);
    // A grant of what smgw_app holds without grant option only warns, and passes nothing on.
    await service.query('grant select on messages to public');
    const passedOn = await owner.query(`select has_table_privilege('public', $1, 'select') as ok`, [
      `${schema}.messages`,
    ]);
    assert.equal(passedOn.rows[0].ok, false);
  });

  it('has the rights on a table a later migration adds (default privileges of the migrating role)', async () => {
    await owner.query('create table later_migration_rows (id bigserial primary key, note text not null)');
    await service.query(`insert into later_migration_rows (note) values ('granted')`);
    const { rows } = await service.query('select note from later_migration_rows');
    assert.deepEqual(rows, [{ note: 'granted' }]);
    assert.equal(await refusal('drop table later_migration_rows'), '42501');
    assert.equal(await refusal('truncate later_migration_rows'), '42501');
  });

  it('applies again on a schema migrated before it, and once more is a no-op', async () => {
    const older = `${schema}_old`;
    const pool = createPool({ url, schema: older, max: 1, applicationName: 'smgw-db-test-app-role' });
    try {
      await migrate(pool, { schema: older, through: '023_pgp_key_approvals_in_doubt.sql' });
      assert.equal(
        (await pool.query(`select has_table_privilege('smgw_app', $1, 'select') as ok`, [`${older}.messages`])).rows[0]
          .ok,
        false,
      );
      // 024 and every migration after it (025's roles per service, and whatever later ones add).
      const applied = (await migrate(pool, { schema: older })).applied;
      assert.equal(applied[0], '024_application_role.sql');
      assert.ok(applied.includes('025_service_roles.sql'), applied.join(', '));
      assert.equal(
        (await pool.query(`select has_table_privilege('smgw_app', $1, 'select') as ok`, [`${older}.messages`])).rows[0]
          .ok,
        true,
      );
      assert.deepEqual((await migrate(pool, { schema: older })).applied, []);
    } finally {
      await pool.query(`drop schema if exists ${older} cascade`).catch(() => {});
      await pool.end();
    }
  });
});
