// Trust anchors (trust_anchors, migration 008): the roots recipient certificates are validated against. Added by an
// operator through the admin API; their DER is read for every path validation.
import { type ChangeListener, type Pool, readUntilChanged } from '@smgw/db';

export interface TrustAnchor {
  fingerprint: string;
  subject: string;
  notBefore: string;
  notAfter: string;
  addedBy: string;
  addedAt: string;
}

export interface NewTrustAnchor {
  fingerprint: string;
  subject: string;
  der: Buffer;
  notBefore: Date;
  notAfter: Date;
  addedBy: string;
}

interface TrustAnchorRow {
  fingerprint: string;
  subject: string;
  not_before: Date;
  not_after: Date;
  added_by: string;
  added_at: Date;
}

const toTrustAnchor = (r: TrustAnchorRow): TrustAnchor => ({
  fingerprint: r.fingerprint,
  subject: r.subject,
  notBefore: r.not_before.toISOString(),
  notAfter: r.not_after.toISOString(),
  addedBy: r.added_by,
  addedAt: r.added_at.toISOString(),
});

const ANCHOR_COLUMNS = 'fingerprint, subject, not_before, not_after, added_by, added_at';

/** Adds a trust anchor; one already there (same fingerprint) is returned unchanged with `created: false`. */
export async function addTrustAnchor(
  pool: Pool,
  anchor: NewTrustAnchor,
): Promise<{ anchor: TrustAnchor; created: boolean }> {
  const inserted = await pool.query<TrustAnchorRow>(
    `insert into trust_anchors (fingerprint, subject, der, not_before, not_after, added_by)
     values ($1, $2, $3, $4, $5, $6) on conflict (fingerprint) do nothing returning ${ANCHOR_COLUMNS}`,
    [anchor.fingerprint, anchor.subject, anchor.der, anchor.notBefore, anchor.notAfter, anchor.addedBy],
  );
  if (inserted.rows[0]) return { anchor: toTrustAnchor(inserted.rows[0]), created: true };
  const existing = await pool.query<TrustAnchorRow>(
    `select ${ANCHOR_COLUMNS} from trust_anchors where fingerprint = $1`,
    [anchor.fingerprint],
  );
  return { anchor: toTrustAnchor(existing.rows[0] as TrustAnchorRow), created: false };
}

export async function listTrustAnchors(pool: Pool): Promise<TrustAnchor[]> {
  const { rows } = await pool.query<TrustAnchorRow>(`select ${ANCHOR_COLUMNS} from trust_anchors order by added_at`);
  return rows.map(toTrustAnchor);
}

/** DER of every trust anchor, for path validation. */
export async function trustAnchorCertificates(pool: Pool): Promise<Buffer[]> {
  const { rows } = await pool.query<{ der: Buffer }>('select der from trust_anchors order by added_at');
  return rows.map((r) => r.der);
}

/**
 * trustAnchorCertificates from memory, read once and again after each change announced on KEY_DIRECTORY_CHANNEL
 * (an anchor removed is no longer trusted once its notice arrives, milliseconds after the commit); while `changes`
 * is not listening, every call asks the database. Each caller gets its own array (the certificates are shared).
 */
export function cachedTrustAnchorCertificates(
  pool: Pool,
  changes: Pick<ChangeListener, 'listening' | 'generation'>,
): () => Promise<Buffer[]> {
  const anchors = readUntilChanged(changes, () => trustAnchorCertificates(pool));
  return async () => [...(await anchors())];
}
