// The admin API's agency registration routes and CLI: list the pending ones, accept one into the key directory
// (once), reject one with a note.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { insertAgencyRegistration } from '@smgw/key-directory';
import type { TestDatabase } from '@smgw/testing';
import { runCli } from '../src/cli.ts';
import {
  type ApiRequest,
  callAdminApi,
  captureStderr,
  captureStdout,
  startTestAdmin,
  type TestAdmin,
} from './harness.ts';

const TOKEN = 'test-token-agency-registrations-0123456789';

describe('admin API: agency registrations', () => {
  let testAdmin: TestAdmin;
  let db: TestDatabase;
  let base: string;
  const api = (method: string, path: string, request: ApiRequest = {}) =>
    callAdminApi(base, TOKEN, method, path, request);
  const json = (body: unknown) => ({ body: JSON.stringify(body), type: 'application/json' });
  const env = () => ({ SMGW_ADMIN_URL: base, SMGW_ADMIN_TOKEN: TOKEN, SMGW_OPERATOR: 'erika' });
  const cli = (...argv: string[]) => captureStdout(() => runCli(argv, env()));

  before(async () => {
    testAdmin = await startTestAdmin(TOKEN);
    ({ db, base } = testAdmin);
  });
  after(async () => {
    await testAdmin?.stop();
  });

  const register = (agencyName: string, domains: string[]) =>
    insertAgencyRegistration(db.pool, {
      agencyName,
      contactName: 'Max Mustermann',
      contactEmail: 'it@example.org',
      contactPhone: '+49 30 123456',
      domains,
      now: new Date(),
    });

  it('needs the bearer token', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    for (const [method, path] of [
      ['GET', '/agency-registrations'],
      ['GET', `/agency-registrations/${id}`],
      ['POST', `/agency-registrations/${id}/accept`],
      ['POST', `/agency-registrations/${id}/reject`],
    ] as const) {
      assert.equal((await api(method, path, { token: null })).status, 401, `${method} ${path}`);
    }
  });

  it("prints no control character of a registration's text to the operator's terminal", async () => {
    await register('Amt \u001b]0;owned\u0007\u001b[1A\u001b[2KAmt Harmlos', ['escape.example']);
    const listed = await cli('registration', 'list');
    assert.equal(listed.code, 0);
    assert.ok(!listed.out.includes('\u001b') && !listed.out.includes('\u0007'), JSON.stringify(listed.out));
    assert.match(listed.out, /Amt \\u001b\]0;owned/);
  });

  it('lists pending registrations by default and others on request', async () => {
    const pending = await register('Amt Liste', ['liste.example']);
    const listed = await api('GET', '/agency-registrations');
    assert.equal(listed.status, 200);
    assert.ok(listed.body.registrations.some((r: { id: string }) => r.id === pending.id));
    assert.equal((await api('GET', '/agency-registrations?state=accepted')).body.registrations.length, 0);
    assert.equal((await api('GET', '/agency-registrations?state=bogus')).status, 400);
    const one = await api('GET', `/agency-registrations/${pending.id}`);
    assert.equal(one.body.contactPhone, '+49 30 123456');

    const out = await cli('registration', 'list');
    assert.match(out.out, new RegExp(`${pending.id} {2}pending {3}Amt Liste {2}domains: liste\\.example`));
  });

  it('accepting creates the agency with its domains; a second accept is refused', async () => {
    const registration = await register('Amt Annahme', ['annahme.example', 'post.annahme.example']);
    const accepted = await api('POST', `/agency-registrations/${registration.id}/accept`, {
      ...json({ note: 'geprüft' }),
      headers: { 'x-smgw-operator': 'ops' },
    });
    assert.equal(accepted.status, 200);
    assert.equal(accepted.body.registration.state, 'accepted');
    assert.equal(accepted.body.registration.decidedBy, 'ops');
    const agency = await api('GET', `/agencies/${accepted.body.agencyId}`);
    assert.equal(agency.body.name, 'Amt Annahme');
    assert.deepEqual(agency.body.domains, ['annahme.example', 'post.annahme.example']);

    const again = await api('POST', `/agency-registrations/${registration.id}/accept`);
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'REGISTRATION_DECIDED');
    const reject = await api('POST', `/agency-registrations/${registration.id}/reject`, json({ note: 'zu spät' }));
    assert.equal(reject.status, 409);
  });

  it('refuses to accept when a domain belongs to an agency already, leaving it pending', async () => {
    const first = await register('Amt Erstes', ['doppelt.example']);
    assert.equal((await api('POST', `/agency-registrations/${first.id}/accept`)).status, 200);
    const second = await register('Amt Zweites', ['doppelt.example']);
    const clash = await api('POST', `/agency-registrations/${second.id}/accept`);
    assert.equal(clash.status, 409);
    assert.equal(clash.body.error.code, 'DOMAIN_TAKEN');
    assert.equal((await api('GET', `/agency-registrations/${second.id}`)).body.state, 'pending');
  });

  it('rejecting needs a note and keeps it', async () => {
    const registration = await register('Amt Ablehnung', ['ablehnung.example']);
    const path = `/agency-registrations/${registration.id}/reject`;
    assert.equal((await api('POST', path)).status, 400);
    assert.equal((await api('POST', path, json({ note: '' }))).status, 400);
    assert.equal((await api('POST', path, json({ note: '   ' }))).status, 400);
    assert.equal((await api('POST', path, json({ note: 'x\u001b[2J' }))).status, 400);
    const rejected = await api('POST', path, json({ note: 'keine öffentliche Stelle' }));
    assert.equal(rejected.status, 200);
    assert.equal(rejected.body.state, 'rejected');
    assert.equal(rejected.body.decisionNote, 'keine öffentliche Stelle');
    assert.equal(rejected.body.agencyId, null);
  });

  it('answers 404 for an unknown registration and 400 for a malformed id', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    assert.equal((await api('GET', `/agency-registrations/${unknown}`)).status, 404);
    const accept = await api('POST', `/agency-registrations/${unknown}/accept`);
    assert.equal(accept.status, 404);
    assert.equal(accept.body.error.code, 'REGISTRATION_NOT_FOUND');
    assert.equal((await api('POST', `/agency-registrations/${unknown}/reject`, json({ note: 'x' }))).status, 404);
    assert.equal((await api('GET', '/agency-registrations/not-a-uuid')).status, 400);
  });

  it('the CLI accepts and rejects, and refuses a reject without a note', async () => {
    const a = await register('Amt Kommandozeile', ['kommandozeile.example']);
    const accepted = await cli('registration', 'accept', a.id);
    assert.equal(accepted.code, 0);
    assert.match(accepted.out, /accepted: agency [0-9A-Z]{26} "Amt Kommandozeile" with kommandozeile\.example/);
    const shown = await cli('registration', 'show', a.id);
    assert.match(shown.out, /accepted by erika as agency/);

    const b = await register('Amt Nein', ['nein.example']);
    assert.equal((await captureStderr(() => runCli(['registration', 'reject', b.id], env()))).code, 1);
    const rejected = await cli('registration', 'reject', b.id, '--note', 'Dublette');
    assert.match(rejected.out, /rejected by erika {2}note: Dublette/);
    assert.match((await cli('registration', 'list', '--state', 'rejected')).out, /Amt Nein/);
  });
});
