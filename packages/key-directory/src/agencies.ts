// Agencies (agencies, agency_domains, agency_addresses; migrations 008 and 009): the agencies behind the gateway,
// the domains they own and the addresses whose signatures are verified; whether their outbound mail is signed.
import { type ChangeListener, type Pool, type PoolClient, preparedStatement, readUntilChanged } from '@smgw/db';
import { newMessageId } from '@smgw/envelope';

const UNIQUE_VIOLATION = '23505';
const FOREIGN_KEY_VIOLATION = '23503';
const pgCode = (err: unknown): string | undefined => (err as { code?: string }).code;

export interface Agency {
  id: string;
  name: string;
  domains: string[];
  addresses: Array<{ address: string; verifySignatures: boolean }>;
  /** Outbound mail from the agency is signed with the sender address's key before encryption (migration 009). */
  signOutbound: boolean;
  signOutboundChangedBy: string | null;
  signOutboundChangedAt: string | null;
  createdAt: string;
}

export type CreateAgencyResult =
  | { kind: 'created'; id: string }
  | { kind: 'name-taken' }
  | { kind: 'domain-taken'; detail: string };

/** Creates an agency with its domains (lower-case), all or nothing. */
export async function createAgency(
  pool: Pool,
  agency: { name: string; domains: string[]; signOutbound?: boolean; operator?: string; now: Date },
): Promise<CreateAgencyResult> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const id = await insertAgency(client, agency);
    await client.query('commit');
    return { kind: 'created', id };
  } catch (err) {
    await client.query('rollback').catch(() => {});
    const conflict = agencyConflict(err);
    if (conflict) return conflict;
    throw err;
  } finally {
    client.release();
  }
}

/**
 * The agency's rows, in the caller's transaction (which a conflict aborts: see agencyConflict). Returns its id.
 * Accepting an agency registration runs it together with the registration's update.
 */
export async function insertAgency(
  client: PoolClient,
  agency: { name: string; domains: string[]; signOutbound?: boolean; operator?: string; now: Date },
): Promise<string> {
  const signOutbound = agency.signOutbound ?? false;
  const id = newMessageId(agency.now.getTime());
  await client.query(
    `insert into agencies (id, name, created_at, sign_outbound, sign_outbound_changed_by, sign_outbound_changed_at)
     values ($1, $2, $3, $4, $5, $6)`,
    [
      id,
      agency.name,
      agency.now,
      signOutbound,
      signOutbound ? (agency.operator ?? null) : null,
      signOutbound ? agency.now : null,
    ],
  );
  await client.query('insert into agency_domains (domain, agency_id) select unnest($1::text[]), $2', [
    agency.domains,
    id,
  ]);
  return id;
}

/** What an error of insertAgency means: the name or a domain is taken; undefined for any other error. */
export function agencyConflict(err: unknown): Exclude<CreateAgencyResult, { kind: 'created' }> | undefined {
  if (pgCode(err) !== UNIQUE_VIOLATION) return undefined;
  const constraint = (err as { constraint?: string }).constraint ?? '';
  if (constraint.startsWith('agencies_name')) return { kind: 'name-taken' };
  return { kind: 'domain-taken', detail: (err as { detail?: string }).detail ?? '' };
}

export async function getAgency(pool: Pool, id: string): Promise<Agency | undefined> {
  return (await listAgencies(pool, id))[0];
}

export async function listAgencies(pool: Pool, id?: string): Promise<Agency[]> {
  const { rows } = await pool.query<{
    id: string;
    name: string;
    created_at: Date;
    domains: string[];
    addresses: Array<{ address: string; verifySignatures: boolean }>;
    sign_outbound: boolean;
    sign_outbound_changed_by: string | null;
    sign_outbound_changed_at: Date | null;
  }>(
    `select a.id, a.name, a.created_at, a.sign_outbound, a.sign_outbound_changed_by, a.sign_outbound_changed_at,
        coalesce((select array_agg(domain order by domain) from agency_domains d where d.agency_id = a.id), '{}') as domains,
        coalesce((select json_agg(json_build_object('address', address, 'verifySignatures', verify_signatures)
                    order by address) from agency_addresses x where x.agency_id = a.id), '[]') as addresses
       from agencies a where ($1::text is null or a.id = $1) order by a.name`,
    [id ?? null],
  );
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    domains: r.domains,
    addresses: r.addresses,
    signOutbound: r.sign_outbound,
    signOutboundChangedBy: r.sign_outbound_changed_by,
    signOutboundChangedAt: r.sign_outbound_changed_at?.toISOString() ?? null,
    createdAt: r.created_at.toISOString(),
  }));
}

/** Switches signing of the agency's outbound mail; records who and when. The agency as it is now, if it exists. */
export async function setAgencySigning(
  pool: Pool,
  input: { agencyId: string; signOutbound: boolean; operator: string; at: Date },
): Promise<Agency | undefined> {
  const { rowCount } = await pool.query(
    `update agencies set sign_outbound = $2, sign_outbound_changed_by = $3, sign_outbound_changed_at = $4
      where id = $1`,
    [input.agencyId, input.signOutbound, input.operator, input.at],
  );
  if (rowCount === 0) return undefined;
  return getAgency(pool, input.agencyId);
}

export type PutAddressResult =
  | { kind: 'created' | 'updated'; address: string; verifySignatures: boolean }
  | { kind: 'agency-not-found' }
  | { kind: 'not-in-domains'; domains: string[] }
  | { kind: 'taken' };

/**
 * Adds an address to an agency, or changes its signature-verification flag. The address must lie in one of the
 * agency's own domains; an address of another agency is refused.
 */
export async function putAgencyAddress(
  pool: Pool,
  input: { agencyId: string; address: string; verifySignatures: boolean },
): Promise<PutAddressResult> {
  const address = input.address.toLowerCase();
  const agency = await getAgency(pool, input.agencyId);
  if (!agency) return { kind: 'agency-not-found' };
  const domain = address.slice(address.lastIndexOf('@') + 1);
  if (!agency.domains.includes(domain)) return { kind: 'not-in-domains', domains: agency.domains };
  try {
    const { rows } = await pool.query<{ inserted: boolean; agency_id: string }>(
      `insert into agency_addresses (address, agency_id, verify_signatures) values ($1, $2, $3)
       on conflict (address) do update set verify_signatures = excluded.verify_signatures
         where agency_addresses.agency_id = excluded.agency_id
       returning (xmax = 0) as inserted, agency_id`,
      [address, input.agencyId, input.verifySignatures],
    );
    if (!rows[0]) return { kind: 'taken' };
    return { kind: rows[0].inserted ? 'created' : 'updated', address, verifySignatures: input.verifySignatures };
  } catch (err) {
    if (pgCode(err) === FOREIGN_KEY_VIOLATION) return { kind: 'agency-not-found' };
    throw err;
  }
}

/** The agency an address belongs to, if any. */
export async function agencyOfAddress(pool: Pool, address: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ agency_id: string }>(
    'select agency_id from agency_addresses where address = $1',
    [address.toLowerCase()],
  );
  return rows[0]?.agency_id;
}

/**
 * Whether the sender's agency signs outbound mail: the agency owning the domain of `address` (the envelope sender).
 * Undefined when the domain belongs to no agency.
 */
export async function agencySigningFor(
  pool: Pool,
  address: string,
): Promise<{ agencyId: string; signOutbound: boolean } | undefined> {
  const { rows } = await pool.query<{ agencyId: string; signOutbound: boolean }>(
    `select a.id as "agencyId", a.sign_outbound as "signOutbound" from agency_domains d
       join agencies a on a.id = d.agency_id where d.domain = $1`,
    [domainOf(address)],
  );
  return rows[0];
}

const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

export type SetPortalReachableResult =
  | { kind: 'updated'; address: string; agencyId: string; portalReachable: boolean }
  | { kind: 'not-found' };

/**
 * Marks an agency address as one portal users may write to without replying (migration 013), or unmarks it. The
 * address must already be an agency address (putAgencyAddress); with `agencyId`, only one of that agency's.
 */
export async function setAddressPortalReachable(
  pool: Pool,
  input: { address: string; portalReachable: boolean; agencyId?: string | undefined },
): Promise<SetPortalReachableResult> {
  const { rows } = await pool.query<{ address: string; agency_id: string }>(
    `update agency_addresses set portal_reachable = $2
      where address = $1 and ($3::text is null or agency_id = $3)
      returning address, agency_id`,
    [input.address.toLowerCase(), input.portalReachable, input.agencyId ?? null],
  );
  const row = rows[0];
  if (!row) return { kind: 'not-found' };
  return { kind: 'updated', address: row.address, agencyId: row.agency_id, portalReachable: input.portalReachable };
}

export interface PortalReachableAddress {
  address: string;
  agencyId: string;
  agencyName: string;
}

/** The agency addresses portal users may write new messages to, by agency name, then address. */
export async function listPortalReachableAddresses(pool: Pool): Promise<PortalReachableAddress[]> {
  const { rows } = await pool.query<PortalReachableAddress>(
    `select x.address, a.id as "agencyId", a.name as "agencyName"
       from agency_addresses x join agencies a on a.id = x.agency_id
      where x.portal_reachable
      order by a.name, x.address`,
  );
  return rows;
}

/** Whether the domain (lower-case A-label) belongs to an agency of the key directory: no portal mailbox there. */
export async function isAgencyDomain(pool: Pool, domain: string): Promise<boolean> {
  const { rowCount } = await pool.query('select 1 from agency_domains where domain = $1', [domain.toLowerCase()]);
  return (rowCount ?? 0) > 0;
}

/**
 * Of `addresses`, those enabled for signature verification (agency_addresses.verify_signatures), as given. Agency
 * addresses are stored lower-case; a recipient is matched case-insensitively, as putAgencyAddress stores it.
 */
const ADDRESSES_VERIFYING_SIGNATURES = preparedStatement(
  'key-directory-addresses-verifying-signatures',
  'select address from agency_addresses where verify_signatures and address = any($1::text[])',
);

export async function addressesVerifyingSignatures(pool: Pool, addresses: readonly string[]): Promise<Set<string>> {
  if (addresses.length === 0) return new Set();
  const { rows } = await pool.query<{ address: string }>(
    ADDRESSES_VERIFYING_SIGNATURES([addresses.map((a) => a.toLowerCase())]),
  );
  return enabledOf(addresses, new Set(rows.map((r) => r.address)));
}

const enabledOf = (addresses: readonly string[], enabled: ReadonlySet<string>): Set<string> =>
  new Set(addresses.filter((a) => enabled.has(a.toLowerCase())));

/** More addresses than this are not kept in memory: each lookup asks the database, as without a cache. */
export const MAX_CACHED_VERIFYING_ADDRESSES = 100_000;

const ALL_ADDRESSES_VERIFYING_SIGNATURES = preparedStatement(
  'key-directory-all-addresses-verifying-signatures',
  'select address from agency_addresses where verify_signatures limit $1',
);

/**
 * addressesVerifyingSignatures from memory: every enabled address, read once and again after each change announced
 * on KEY_DIRECTORY_CHANNEL (readUntilChanged). While `changes` is not listening, or when there are more than
 * `limit`, every lookup asks the database. A change reaches the cache as its notice does, a few milliseconds after
 * its commit: a message looked up in between goes where the last snapshot says, as one whose query ran just before
 * the commit did.
 */
export function cachedAddressesVerifyingSignatures(
  pool: Pool,
  changes: Pick<ChangeListener, 'listening' | 'generation'>,
  limit = MAX_CACHED_VERIFYING_ADDRESSES,
): (addresses: readonly string[]) => Promise<Set<string>> {
  const allEnabled = readUntilChanged(changes, async (): Promise<ReadonlySet<string> | undefined> => {
    const { rows } = await pool.query<{ address: string }>(ALL_ADDRESSES_VERIFYING_SIGNATURES([limit + 1]));
    return rows.length > limit ? undefined : new Set(rows.map((r) => r.address));
  });
  return async (addresses) => {
    if (addresses.length === 0) return new Set();
    if (!changes.listening) return addressesVerifyingSignatures(pool, addresses);
    const enabled = await allEnabled();
    return enabled ? enabledOf(addresses, enabled) : addressesVerifyingSignatures(pool, addresses);
  };
}

/**
 * agencySigningFor from memory: every agency domain with its agency's signing flag, read once and again after each
 * change announced on KEY_DIRECTORY_CHANNEL; while `changes` is not listening, every lookup asks the database.
 */
export function cachedAgencySigning(
  pool: Pool,
  changes: Pick<ChangeListener, 'listening' | 'generation'>,
): (address: string) => Promise<{ agencyId: string; signOutbound: boolean } | undefined> {
  const byDomain = readUntilChanged(changes, async () => {
    const { rows } = await pool.query<{ domain: string; agencyId: string; signOutbound: boolean }>(
      `select d.domain, a.id as "agencyId", a.sign_outbound as "signOutbound" from agency_domains d
         join agencies a on a.id = d.agency_id`,
    );
    return new Map(rows.map((r) => [r.domain, { agencyId: r.agencyId, signOutbound: r.signOutbound }]));
  });
  return async (address) => {
    if (!changes.listening) return agencySigningFor(pool, address);
    const signing = (await byDomain()).get(domainOf(address));
    return signing && { ...signing };
  };
}
