// Recipient certificates (certificates, migrations 008 and 021): added by an operator or harvested from validly signed
// inbound mail, replaced by renewals, withdrawn and reinstated by an operator (certificate_audit keeps who, when and
// why); the encrypt stage reads the current ones per address. Addresses are stored lower-case.
import { type Pool, type PoolClient, preparedStatement, withTransaction } from '@smgw/db';

/** Who brought it: an operator (admin API), inbound signed mail, or the recipient on the portal (migration 013). */
export type CertificateSource = 'admin' | 'harvested' | 'portal';

export interface StoredCertificate {
  fingerprint: string;
  subject: string;
  addresses: string[];
  issuer: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  source: CertificateSource;
  addedAt: string;
  replacedBy: string | null;
  /** Set while an operator has taken it out of use (withdrawCertificate): then it is current for no address. */
  withdrawnAt: string | null;
  withdrawnBy: string | null;
  withdrawalReason: string | null;
}

export interface NewCertificate {
  fingerprint: string;
  subject: string;
  /** Lower-case. */
  addresses: string[];
  issuer: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  der: Buffer;
  intermediates: Buffer[];
  smimeCapabilities: unknown;
  source: CertificateSource;
  lastValidation: unknown;
}

interface CertificateRow {
  fingerprint: string;
  subject: string;
  addresses: string[];
  issuer: string;
  serial: string;
  not_before: Date;
  not_after: Date;
  source: CertificateSource;
  added_at: Date;
  replaced_by: string | null;
  withdrawn_at: Date | null;
  withdrawn_by: string | null;
  withdrawal_reason: string | null;
}

const CERTIFICATE_COLUMNS =
  'fingerprint, subject, addresses, issuer, serial, not_before, not_after, source, added_at, replaced_by, ' +
  'withdrawn_at, withdrawn_by, withdrawal_reason';

const toCertificate = (r: CertificateRow): StoredCertificate => ({
  fingerprint: r.fingerprint,
  subject: r.subject,
  addresses: r.addresses,
  issuer: r.issuer,
  serial: r.serial,
  notBefore: r.not_before.toISOString(),
  notAfter: r.not_after.toISOString(),
  source: r.source,
  addedAt: r.added_at.toISOString(),
  replacedBy: r.replaced_by,
  withdrawnAt: r.withdrawn_at ? r.withdrawn_at.toISOString() : null,
  withdrawnBy: r.withdrawn_by,
  withdrawalReason: r.withdrawal_reason,
});

/**
 * One writer per address at a time (in the caller's transaction), so two renewals cannot both stay current and a
 * withdrawal or reinstatement does not cross a renewal's decision. Sorted, so two writers never wait on each other.
 */
async function lockCertificateAddresses(client: PoolClient, addresses: string[]): Promise<void> {
  for (const address of [...addresses].sort()) {
    await client.query('select pg_advisory_xact_lock(hashtext($1))', [`certificates:${address}`]);
  }
}

/**
 * Takes the address locks of a stored certificate (lockCertificateAddresses) in the caller's transaction; false when
 * there is no such certificate. Its addresses never change once stored, so they are known before the lock.
 */
async function lockStoredCertificate(client: PoolClient, fingerprint: string): Promise<boolean> {
  const found = await client.query<{ addresses: string[] }>(
    'select addresses from certificates where fingerprint = $1',
    [fingerprint],
  );
  if (!found.rows[0]) return false;
  await lockCertificateAddresses(client, found.rows[0].addresses);
  return true;
}

export interface AddedCertificate {
  certificate: StoredCertificate;
  created: boolean;
  replaced: string[];
  /**
   * Set when an operator added a certificate already stored from mail or the portal: the source it had. It is the
   * operator's from now on (source `admin`), so it no longer goes with a portal mailbox (deletePortalCertificates).
   */
  takenOverFrom?: CertificateSource;
}

/**
 * Stores a validated certificate: validated for encryption too (acceptRecipientCertificate and the harvest refuse one
 * whose keyUsage does not allow it), since only a certificate we can encrypt to may replace another. A renewed
 * certificate replaces every current certificate that shares an address
 * with it and began earlier (their replaced_by points at it); a certificate older than a current one for one of its
 * addresses is stored as already replaced by that one. Withdrawn certificates take no part: they neither replace nor
 * are replaced. The same certificate again only refreshes last_validation: one an operator withdrew stays withdrawn
 * (the answer's certificate says so), whoever brings it. Added again by an operator (source `admin`) and not
 * withdrawn, it becomes theirs: an operator who adds a certificate a portal user uploaded decided to use it, and it
 * must not be deleted with that user's mailbox. Its addresses and place in the replacement rule stay as stored.
 */
export async function addCertificate(pool: Pool, cert: NewCertificate): Promise<AddedCertificate> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await lockCertificateAddresses(client, cert.addresses);
    const before = await client.query<{ source: CertificateSource }>(
      'select source from certificates where fingerprint = $1 for update',
      [cert.fingerprint],
    );
    const existing = await client.query<CertificateRow>(
      `update certificates set last_validation = $2, smime_capabilities = coalesce($3::jsonb, smime_capabilities),
         source = case when $4 = 'admin' and withdrawn_at is null then 'admin' else source end
        where fingerprint = $1 returning ${CERTIFICATE_COLUMNS}`,
      [
        cert.fingerprint,
        JSON.stringify(cert.lastValidation),
        cert.smimeCapabilities === undefined || cert.smimeCapabilities === null
          ? null
          : JSON.stringify(cert.smimeCapabilities),
        cert.source,
      ],
    );
    if (existing.rows[0]) {
      await client.query('commit');
      const certificate = toCertificate(existing.rows[0]);
      const previous = before.rows[0]?.source;
      const takenOver = previous !== undefined && previous !== certificate.source;
      return { certificate, created: false, replaced: [], ...(takenOver ? { takenOverFrom: previous } : {}) };
    }
    const newer = await client.query<{ fingerprint: string }>(
      `select fingerprint from certificates
        where replaced_by is null and withdrawn_at is null and addresses && $1 and not_before > $2
        order by not_before desc limit 1`,
      [cert.addresses, cert.notBefore],
    );
    const inserted = await client.query<CertificateRow>(
      `insert into certificates (fingerprint, subject, addresses, issuer, serial, not_before, not_after, der,
         intermediates, smime_capabilities, source, replaced_by, last_validation)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) returning ${CERTIFICATE_COLUMNS}`,
      [
        cert.fingerprint,
        cert.subject,
        cert.addresses,
        cert.issuer,
        cert.serial,
        cert.notBefore,
        cert.notAfter,
        cert.der,
        cert.intermediates,
        cert.smimeCapabilities === undefined ? null : JSON.stringify(cert.smimeCapabilities),
        cert.source,
        newer.rows[0]?.fingerprint ?? null,
        JSON.stringify(cert.lastValidation),
      ],
    );
    let replaced: string[] = [];
    if (!newer.rows[0]) {
      const result = await client.query<{ fingerprint: string }>(
        `update certificates set replaced_by = $1
          where replaced_by is null and withdrawn_at is null and fingerprint <> $1 and addresses && $2
            and not_before <= $3
          returning fingerprint`,
        [cert.fingerprint, cert.addresses, cert.notBefore],
      );
      replaced = result.rows.map((r) => r.fingerprint);
    }
    await client.query('commit');
    return { certificate: toCertificate(inserted.rows[0] as CertificateRow), created: true, replaced };
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Deletes the certificates uploaded on the portal for `address` (source `portal`, current or replaced), in the
 * caller's transaction: they go with the address's mailbox (deletePortalKeys). Returns their fingerprints. A row
 * stored from the portal for more addresses (before the portal stored for the user's address alone) goes whole: the
 * other addresses were never the uploader's to claim. Certificates of other sources stay, and one the deleted
 * certificate had replaced stays replaced (migration 020): its holder renewed it, and it must not encrypt their mail
 * again without anyone saying so.
 */
export async function deletePortalCertificates(db: PoolClient, address: string): Promise<string[]> {
  const lower = address.toLowerCase();
  // The lock of addCertificate: a renewal stored meanwhile does not decide against a certificate going away.
  await db.query('select pg_advisory_xact_lock(hashtext($1))', [`certificates:${lower}`]);
  const { rows } = await db.query<{ fingerprint: string }>(
    `delete from certificates where source = 'portal' and addresses @> array[$1::text] returning fingerprint`,
    [lower],
  );
  return rows.map((r) => r.fingerprint).sort();
}

/**
 * Certificates, newest first; with `address`, only those for it; those not current (replaced or withdrawn) only with
 * `includeReplaced`.
 */
export async function listCertificates(
  pool: Pool,
  filter: { address?: string | undefined; includeReplaced: boolean; limit: number },
): Promise<StoredCertificate[]> {
  const { rows } = await pool.query<CertificateRow>(
    `select ${CERTIFICATE_COLUMNS} from certificates
      where ($1::text is null or addresses @> array[$1::text])
        and ($2 or (replaced_by is null and withdrawn_at is null))
      order by not_before desc, fingerprint limit $3`,
    [filter.address?.toLowerCase() ?? null, filter.includeReplaced, filter.limit],
  );
  return rows.map(toCertificate);
}

export interface CertificateForEncryption {
  fingerprint: string;
  der: Buffer;
  intermediates: Buffer[];
  /** What the holder announced in signed mail (harvest-smime-certificates.ts); null when never harvested. */
  smimeCapabilities: StoredCapabilities | null;
}

/** The smime_capabilities column as harvesting writes it (SmimeCapabilities of @smgw/crypto). */
export interface StoredCapabilities {
  contentCiphers?: string[];
  keyTransport?: string;
  oids?: string[];
}

/** A certificate taken from validly signed inbound mail: stored like an operator's, with source `harvested`. */
export type HarvestedCertificate = Omit<NewCertificate, 'source'>;

/**
 * The current certificates of address $1, for every outbound message. `addresses @> array[$1]`, not `$1 =
 * any(addresses)`: only the first can use the addresses index; the second read every certificate (6 ms a message at
 * 50,000 certificates).
 */
export const CURRENT_CERTIFICATES = preparedStatement(
  'key-directory-current-certificates',
  `select fingerprint, der, intermediates, smime_capabilities as "smimeCapabilities" from certificates
    where addresses @> array[$1::text] and replaced_by is null and withdrawn_at is null
    order by not_after desc, added_at desc`,
);

/** The current (neither replaced nor withdrawn) certificates for the address, the longest-lived first. */
export async function currentCertificates(pool: Pool, address: string): Promise<CertificateForEncryption[]> {
  const { rows } = await pool.query<CertificateForEncryption>(CURRENT_CERTIFICATES([address.toLowerCase()]));
  return rows;
}

/**
 * Stores a harvested certificate with the same replacement rule as an operator's (addCertificate): a certificate an
 * operator withdrew stays withdrawn when it comes again in signed mail; a new one for the address is stored as usual.
 */
export async function storeHarvestedCertificate(
  pool: Pool,
  cert: HarvestedCertificate,
): Promise<{ created: boolean; replaced: string[] }> {
  const { created, replaced } = await addCertificate(pool, { ...cert, source: 'harvested' });
  return { created, replaced };
}

/** The certificate with that fingerprint (lower-case hex), current or not. */
export async function getCertificate(pool: Pool, fingerprint: string): Promise<StoredCertificate | undefined> {
  const { rows } = await pool.query<CertificateRow>(
    `select ${CERTIFICATE_COLUMNS} from certificates where fingerprint = $1`,
    [fingerprint.toLowerCase()],
  );
  return rows[0] ? toCertificate(rows[0]) : undefined;
}

/** The certificate with its DER and the intermediates stored with it, for validating it again (reinstatement). */
export async function getCertificateChain(
  pool: Pool,
  fingerprint: string,
): Promise<{ certificate: StoredCertificate; der: Buffer; intermediates: Buffer[] } | undefined> {
  const { rows } = await pool.query<CertificateRow & { der: Buffer; intermediates: Buffer[] }>(
    `select ${CERTIFICATE_COLUMNS}, der, intermediates from certificates where fingerprint = $1`,
    [fingerprint.toLowerCase()],
  );
  const row = rows[0];
  return row && { certificate: toCertificate(row), der: row.der, intermediates: row.intermediates };
}

export const CERTIFICATE_AUDIT_EVENTS = ['certificate.withdrawn', 'certificate.reinstated'] as const;

/** One operator decision about a certificate's use (certificate_audit, migration 021). */
export interface CertificateAuditEntry {
  fingerprint: string;
  addresses: string[];
  event: (typeof CERTIFICATE_AUDIT_EVENTS)[number];
  /** The operator (X-SMGW-Operator). */
  actor: string;
  at: string;
  reason: string;
  detail: Record<string, unknown>;
}

async function recordCertificateAudit(client: PoolClient, entry: Omit<CertificateAuditEntry, 'at'> & { at: Date }) {
  await client.query(
    `insert into certificate_audit (fingerprint, addresses, event, actor, at, reason, detail)
     values ($1, $2, $3, $4, $5, $6, $7)`,
    [
      entry.fingerprint,
      entry.addresses,
      entry.event,
      entry.actor,
      entry.at,
      entry.reason,
      JSON.stringify(entry.detail),
    ],
  );
}

/** Who withdrew and reinstated the certificate, when and why, oldest first (also after it was deleted). */
export async function certificateAudit(pool: Pool, fingerprint: string): Promise<CertificateAuditEntry[]> {
  const { rows } = await pool.query<Omit<CertificateAuditEntry, 'at'> & { at: Date }>(
    `select fingerprint, addresses, event, actor, at, reason, detail from certificate_audit
      where fingerprint = $1 order by at, id`,
    [fingerprint.toLowerCase()],
  );
  return rows.map((row) => ({ ...row, at: row.at.toISOString() }));
}

export interface CertificateUseChange {
  fingerprint: string;
  operator: string;
  /** Why: kept in certificate_audit (and, for a withdrawal, on the row). */
  reason: string;
  at: Date;
}

export type CertificateWithdrawal =
  /** `hadReplaced`: the certificates it had replaced; they stay replaced (reinstateCertificate brings one back). */
  | { ok: true; certificate: StoredCertificate; hadReplaced: string[] }
  | { ok: false; code: 'CERTIFICATE_NOT_FOUND'; message: string }
  | { ok: false; code: 'CERTIFICATE_ALREADY_WITHDRAWN'; message: string; certificate: StoredCertificate };

/**
 * Takes a certificate out of use: from now on it is current for no address, so the encrypt stage uses another current
 * certificate of the recipient, an approved OpenPGP key, or the portal. The row stays, marked with who, when and why
 * (and the decision in certificate_audit). A certificate it had replaced stays replaced: it may be the very one the
 * holder can no longer open, and only an operator says otherwise (reinstateCertificate). Any certificate not yet
 * withdrawn may be withdrawn, current or replaced (a replaced one then cannot come back by a reinstatement meant for
 * another).
 */
export async function withdrawCertificate(pool: Pool, change: CertificateUseChange): Promise<CertificateWithdrawal> {
  const fingerprint = change.fingerprint.toLowerCase();
  const notFound = { ok: false, code: 'CERTIFICATE_NOT_FOUND', message: `no certificate ${fingerprint}` } as const;
  // An answer that changes nothing commits nothing but the read.
  return withTransaction(pool, async (client): Promise<CertificateWithdrawal> => {
    if (!(await lockStoredCertificate(client, fingerprint))) return notFound;
    const { rows } = await client.query<CertificateRow>(
      `update certificates set withdrawn_at = $2, withdrawn_by = $3, withdrawal_reason = $4
        where fingerprint = $1 and withdrawn_at is null returning ${CERTIFICATE_COLUMNS}`,
      [fingerprint, change.at, change.operator, change.reason],
    );
    const withdrawn = rows[0];
    if (!withdrawn) {
      const { rows: left } = await client.query<CertificateRow>(
        `select ${CERTIFICATE_COLUMNS} from certificates where fingerprint = $1`,
        [fingerprint],
      );
      // Gone meanwhile (its portal mailbox was deleted), or withdrawn by another operator first.
      if (!left[0]) return notFound;
      const certificate = toCertificate(left[0]);
      return {
        ok: false,
        code: 'CERTIFICATE_ALREADY_WITHDRAWN',
        message: `${fingerprint} was withdrawn by ${certificate.withdrawnBy} at ${certificate.withdrawnAt}`,
        certificate,
      };
    }
    const replaced = await client.query<{ fingerprint: string }>(
      'select fingerprint from certificates where replaced_by = $1 order by not_before desc, fingerprint',
      [fingerprint],
    );
    const hadReplaced = replaced.rows.map((r) => r.fingerprint);
    await recordCertificateAudit(client, {
      fingerprint,
      addresses: withdrawn.addresses,
      event: 'certificate.withdrawn',
      actor: change.operator,
      at: change.at,
      reason: change.reason,
      detail: { wasCurrent: withdrawn.replaced_by === null, replacedBy: withdrawn.replaced_by, hadReplaced },
    });
    return { ok: true, certificate: toCertificate(withdrawn), hadReplaced };
  });
}

export type CertificateReinstatement =
  /** `replaced`: the current certificates of its addresses that began earlier, now replaced by it (addCertificate). */
  | { ok: true; certificate: StoredCertificate; replaced: string[] }
  | { ok: false; code: 'CERTIFICATE_NOT_FOUND'; message: string }
  /** Neither withdrawn nor replaced: nothing to bring back. */
  | { ok: false; code: 'CERTIFICATE_CURRENT'; message: string }
  /** A current certificate of one of its addresses began later: withdraw it first. */
  | { ok: false; code: 'CERTIFICATE_SUPERSEDED'; message: string; newer: string[] };

/**
 * Makes a withdrawn or replaced certificate current again, as an operator's explicit decision (the caller has
 * validated it now: reinstateRecipientCertificate in certificate-acceptance.ts). The replacement rule holds as for a certificate
 * added now: while a current certificate of one of its addresses began later it stays as it is
 * (CERTIFICATE_SUPERSEDED, the operator withdraws that one first), and the current ones that began earlier are
 * replaced by it. Recorded in certificate_audit; `lastValidation` is the validation just made.
 */
export async function reinstateCertificate(
  pool: Pool,
  change: CertificateUseChange & { lastValidation: unknown },
): Promise<CertificateReinstatement> {
  const fingerprint = change.fingerprint.toLowerCase();
  const notFound = { ok: false, code: 'CERTIFICATE_NOT_FOUND', message: `no certificate ${fingerprint}` } as const;
  // An answer that changes nothing commits nothing but the read.
  return withTransaction(pool, async (client): Promise<CertificateReinstatement> => {
    if (!(await lockStoredCertificate(client, fingerprint))) return notFound;
    const { rows } = await client.query<CertificateRow>(
      `select ${CERTIFICATE_COLUMNS} from certificates where fingerprint = $1 for update`,
      [fingerprint],
    );
    const before = rows[0];
    if (!before) {
      return notFound;
    }
    if (before.replaced_by === null && before.withdrawn_at === null) {
      return { ok: false, code: 'CERTIFICATE_CURRENT', message: `${fingerprint} is current: nothing to reinstate` };
    }
    const newer = await client.query<{ fingerprint: string }>(
      `select fingerprint from certificates
        where replaced_by is null and withdrawn_at is null and fingerprint <> $1 and addresses && $2
          and not_before > $3
        order by not_before desc, fingerprint`,
      [fingerprint, before.addresses, before.not_before],
    );
    if (newer.rows.length > 0) {
      const fingerprints = newer.rows.map((r) => r.fingerprint);
      return {
        ok: false,
        code: 'CERTIFICATE_SUPERSEDED',
        message:
          `the newer certificate ${fingerprints.join(', ')} is current for ${before.addresses.join(', ')}: ` +
          'withdraw it first',
        newer: fingerprints,
      };
    }
    const reinstated = await client.query<CertificateRow>(
      `update certificates set replaced_by = null, withdrawn_at = null, withdrawn_by = null, withdrawal_reason = null,
         last_validation = $2
        where fingerprint = $1 returning ${CERTIFICATE_COLUMNS}`,
      [fingerprint, JSON.stringify(change.lastValidation)],
    );
    const replaced = await client.query<{ fingerprint: string }>(
      `update certificates set replaced_by = $1
        where replaced_by is null and withdrawn_at is null and fingerprint <> $1 and addresses && $2
          and not_before <= $3
        returning fingerprint`,
      [fingerprint, before.addresses, before.not_before],
    );
    const replacedFingerprints = replaced.rows.map((r) => r.fingerprint).sort();
    await recordCertificateAudit(client, {
      fingerprint,
      addresses: before.addresses,
      event: 'certificate.reinstated',
      actor: change.operator,
      at: change.at,
      reason: change.reason,
      detail: {
        wasWithdrawn: before.withdrawn_at !== null,
        ...(before.withdrawn_at ? { withdrawnBy: before.withdrawn_by, withdrawnAt: before.withdrawn_at } : {}),
        wasReplacedBy: before.replaced_by,
        replaced: replacedFingerprints,
      },
    });
    return {
      ok: true,
      certificate: toCertificate(reinstated.rows[0] as CertificateRow),
      replaced: replacedFingerprints,
    };
  });
}
