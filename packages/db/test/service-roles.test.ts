// Migration 025: each service's role holds exactly what packages/db/src/service-roles.ts lists (both ways), every
// table but the migrating role's own is some service's, and a service is refused what another one needs (the abuse
// an injection in the internet-facing ingest or the portal would try).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  createPool,
  migrate,
  type Pool,
  SERVICE_TABLE_PRIVILEGES,
  SERVICES,
  type ServiceName,
  serviceRole,
  TABLES_OF_NO_SERVICE,
} from '../src/index.ts';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/smgw';
const PRIVILEGES = ['select', 'insert', 'update', 'delete', 'truncate', 'references', 'trigger'];

describe('migration 025: one role per service', () => {
  const schema = `t_m025_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const suffix = randomBytes(4).toString('hex');
  const loginOf = (service: ServiceName) => `${serviceRole(service)}_t_${suffix}`;
  let owner: Pool;
  const as: Partial<Record<ServiceName, Pool>> = {};

  before(async () => {
    owner = createPool({ url, schema, max: 2, applicationName: 'smgw-db-test-service-roles' });
    await migrate(owner, { schema });
    for (const service of ['ingest', 'mailbox', 'scan'] as const) {
      await owner.query(`create role ${loginOf(service)} login in role ${serviceRole(service)}`);
      const asService = new URL(url);
      asService.username = loginOf(service);
      asService.password = '';
      as[service] = createPool({ url: asService.toString(), schema, max: 1, applicationName: 'smgw-db-test' });
    }
  });
  after(async () => {
    for (const pool of Object.values(as)) await pool.end();
    await owner.query(`drop schema if exists ${schema} cascade`).catch(() => {});
    for (const service of ['ingest', 'mailbox', 'scan'] as const) {
      await owner.query(`drop role if exists ${loginOf(service)}`).catch(() => {});
    }
    await owner.end();
  });

  /** The SQLSTATE a statement fails with (undefined: it worked). */
  async function refusal(service: ServiceName, sql: string): Promise<string | undefined> {
    try {
      await as[service]?.query(sql);
      return undefined;
    } catch (err) {
      return (err as { code?: string }).code;
    }
  }

  it('grants each service role exactly the privileges of the inventory, and every table to some service', async () => {
    const { rows } = await owner.query(
      `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relkind in ('r', 'p') order by 1`,
      [schema],
    );
    const tables = rows.map((r) => r.relname as string);
    const granted: Record<string, Record<string, string[]>> = {};
    const used = new Set<string>();
    for (const service of SERVICES) {
      for (const table of tables) {
        for (const privilege of PRIVILEGES) {
          const { rows: has } = await owner.query('select has_table_privilege($1, $2, $3) as ok', [
            serviceRole(service),
            `${schema}.${table}`,
            privilege,
          ]);
          if (!has[0].ok) continue;
          const perTable = granted[service] ?? {};
          granted[service] = perTable;
          perTable[table] = [...(perTable[table] ?? []), privilege];
          used.add(table);
        }
      }
    }
    const expected = Object.fromEntries(
      Object.entries(SERVICE_TABLE_PRIVILEGES).map(([service, perTable]) => [
        service,
        Object.fromEntries(Object.entries(perTable).map(([table, privileges]) => [table, [...privileges]])),
      ]),
    );
    assert.deepEqual(granted, expected);
    // A table a later migration adds shows up here until that migration grants it to the services that use it.
    const nobodys = tables.filter((t) => !used.has(t) && !TABLES_OF_NO_SERVICE.includes(t));
    assert.deepEqual(nobodys, []);
    // And an inventory entry naming a table that does not exist (renamed, dropped) is an error as well.
    const unknown = Object.values(SERVICE_TABLE_PRIVILEGES)
      .flatMap((perTable) => Object.keys(perTable))
      .filter((t) => !tables.includes(t));
    assert.deepEqual(unknown, []);
  });

  it('no service role is a member of smgw_app or of another service role', async () => {
    const { rows } = await owner.query(
      `select r.rolname as member, g.rolname as of from pg_auth_members m
         join pg_roles r on r.oid = m.member join pg_roles g on g.oid = m.roleid
        where r.rolname = any($1::text[])`,
      [SERVICES.map(serviceRole)],
    );
    assert.deepEqual(rows, []);
  });

  it('refuses ingest the portal passwords, the agencies private keys, the key directory and others rows', async () => {
    const cases: [string, string][] = [
      ['select password_hash from mailboxes', '42501'],
      ['select * from agency_keys', '42501'],
      ['select * from certificates', '42501'],
      ['select * from pgp_keys', '42501'],
      ['select * from mailbox_tokens', '42501'],
      ['select * from mailbox_messages', '42501'],
      [`update submission_accounts set disabled = true`, '42501'],
      [`delete from messages`, '42501'],
      [`update message_recipients set state = 'delivered'`, '42501'],
      ['select * from deliveries', '42501'],
      ['select * from quarantine', '42501'],
    ];
    const results = [];
    for (const [sql] of cases) results.push([sql, await refusal('ingest', sql)]);
    assert.deepEqual(results, cases);
  });

  it('refuses the portal (mailbox) the submission accounts, the agencies private keys and deliveries', async () => {
    const cases: [string, string][] = [
      ['select password_hash from submission_accounts', '42501'],
      ['select * from agency_keys', '42501'],
      [`update agencies set name = 'x'`, '42501'],
      ['delete from trust_anchors', '42501'],
      ['select * from deliveries', '42501'],
      ['select * from quarantine', '42501'],
      ['delete from messages', '42501'],
    ];
    const results = [];
    for (const [sql] of cases) results.push([sql, await refusal('mailbox', sql)]);
    assert.deepEqual(results, cases);
  });

  it('refuses scan the key directory and the mailboxes', async () => {
    const cases: [string, string][] = [
      ['select * from agency_keys', '42501'],
      ['select * from certificates', '42501'],
      ['delete from pgp_keys', '42501'],
      ['select * from mailboxes', '42501'],
      ['select * from submission_accounts', '42501'],
    ];
    const results = [];
    for (const [sql] of cases) results.push([sql, await refusal('scan', sql)]);
    assert.deepEqual(results, cases);
  });

  it('lets ingest do what it does: read a submission account, record a message', async () => {
    assert.equal(await refusal('ingest', 'select username, password_hash from submission_accounts'), undefined);
    assert.equal(
      await refusal(
        'ingest',
        `insert into messages (id, trace_id, direction, mail_from, blob_sha256, size, received_at)
           values ('m-025', 't', 'outbound', 'a@behoerde.example', 'c', 1, now()) on conflict (id) do nothing`,
      ),
      undefined,
    );
  });
});
