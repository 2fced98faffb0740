// Agency registrations against the real PostgreSQL: accepting creates the agency with its domains in one
// transaction, a decision is made once, and a clash with the key directory changes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import {
  acceptAgencyRegistration,
  createAgency,
  findAgencyRegistration,
  getAgency,
  insertAgencyRegistration,
  listAgencyRegistrations,
  rejectAgencyRegistration,
} from '../src/index.ts';

describe('agency registrations in the key directory', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db?.drop();
  });

  const register = (agencyName: string, domains: string[]) =>
    insertAgencyRegistration(db.pool, {
      agencyName,
      contactName: 'Erika Mustermann',
      contactEmail: 'it@stadt.example',
      domains,
      note: 'bitte bis Monatsende',
      now: new Date('2026-03-01T10:00:00Z'),
    });

  it('stores a registration as pending and lists it among the pending ones', async () => {
    const stored = await register('Stadt Musterhausen', ['musterhausen.example', 'rathaus.musterhausen.example']);
    assert.equal(stored.state, 'pending');
    assert.equal(stored.contactPhone, null);
    assert.deepEqual(stored.domains, ['musterhausen.example', 'rathaus.musterhausen.example']);
    const pending = await listAgencyRegistrations(db.pool, { state: 'pending' });
    assert.ok(pending.some((r) => r.id === stored.id));
    assert.deepEqual(await findAgencyRegistration(db.pool, stored.id), stored);
    assert.equal(await findAgencyRegistration(db.pool, 'not-a-uuid'), undefined);
  });

  it('accepting creates the agency with its domains and marks the registration accepted', async () => {
    const stored = await register('Landratsamt Beispielkreis', ['beispielkreis.example']);
    const now = new Date('2026-03-02T09:00:00Z');
    const decided = await acceptAgencyRegistration(db.pool, { id: stored.id, operator: 'ops', note: 'ok', now });
    assert.equal(decided.kind, 'accepted');
    if (decided.kind !== 'accepted') return;
    assert.equal(decided.registration.state, 'accepted');
    assert.equal(decided.registration.decidedBy, 'ops');
    assert.equal(decided.registration.agencyId, decided.agencyId);
    assert.deepEqual(decided.registration.decidedAt, now);
    const agency = await getAgency(db.pool, decided.agencyId);
    assert.equal(agency?.name, 'Landratsamt Beispielkreis');
    assert.deepEqual(agency?.domains, ['beispielkreis.example']);
  });

  it('refuses a second decision on the same registration, accept or reject', async () => {
    const stored = await register('Amt Zweimal', ['zweimal.example']);
    const now = new Date();
    assert.equal((await acceptAgencyRegistration(db.pool, { id: stored.id, operator: 'a', now })).kind, 'accepted');
    const again = await acceptAgencyRegistration(db.pool, { id: stored.id, operator: 'b', now });
    assert.equal(again.kind, 'already-decided');
    const reject = await rejectAgencyRegistration(db.pool, { id: stored.id, operator: 'b', note: 'nein', now });
    assert.equal(reject.kind, 'already-decided');
    assert.equal((await findAgencyRegistration(db.pool, stored.id))?.decidedBy, 'a');
  });

  it('of two operators accepting at once, exactly one creates the agency', async () => {
    const stored = await register('Amt Gleichzeitig', ['gleichzeitig.example']);
    const now = new Date();
    const results = await Promise.all([
      acceptAgencyRegistration(db.pool, { id: stored.id, operator: 'a', now }),
      acceptAgencyRegistration(db.pool, { id: stored.id, operator: 'b', now }),
    ]);
    assert.deepEqual(results.map((r) => r.kind).sort(), ['accepted', 'already-decided']);
  });

  it('rejecting keeps the note and creates nothing', async () => {
    const stored = await register('Amt Abgelehnt', ['abgelehnt.example']);
    const decided = await rejectAgencyRegistration(db.pool, {
      id: stored.id,
      operator: 'ops',
      note: 'keine Behörde',
      now: new Date(),
    });
    assert.equal(decided.kind, 'rejected');
    if (decided.kind !== 'rejected') return;
    assert.equal(decided.registration.decisionNote, 'keine Behörde');
    assert.equal(decided.registration.agencyId, null);
    const names = (await db.pool.query('select name from agencies')).rows.map((r) => r.name);
    assert.ok(!names.includes('Amt Abgelehnt'));
    assert.ok((await listAgencyRegistrations(db.pool, { state: 'rejected' })).some((r) => r.id === stored.id));
  });

  it('leaves the registration pending and creates nothing when a domain already belongs to an agency', async () => {
    await createAgency(db.pool, { name: 'Bestehendes Amt', domains: ['vergeben.example'], now: new Date() });
    const stored = await register('Neues Amt', ['frei.example', 'vergeben.example']);
    const decided = await acceptAgencyRegistration(db.pool, { id: stored.id, operator: 'ops', now: new Date() });
    assert.equal(decided.kind, 'domain-taken');
    assert.equal((await findAgencyRegistration(db.pool, stored.id))?.state, 'pending');
    const names = (await db.pool.query('select name from agencies')).rows.map((r) => r.name);
    assert.ok(!names.includes('Neues Amt'));
    const domains = (await db.pool.query("select domain from agency_domains where domain = 'frei.example'")).rows;
    assert.equal(domains.length, 0);
  });

  it('leaves the registration pending when an agency of that name exists', async () => {
    const stored = await register('Bestehendes Amt', ['anders.example']);
    const decided = await acceptAgencyRegistration(db.pool, { id: stored.id, operator: 'ops', now: new Date() });
    assert.equal(decided.kind, 'name-taken');
    assert.equal((await findAgencyRegistration(db.pool, stored.id))?.state, 'pending');
  });

  it('answers not-found for an unknown id', async () => {
    const now = new Date();
    const id = '00000000-0000-4000-8000-000000000000';
    assert.equal((await acceptAgencyRegistration(db.pool, { id, operator: 'ops', now })).kind, 'not-found');
    assert.equal((await rejectAgencyRegistration(db.pool, { id, operator: 'ops', now })).kind, 'not-found');
  });
});
