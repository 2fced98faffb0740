// Agency registrations (agency_registrations, migration 013): what an agency asked for on the portal's form, waiting
// for an operator who accepts it into the agencies (with its domains) or rejects it with a note. A decision is
// final: a registration is decided once.
import { randomUUID } from 'node:crypto';
import { type Pool, type PoolClient, withTransaction } from '@smgw/db';
import { agencyConflict, insertAgency } from './agencies.ts';

type Queryable = Pool | PoolClient;

export const REGISTRATION_STATES = ['pending', 'accepted', 'rejected'] as const;
export type RegistrationState = (typeof REGISTRATION_STATES)[number];

export interface AgencyRegistration {
  id: string;
  agencyName: string;
  contactName: string;
  contactEmail: string;
  contactPhone: string | null;
  /** Lower-case A-labels, as the form normalised them. */
  domains: string[];
  note: string | null;
  state: RegistrationState;
  createdAt: Date;
  decidedAt: Date | null;
  /** The operator who accepted or rejected it. */
  decidedBy: string | null;
  decisionNote: string | null;
  /** The agency an acceptance created (null again if that agency is deleted later). */
  agencyId: string | null;
}

export interface NewAgencyRegistration {
  agencyName: string;
  contactName: string;
  contactEmail: string;
  contactPhone?: string | undefined;
  domains: readonly string[];
  note?: string | undefined;
  now: Date;
}

function toRegistration(row: Record<string, unknown>): AgencyRegistration {
  return {
    id: row.id as string,
    agencyName: row.agency_name as string,
    contactName: row.contact_name as string,
    contactEmail: row.contact_email as string,
    contactPhone: (row.contact_phone as string | null) ?? null,
    domains: row.domains as string[],
    note: (row.note as string | null) ?? null,
    state: row.state as RegistrationState,
    createdAt: row.created_at as Date,
    decidedAt: (row.decided_at as Date | null) ?? null,
    decidedBy: (row.decided_by as string | null) ?? null,
    decisionNote: (row.decision_note as string | null) ?? null,
    agencyId: (row.agency_id as string | null) ?? null,
  };
}

/** Stores a registration from the portal's form as pending. The caller has validated the fields (lengths too). */
export async function insertAgencyRegistration(
  db: Queryable,
  input: NewAgencyRegistration,
): Promise<AgencyRegistration> {
  const inserted = await db.query(
    `insert into agency_registrations (id, agency_name, contact_name, contact_email, contact_phone, domains, note,
       created_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8) returning *`,
    [
      randomUUID(),
      input.agencyName,
      input.contactName,
      input.contactEmail,
      input.contactPhone || null,
      [...input.domains],
      input.note || null,
      input.now,
    ],
  );
  return toRegistration(inserted.rows[0]);
}

/** Registrations in one state (every state when omitted), oldest first: the operator's work list. */
export async function listAgencyRegistrations(
  db: Queryable,
  options: { state?: RegistrationState | undefined; limit?: number } = {},
): Promise<AgencyRegistration[]> {
  const found = await db.query(
    `select * from agency_registrations where ($1::text is null or state = $1) order by created_at, id limit $2`,
    [options.state ?? null, options.limit ?? 500],
  );
  return found.rows.map(toRegistration);
}

export async function findAgencyRegistration(db: Queryable, id: string): Promise<AgencyRegistration | undefined> {
  if (!isRegistrationId(id)) return undefined;
  const found = await db.query('select * from agency_registrations where id = $1', [id]);
  return found.rows[0] ? toRegistration(found.rows[0]) : undefined;
}

/** Registration ids are random UUIDs (lower-case, as randomUUID writes them). */
export function isRegistrationId(id: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id);
}

export type RegistrationDecision =
  | { kind: 'accepted'; registration: AgencyRegistration; agencyId: string }
  | { kind: 'rejected'; registration: AgencyRegistration }
  | { kind: 'not-found' }
  /** Accepted or rejected before: a decision is not made twice. */
  | { kind: 'already-decided'; registration: AgencyRegistration }
  /** Accepting would clash with the key directory: nothing was changed. */
  | { kind: 'name-taken'; registration: AgencyRegistration }
  | { kind: 'domain-taken'; registration: AgencyRegistration; detail: string };

export interface DecisionInput {
  id: string;
  operator: string;
  note?: string | undefined;
  now: Date;
}

/**
 * Accepts a pending registration: the agency with the registration's domains is created and the registration marked
 * accepted, in one transaction (the registration row is locked, so two operators cannot both accept it). A name or
 * domain that is taken leaves everything as it was.
 */
export async function acceptAgencyRegistration(
  pool: Pool,
  input: DecisionInput & { signOutbound?: boolean },
): Promise<RegistrationDecision> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const pending = await lockPending(client, input.id);
    if (pending.kind !== 'pending') {
      await client.query('rollback');
      return pending;
    }
    let agencyId: string;
    try {
      agencyId = await insertAgency(client, {
        name: pending.registration.agencyName,
        domains: pending.registration.domains,
        signOutbound: input.signOutbound ?? false,
        operator: input.operator,
        now: input.now,
      });
    } catch (err) {
      await client.query('rollback');
      const conflict = agencyConflict(err);
      if (!conflict) throw err;
      return conflict.kind === 'name-taken'
        ? { kind: 'name-taken', registration: pending.registration }
        : { kind: 'domain-taken', registration: pending.registration, detail: conflict.detail };
    }
    const registration = await markDecided(client, input, 'accepted', agencyId);
    await client.query('commit');
    return { kind: 'accepted', registration, agencyId };
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** Rejects a pending registration with the operator's note (what the operator tells the contact, if anyone). */
export async function rejectAgencyRegistration(pool: Pool, input: DecisionInput): Promise<RegistrationDecision> {
  return withTransaction(pool, async (client) => {
    const pending = await lockPending(client, input.id);
    if (pending.kind !== 'pending') return pending;
    return { kind: 'rejected', registration: await markDecided(client, input, 'rejected', null) };
  });
}

async function lockPending(
  client: PoolClient,
  id: string,
): Promise<
  | { kind: 'pending'; registration: AgencyRegistration }
  | Extract<RegistrationDecision, { kind: 'not-found' | 'already-decided' }>
> {
  if (!isRegistrationId(id)) return { kind: 'not-found' };
  const found = await client.query('select * from agency_registrations where id = $1 for update', [id]);
  if (!found.rows[0]) return { kind: 'not-found' };
  const registration = toRegistration(found.rows[0]);
  return registration.state === 'pending'
    ? { kind: 'pending', registration }
    : { kind: 'already-decided', registration };
}

async function markDecided(
  client: PoolClient,
  input: DecisionInput,
  state: Exclude<RegistrationState, 'pending'>,
  agencyId: string | null,
): Promise<AgencyRegistration> {
  const updated = await client.query(
    `update agency_registrations set state = $2, decided_at = $3, decided_by = $4, decision_note = $5, agency_id = $6
      where id = $1 returning *`,
    [input.id, state, input.now, input.operator, input.note || null, agencyId],
  );
  return toRegistration(updated.rows[0]);
}
