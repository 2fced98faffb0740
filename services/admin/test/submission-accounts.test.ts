import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@smgw/observability';
import { verifySubmissionLogin } from '@smgw/submission-accounts';
import { createTestDatabase, createTestVhost, type TestDatabase, type TestVhost } from '@smgw/testing';
import { runCli } from '../src/cli.ts';
import { type RunningAdmin, startAdmin } from '../src/service.ts';

const TOKEN = 'test-token-accounts-0123456789';

describe('submission accounts in the admin API', () => {
  let db: TestDatabase;
  let vhost: TestVhost;
  let admin: RunningAdmin;
  let base: string;

  before(async () => {
    [db, vhost] = await Promise.all([createTestDatabase(), createTestVhost()]);
    admin = await startAdmin(
      {
        databaseUrl: db.url,
        databaseSchema: db.schema,
        amqpUrl: vhost.url,
        adminPort: 0,
        adminBind: '127.0.0.1',
        adminToken: TOKEN,
        logLevel: 'silent',
      },
      createLogger('admin-test', 'silent'),
    );
    base = `http://127.0.0.1:${admin.port}/api/v1`;
  });
  after(async () => {
    await admin.stop();
    await Promise.all([db.drop(), vhost.drop()]);
  });

  const post = (body: unknown) =>
    fetch(`${base}/submission-accounts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('creates an account whose password ingest accepts, and never shows the password or its hash', async () => {
    const created = await post({
      username: 'Poststelle@FA-Nord.example',
      password: 'ein langes Passwort 1',
      senderDomains: ['fa-nord.example'],
    });
    assert.equal(created.status, 201);
    assert.deepEqual(await created.json(), {
      username: 'poststelle@fa-nord.example',
      senderDomains: ['fa-nord.example'],
    });
    const login = await verifySubmissionLogin(db.pool, {
      username: 'poststelle@fa-nord.example',
      password: 'ein langes Passwort 1',
    });
    assert.equal(login?.username, 'poststelle@fa-nord.example');
    const listed = await (
      await fetch(`${base}/submission-accounts`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).text();
    assert.match(listed, /poststelle@fa-nord\.example/);
    assert.doesNotMatch(listed, /argon2|Passwort/);
  });

  it('answers 409 for an existing account and 400 for a short password or a bad domain', async () => {
    const again = await post({
      username: 'poststelle@fa-nord.example',
      password: 'noch ein langes 2',
      senderDomains: ['fa-nord.example'],
    });
    assert.equal(again.status, 409);
    assert.equal(((await again.json()) as { error: { code: string } }).error.code, 'SUBMISSION_ACCOUNT_EXISTS');
    const short = await post({
      username: 'kurz@fa-nord.example',
      password: 'kurz',
      senderDomains: ['fa-nord.example'],
    });
    assert.equal(short.status, 400);
    const badDomain = await post({
      username: 'x@fa-nord.example',
      password: 'ein langes Passwort 3',
      senderDomains: ['not a domain'],
    });
    assert.equal(badDomain.status, 400);
    assert.equal((await post({ username: 'y', password: 'ein langes Passwort 4', senderDomains: [] })).status, 400);
  });

  it('lets an operator create an account from the CLI with the password from the environment', async () => {
    const env = { SMGW_ADMIN_URL: base, SMGW_ADMIN_TOKEN: TOKEN, SMGW_ACCOUNT_PASSWORD: 'aus der Umgebung 123' };
    const write = process.stdout.write;
    const written: string[] = [];
    process.stdout.write = ((chunk: string) => {
      written.push(chunk);
      return true;
    }) as typeof process.stdout.write;
    try {
      assert.equal(
        await runCli(['account', 'add', 'registratur@fa-nord.example', '--domain', 'fa-nord.example'], env),
        0,
      );
      assert.equal(await runCli(['account', 'list'], env), 0);
    } finally {
      process.stdout.write = write;
    }
    assert.match(written.join(''), /created registratur@fa-nord\.example/);
    assert.match(written.join(''), /registratur@fa-nord\.example {2}fa-nord\.example/);
    assert.ok(
      await verifySubmissionLogin(db.pool, {
        username: 'registratur@fa-nord.example',
        password: 'aus der Umgebung 123',
      }),
    );
  });
});
