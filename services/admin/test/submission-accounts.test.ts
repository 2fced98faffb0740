import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { verifySubmissionLogin } from '@smgw/submission-accounts';
import type { TestDatabase } from '@smgw/testing';
import { runCli } from '../src/cli.ts';
import { captureStdout, startTestAdmin, type TestAdmin } from './harness.ts';

const TOKEN = 'test-token-accounts-0123456789';

describe('submission accounts in the admin API', () => {
  let db: TestDatabase;
  let testAdmin: TestAdmin;
  let base: string;

  before(async () => {
    testAdmin = await startTestAdmin(TOKEN);
    ({ db } = testAdmin);
    base = testAdmin.base;
  });
  after(async () => {
    await testAdmin.stop();
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
      senderAddresses: [],
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
    assert.equal((await post({ username: 'y', password: 'ein langes Passwort 4' })).status, 400);
    for (const bad of ['no-at-sign', 'a%b@fa-nord.example', '"x"@fa-nord.example', 'a@b.example,c@d.example']) {
      const badAddress = await post({ username: 'z', password: 'ein langes Passwort 5', senderAddresses: [bad] });
      assert.equal(badAddress.status, 400, bad);
    }
  });

  it('refuses a new account with a field it does not know, rather than create it without that field', async () => {
    // An operator who asks for a disabled account (or misspells a grant) must not get an enabled one silently.
    const refused = await post({
      username: 'vorab@fa-nord.example',
      password: 'ein langes Passwort 9',
      senderAddresses: ['vorab@fa-nord.example'],
      disabled: true,
    });
    assert.equal(refused.status, 400);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'BAD_REQUEST');
    const lone = await post({
      username: 'vorab@fa-nord.example',
      password: 'ein langes Passwort 9',
      senderAddresses: 'vorab@fa-nord.example',
    });
    assert.equal(lone.status, 400);
    assert.equal(
      await verifySubmissionLogin(db.pool, { username: 'vorab@fa-nord.example', password: 'ein langes Passwort 9' }),
      undefined,
    );
  });

  it('creates an account that owns addresses only, normalised, without a domain grant', async () => {
    const created = await post({
      username: 'anna.muster@fa-nord.example',
      password: 'ein langes Passwort 6',
      senderAddresses: ['Anna.Muster@FA-Nord.example.', 'poststelle@fa-nord.example', 'anna.muster@fa-nord.example'],
    });
    assert.equal(created.status, 201);
    assert.deepEqual(await created.json(), {
      username: 'anna.muster@fa-nord.example',
      senderAddresses: ['anna.muster@fa-nord.example', 'poststelle@fa-nord.example'],
      senderDomains: [],
    });
    const login = await verifySubmissionLogin(db.pool, {
      username: 'anna.muster@fa-nord.example',
      password: 'ein langes Passwort 6',
    });
    assert.deepEqual(login?.senderAddresses, ['anna.muster@fa-nord.example', 'poststelle@fa-nord.example']);
    assert.deepEqual(login?.senderDomains, []);
  });

  it('lets an operator create an account from the CLI with the password from the environment', async () => {
    const env = { SMGW_ADMIN_URL: base, SMGW_ADMIN_TOKEN: TOKEN, SMGW_ACCOUNT_PASSWORD: 'aus der Umgebung 123' };
    // captureStdout lets the test runner's own (binary) reports through; swallowing them would hide tests.
    const added = await captureStdout(() =>
      runCli(['account', 'add', 'registratur@fa-nord.example', '--domain', 'fa-nord.example'], env),
    );
    assert.equal(added.code, 0);
    const owner = await captureStdout(() =>
      runCli(
        [
          ...['account', 'add', 'leitung@fa-nord.example'],
          ...['--address', 'leitung@fa-nord.example', '--address', 'vorzimmer@fa-nord.example'],
        ],
        env,
      ),
    );
    assert.equal(owner.code, 0);
    const usage = await captureStdout(() => runCli(['account', 'add', 'niemand@fa-nord.example'], env));
    assert.equal(usage.code, 1);
    const listed = await captureStdout(() => runCli(['account', 'list'], env));
    assert.equal(listed.code, 0);
    assert.match(added.out, /created registratur@fa-nord\.example/);
    assert.match(listed.out, /^registratur@fa-nord\.example {2}- {2}domains: fa-nord\.example$/m);
    assert.match(listed.out, /^leitung@fa-nord\.example {2}leitung@fa-nord\.example,vorzimmer@fa-nord\.example$/m);
    assert.ok(
      await verifySubmissionLogin(db.pool, {
        username: 'registratur@fa-nord.example',
        password: 'aus der Umgebung 123',
      }),
    );
  });

  const action = (username: string, what: string, options: { operator?: string; body?: unknown } = {}) =>
    fetch(`${base}/submission-accounts/${encodeURIComponent(username)}/${what}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(options.operator ? { 'x-smgw-operator': options.operator } : {}),
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
  const listed = async () =>
    (
      (await (
        await fetch(`${base}/submission-accounts`, { headers: { authorization: `Bearer ${TOKEN}` } })
      ).json()) as {
        accounts: { username: string; disabled: boolean }[];
      }
    ).accounts;
  const login = (username: string, password: string) => verifySubmissionLogin(db.pool, { username, password });

  it('disables and enables an account: a disabled one cannot log in, and the list says so', async () => {
    assert.equal(
      (
        await post({
          username: 'zoll@fa-nord.example',
          password: 'zoll passwort 12',
          senderAddresses: ['zoll@fa-nord.example'],
        })
      ).status,
      201,
    );
    const disabled = await action('Zoll@FA-Nord.example', 'disable', { operator: 'anna.admin' });
    assert.equal(disabled.status, 200);
    assert.deepEqual(
      { ...((await disabled.json()) as object), createdAt: undefined },
      {
        username: 'zoll@fa-nord.example',
        senderAddresses: ['zoll@fa-nord.example'],
        senderDomains: [],
        disabled: true,
        createdAt: undefined,
      },
    );
    assert.equal(await login('zoll@fa-nord.example', 'zoll passwort 12'), undefined);
    assert.equal((await listed()).find((a) => a.username === 'zoll@fa-nord.example')?.disabled, true);
    // Disabling twice is no error.
    assert.equal((await action('zoll@fa-nord.example', 'disable')).status, 200);
    const enabled = await action('zoll@fa-nord.example', 'enable');
    assert.equal(enabled.status, 200);
    assert.equal(((await enabled.json()) as { disabled: boolean }).disabled, false);
    assert.equal((await login('zoll@fa-nord.example', 'zoll passwort 12'))?.username, 'zoll@fa-nord.example');
    assert.equal((await listed()).find((a) => a.username === 'zoll@fa-nord.example')?.disabled, false);
  });

  it('answers 404 for an unknown account and 400 for a bad operator name', async () => {
    for (const what of ['disable', 'enable']) {
      const missing = await action('niemand@fa-nord.example', what);
      assert.equal(missing.status, 404, what);
      assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'SUBMISSION_ACCOUNT_NOT_FOUND');
    }
    const noPassword = await action('niemand@fa-nord.example', 'password', { body: { password: 'lang genug 12345' } });
    assert.equal(noPassword.status, 404);
    assert.equal((await action('zoll@fa-nord.example', 'disable', { operator: 'bad name;x' })).status, 400);
    assert.equal((await listed()).find((a) => a.username === 'zoll@fa-nord.example')?.disabled, false);
  });

  it('sets a new password: the old one stops working, a short one is refused, and neither is shown', async () => {
    const short = await action('zoll@fa-nord.example', 'password', { body: { password: 'kurz' } });
    assert.equal(short.status, 400);
    const unknownField = await action('zoll@fa-nord.example', 'password', {
      body: { password: 'ein neues Passwort 7', disabled: false },
    });
    assert.equal(unknownField.status, 400);
    assert.equal((await login('zoll@fa-nord.example', 'zoll passwort 12'))?.username, 'zoll@fa-nord.example');
    const changed = await action('zoll@fa-nord.example', 'password', { body: { password: 'ein neues Passwort 7' } });
    assert.equal(changed.status, 200);
    assert.doesNotMatch(await changed.text(), /Passwort|argon2/);
    assert.equal(await login('zoll@fa-nord.example', 'zoll passwort 12'), undefined);
    assert.equal((await login('zoll@fa-nord.example', 'ein neues Passwort 7'))?.username, 'zoll@fa-nord.example');
  });

  it('disables, enables and re-passwords an account from the CLI', async () => {
    const env = { SMGW_ADMIN_URL: base, SMGW_ADMIN_TOKEN: TOKEN, SMGW_OPERATOR: 'anna.admin' };
    const disabled = await captureStdout(() => runCli(['account', 'disable', 'zoll@fa-nord.example'], env));
    assert.equal(disabled.code, 0);
    assert.match(disabled.out, /^disabled zoll@fa-nord\.example$/m);
    const list = await captureStdout(() => runCli(['account', 'list'], env));
    assert.match(list.out, /^zoll@fa-nord\.example {2}zoll@fa-nord\.example {2}\(disabled\)$/m);
    assert.equal((await captureStdout(() => runCli(['account', 'enable', 'zoll@fa-nord.example'], env))).code, 0);
    assert.equal((await captureStdout(() => runCli(['account', 'disable', 'niemand@fa-nord.example'], env))).code, 1);
    assert.equal((await captureStdout(() => runCli(['account', 'password', 'zoll@fa-nord.example'], env))).code, 1);
    const password = await captureStdout(() =>
      runCli(['account', 'password', 'zoll@fa-nord.example'], {
        ...env,
        SMGW_ACCOUNT_PASSWORD: 'aus der Umgebung 456',
      }),
    );
    assert.equal(password.code, 0);
    assert.equal((await login('zoll@fa-nord.example', 'aus der Umgebung 456'))?.username, 'zoll@fa-nord.example');
  });

  const send = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}/submission-accounts/${path}`, {
      method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...headers,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

  it('replaces the addresses and the domain grant of an account, validated as at creation', async () => {
    assert.equal(
      (
        await post({
          username: 'amt@fa-sued.example',
          password: 'ein langes Passwort 8',
          senderAddresses: ['amt@fa-sued.example'],
        })
      ).status,
      201,
    );
    const changed = await send(
      'PUT',
      'Amt@FA-Sued.example/addresses',
      { senderAddresses: ['Leitung@FA-Sued.example', 'amt@fa-sued.example'], senderDomains: [] },
      { 'x-smgw-operator': 'anna.admin' },
    );
    assert.equal(changed.status, 200);
    assert.deepEqual(
      { ...((await changed.json()) as object), createdAt: undefined },
      {
        username: 'amt@fa-sued.example',
        senderAddresses: ['leitung@fa-sued.example', 'amt@fa-sued.example'],
        senderDomains: [],
        disabled: false,
        createdAt: undefined,
      },
    );
    const login = await verifySubmissionLogin(db.pool, {
      username: 'amt@fa-sued.example',
      password: 'ein langes Passwort 8',
    });
    assert.deepEqual(login?.senderAddresses, ['leitung@fa-sued.example', 'amt@fa-sued.example']);
    const bad: [unknown, string][] = [
      [{ senderAddresses: [], senderDomains: [] }, 'SUBMISSION_ACCOUNT_INVALID'],
      [{ senderAddresses: ['a%b@fa-sued.example'], senderDomains: [] }, 'SUBMISSION_ACCOUNT_INVALID'],
      [{ senderAddresses: ['x@fa-sued.example,y@fa-sued.example'], senderDomains: [] }, 'SUBMISSION_ACCOUNT_INVALID'],
      [{ senderAddresses: [], senderDomains: ['not a domain'] }, 'SUBMISSION_ACCOUNT_INVALID'],
      [{ senderAddresses: ['amt@fa-sued.example'] }, 'BAD_REQUEST'],
      [{ senderAddresses: ['amt@fa-sued.example'], senderDomains: [], disabled: false }, 'BAD_REQUEST'],
      [{ senderAddresses: 'amt@fa-sued.example', senderDomains: [] }, 'BAD_REQUEST'],
      [{ senderAddresses: Array(101).fill('amt@fa-sued.example'), senderDomains: [] }, 'BAD_REQUEST'],
    ];
    for (const [body, code] of bad) {
      const refused = await send('PUT', 'amt@fa-sued.example/addresses', body);
      assert.equal(refused.status, 400, JSON.stringify(body));
      assert.equal(await errorCode(refused), code, JSON.stringify(body));
    }
    const missing = await send('PUT', 'niemand@fa-sued.example/addresses', {
      senderAddresses: ['a@fa-sued.example'],
      senderDomains: [],
    });
    assert.equal(missing.status, 404);
    assert.equal(await errorCode(missing), 'SUBMISSION_ACCOUNT_NOT_FOUND');
    // Nothing of the refused changes stuck.
    const after = await verifySubmissionLogin(db.pool, {
      username: 'amt@fa-sued.example',
      password: 'ein langes Passwort 8',
    });
    assert.deepEqual(after?.senderAddresses, ['leitung@fa-sued.example', 'amt@fa-sued.example']);
  });

  it('deletes an account: it cannot log in any more, is no longer listed, and a second delete is 404', async () => {
    const unauthorised = await fetch(`${base}/submission-accounts/amt@fa-sued.example`, { method: 'DELETE' });
    assert.equal(unauthorised.status, 401);
    assert.equal(
      (await send('DELETE', 'amt@fa-sued.example', undefined, { 'x-smgw-operator': 'bad name;x' })).status,
      400,
    );
    const deleted = await send('DELETE', 'Amt@FA-Sued.example', undefined, { 'x-smgw-operator': 'anna.admin' });
    assert.equal(deleted.status, 200);
    assert.equal(((await deleted.json()) as { username: string }).username, 'amt@fa-sued.example');
    assert.equal(
      await verifySubmissionLogin(db.pool, { username: 'amt@fa-sued.example', password: 'ein langes Passwort 8' }),
      undefined,
    );
    assert.equal(
      (await listed()).find((a) => a.username === 'amt@fa-sued.example'),
      undefined,
    );
    const again = await send('DELETE', 'amt@fa-sued.example');
    assert.equal(again.status, 404);
    assert.equal(await errorCode(again), 'SUBMISSION_ACCOUNT_NOT_FOUND');
  });

  it('changes the addresses of an account and deletes it from the CLI', async () => {
    const env = {
      SMGW_ADMIN_URL: base,
      SMGW_ADMIN_TOKEN: TOKEN,
      SMGW_OPERATOR: 'anna.admin',
      SMGW_ACCOUNT_PASSWORD: 'ein langes Passwort 9',
    };
    assert.equal(
      (
        await captureStdout(() =>
          runCli(['account', 'add', 'kasse@fa-sued.example', '--address', 'kasse@fa-sued.example'], env),
        )
      ).code,
      0,
    );
    const changed = await captureStdout(() =>
      runCli(
        [
          'account',
          'addresses',
          'kasse@fa-sued.example',
          '--address',
          'zahlstelle@fa-sued.example',
          '--domain',
          'fa-sued.example',
        ],
        env,
      ),
    );
    assert.equal(changed.code, 0);
    assert.match(changed.out, /^kasse@fa-sued\.example {2}zahlstelle@fa-sued\.example {2}domains: fa-sued\.example$/m);
    const usage = await captureStdout(() => runCli(['account', 'addresses', 'kasse@fa-sued.example'], env));
    assert.equal(usage.code, 1);
    const refused = await captureStdout(() =>
      runCli(['account', 'addresses', 'kasse@fa-sued.example', '--address', 'no-at-sign'], env),
    );
    assert.equal(refused.code, 1);
    const deleted = await captureStdout(() => runCli(['account', 'delete', 'kasse@fa-sued.example'], env));
    assert.equal(deleted.code, 0);
    assert.match(deleted.out, /^deleted kasse@fa-sued\.example$/m);
    assert.equal((await captureStdout(() => runCli(['account', 'delete', 'kasse@fa-sued.example'], env))).code, 1);
  });
});
