// Every SQL statement a service can run (found by scripts/sql-inventory.ts, which follows the service's main.ts
// through every declaration it reaches, run here on the code as it is) is prepared and explained as a login that is
// a member of that service's role only (migration 025): PostgreSQL checks the table privileges, FOR UPDATE /
// FOR KEY SHARE's UPDATE among them, when EXPLAIN starts the plan, without running it. So a statement on a path no
// test takes cannot fail for a missing grant only in production. A failure names the service, file, line and what
// the role lacks. The walk costs about 12 s of CPU; a list kept in a file instead went stale with every edit of any
// of the 300-odd files it reads, comments included.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { statementsFile } from '../../../scripts/sql-inventory.ts';
import { createPool, migrate, type Pool, SERVICES, type ServiceName, serviceRole } from '../src/index.ts';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/smgw';
const inventory = statementsFile();

/**
 * The statements the script cannot resolve, because part of them is known at run time only, written out by hand in
 * every form they take. Keyed by file and the text the script lists (constants put in): a change to either makes the
 * test ask for this entry to be read again.
 */
export const RUN_TIME_STATEMENTS: { file: string; text: string; why: string; statements: string[] }[] = [
  {
    file: 'packages/blob-store/src/put-blob.ts',
    text: 'insert into blob_chunks (blob_id, seq, data, final) values ($${first}, 0, $${first + 1}, true)',
    why: 'a small blob staged into a caller’s statement: its parameters numbered after the caller’s',
    statements: ['insert into blob_chunks (blob_id, seq, data, final) values ($1, 0, $2, true)'],
  },
  {
    file: 'packages/blob-store/src/put-blob.ts',
    text: `insert into blobs (id, message_id, kek_id, wrapped_key, state, digest, size, committed_at, storage)
   values (\${p(0)}, \${p(1)}, \${p(2)}, \${p(3)}, 'committed', \${p(4)}, \${p(5)}, now(), '\${storage}')`,
    why: 'staged into a caller’s statement (parameters from $first); storage is database or files',
    statements: ['database', 'files'].map(
      (storage) => `insert into blobs (id, message_id, kek_id, wrapped_key, state, digest, size, committed_at, storage)
   values ($1, $2, $3, $4, 'committed', $5, $6, now(), '${storage}')`,
    ),
  },
  {
    file: 'packages/mailbox-store/src/arrivals.ts',
    text: `do $reserve$ begin
         update mailboxes set usage_bytes = usage_bytes + \${added}
          where id = '\${reservation.mailboxId}' and state = '\${reservation.state}' and usage_bytes + \${size} <= \${quota};
         if not found then
           raise exception 'mailbox % changed', '\${reservation.mailboxId}' using errcode = 'SMMB1';
         end if;
       end $reserve$; commit`,
    why: 'a DO block (not preparable) with checked values written in; it runs its UPDATE as the caller',
    statements: [
      `update mailboxes set usage_bytes = usage_bytes + 1
        where id = '00000000-0000-4000-8000-000000000000' and state = 'active' and usage_bytes + 1 <= 2`,
    ],
  },
  {
    file: 'packages/quarantine/src/read-entries.ts',
    text: `select id, message_id, direction, verdict, finding, detail, quarantined_at, expires_at,
  released_at, released_by, release_reason, envelope->>'mailFrom' as mail_from, envelope->'recipients' as recipients from quarantine \${where.length ? \`where \${where.join(' and ')}\` : ''}
     order by id desc limit $\${params.length}`,
    why: 'the filter’s conditions joined from an array, the limit numbered after them',
    statements: ['', 'where released_at is null and direction = $1 and id < $2', 'where released_at is not null'].map(
      (filter) => `select id, message_id, direction, verdict, finding, detail, quarantined_at, expires_at,
  released_at, released_by, release_reason, envelope->>'mailFrom' as mail_from, envelope->'recipients' as recipients
  from quarantine ${filter} order by id desc limit $${filter.includes('$2') ? 3 : 1}`,
    ),
  },
];

/** What a statement needs on `table`, read from its text: the privileges a refusal on that table may be about. */
export function privilegesNeeded(sql: string, table: string): string[] {
  const t = table.replace(/[^a-z0-9_]/gi, '');
  const needed: string[] = [];
  if (new RegExp(`\\binsert\\s+into\\s+${t}\\b`, 'i').test(sql)) needed.push('insert');
  if (
    new RegExp(`\\bupdate\\s+(only\\s+)?${t}\\b`, 'i').test(sql) ||
    /\bfor\s+(no\s+key\s+)?(update|share)\b|\bfor\s+key\s+share\b/i.test(sql)
  ) {
    needed.push('update');
  }
  if (new RegExp(`\\bdelete\\s+from\\s+${t}\\b`, 'i').test(sql)) needed.push('delete');
  needed.push('select');
  return needed;
}

describe('each service role may run every statement of its service', () => {
  const schema = `t_stmts_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const suffix = randomBytes(4).toString('hex');
  const loginOf = (service: ServiceName) => `${serviceRole(service)}_s_${suffix}`;
  let owner: Pool;

  before(async () => {
    owner = createPool({ url, schema, max: 2, applicationName: 'smgw-db-test-service-statements' });
    await migrate(owner, { schema });
    for (const service of SERVICES) {
      await owner.query(`create role ${loginOf(service)} login in role ${serviceRole(service)}`);
    }
  });
  after(async () => {
    await owner.query(`drop schema if exists ${schema} cascade`).catch(() => {});
    for (const service of SERVICES) await owner.query(`drop role if exists ${loginOf(service)}`).catch(() => {});
    await owner.end();
  });

  it('lists every service', () => {
    assert.deepEqual(Object.keys(inventory.services).sort(), [...SERVICES].sort());
  });

  it('has a hand-written form of each statement the script cannot resolve, and no form of one it no longer lists', () => {
    const listed = new Set(
      Object.values(inventory.services).flatMap((s) => s.unresolved.map((u) => `${u.file}\n${u.text}`)),
    );
    const written = new Set(RUN_TIME_STATEMENTS.map((r) => `${r.file}\n${r.text}`));
    assert.deepEqual(
      [...listed].filter((k) => !written.has(k)),
      [],
      'write its forms into RUN_TIME_STATEMENTS',
    );
    assert.deepEqual(
      [...written].filter((k) => !listed.has(k)),
      [],
      'no longer listed: remove or update it',
    );
  });

  for (const service of SERVICES) {
    it(`${service}: prepares and explains each of its statements as ${serviceRole(service)}`, async () => {
      const listed = inventory.services[service];
      assert.ok(listed);
      const forms = listed.statements.flatMap((s) => s.statements.map((sql) => ({ ...s, sql })));
      for (const u of listed.unresolved) {
        const written = RUN_TIME_STATEMENTS.find((r) => r.file === u.file && r.text === u.text);
        for (const sql of written?.statements ?? []) forms.push({ ...u, statements: [], sql });
      }
      const asService = new URL(url);
      asService.username = loginOf(service);
      asService.password = '';
      const pool = createPool({ url: asService.toString(), schema, max: 1, applicationName: 'smgw-db-test' });
      const failures: string[] = [];
      try {
        const client = await pool.connect();
        try {
          for (const [i, form] of forms.entries()) {
            const name = `smgw_inventory_${i}`;
            try {
              await client.query(`prepare ${name} as ${form.sql}`);
              const { rows } = await client.query(
                'select cardinality(parameter_types) as n from pg_prepared_statements where name = $1',
                [name],
              );
              const nulls = Array.from({ length: Number(rows[0]?.n ?? 0) }, () => 'null').join(', ');
              await client.query(`explain execute ${name}${nulls ? `(${nulls})` : ''}`);
            } catch (err) {
              failures.push(await describeFailure(service, form, err as Error & { code?: string }));
            } finally {
              await client.query(`deallocate ${name}`).catch(() => {});
            }
          }
        } finally {
          client.release();
        }
      } finally {
        await pool.end();
      }
      assert.deepEqual(failures, []);
      assert.ok(forms.length > 0);
    });
  }

  async function describeFailure(
    service: ServiceName,
    form: { file: string; line: number; sql: string },
    err: Error & { code?: string },
  ): Promise<string> {
    const at = `${service} ${form.file}:${form.line}: ${err.message}`;
    const table = /permission denied for (?:table|relation|sequence) (\S+)/.exec(err.message)?.[1];
    if (err.code !== '42501' || !table) return at;
    const missing: string[] = [];
    for (const privilege of privilegesNeeded(form.sql, table)) {
      const { rows } = await owner.query('select has_table_privilege($1, $2, $3) as ok', [
        serviceRole(service),
        `${schema}.${table}`,
        privilege,
      ]);
      if (!rows[0]?.ok) missing.push(privilege);
    }
    return `${at} (${serviceRole(service)} lacks ${missing.join(', ') || 'a privilege'} on ${table})`;
  }
});
