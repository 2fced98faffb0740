// The agencies' own keys (agency_keys, migration 008): certificate or public key, and the private key sealed with the
// master key, bound to its address and fingerprint. Unsealing is the caller's; nothing here sees a private key in clear.
import { X509Certificate } from 'node:crypto';
import type { Pool } from '@smgw/db';
import { newMessageId } from '@smgw/envelope';
import { isSealedUnder, resealSecret } from '@smgw/secrets';

export interface AgencyKey {
  id: string;
  address: string;
  kind: 'smime' | 'pgp';
  fingerprint: string;
  createdAt: string;
}

export interface NewAgencyKey {
  address: string;
  kind: 'smime' | 'pgp';
  fingerprint: string;
  certificate: Buffer | null;
  publicArmored: string | null;
  /** sealSecret(masterKey, privateKey, {aad: agencyKeyAad(address, fingerprint)}). */
  privateKeySealed: Buffer;
  now: Date;
}

/** What the sealed private key is bound to: the address and the key's fingerprint. */
export function agencyKeyAad(address: string, fingerprint: string): string {
  return `${address.toLowerCase()}|${fingerprint}`;
}

/** Stores an agency key; the same key for the same address again is left as it is (`created: false`). */
export async function addAgencyKey(pool: Pool, key: NewAgencyKey): Promise<{ key: AgencyKey; created: boolean }> {
  const { rows } = await pool.query<{ id: string; created_at: Date }>(
    `insert into agency_keys (id, address, kind, fingerprint, certificate, public_armored, private_key_sealed, created_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (address, fingerprint) do nothing returning id, created_at`,
    [
      newMessageId(key.now.getTime()),
      key.address.toLowerCase(),
      key.kind,
      key.fingerprint,
      key.certificate,
      key.publicArmored,
      key.privateKeySealed,
      key.now,
    ],
  );
  const created = rows[0] !== undefined;
  const row =
    rows[0] ??
    (
      await pool.query<{ id: string; created_at: Date }>(
        'select id, created_at from agency_keys where address = $1 and fingerprint = $2',
        [key.address.toLowerCase(), key.fingerprint],
      )
    ).rows[0];
  if (!row) throw new Error('agency key vanished while it was stored');
  return {
    key: {
      id: row.id,
      address: key.address.toLowerCase(),
      kind: key.kind,
      fingerprint: key.fingerprint,
      createdAt: row.created_at.toISOString(),
    },
    created,
  };
}

export interface SealedAgencyKey {
  address: string;
  kind: 'smime' | 'pgp';
  fingerprint: string;
  certificate: Buffer | null;
  sealedPrivateKey: Buffer;
}

/** The agencies' own private keys (sealed) for any of the addresses, of one kind. */
export async function sealedAgencyKeys(
  pool: Pool,
  addresses: readonly string[],
  kind: 'smime' | 'pgp',
): Promise<SealedAgencyKey[]> {
  const { rows } = await pool.query<SealedAgencyKey>(
    `select address, kind, fingerprint, certificate, private_key_sealed as "sealedPrivateKey" from agency_keys
      where address = any($1::text[]) and kind = $2
      order by address, created_at desc`,
    [addresses.map((a) => a.toLowerCase()), kind],
  );
  return rows;
}

/**
 * Master key rotation: every agency private key sealed under `from` is sealed again under `to` (the same aad), one
 * row at a time under its lock; keys already under `to` are left. Safe to run again after an interruption.
 */
export async function resealAgencyKeys(
  pool: Pool,
  keys: { from: Uint8Array; to: Uint8Array },
): Promise<{ resealed: number; alreadyCurrent: number }> {
  const { rows } = await pool.query<{ id: string }>('select id from agency_keys order by id');
  let resealed = 0;
  let alreadyCurrent = 0;
  for (const { id } of rows) {
    const client = await pool.connect();
    try {
      await client.query('begin');
      const row = (
        await client.query<{ address: string; fingerprint: string; private_key_sealed: Buffer }>(
          'select address, fingerprint, private_key_sealed from agency_keys where id = $1 for update',
          [id],
        )
      ).rows[0];
      if (row && !isSealedUnder(keys.to, row.private_key_sealed)) {
        const aad = agencyKeyAad(row.address, row.fingerprint);
        const again = resealSecret(keys.from, keys.to, row.private_key_sealed, { aad });
        await client.query('update agency_keys set private_key_sealed = $2 where id = $1', [id, again]);
        resealed++;
      } else if (row) alreadyCurrent++;
      await client.query('commit');
    } catch (err) {
      await client.query('rollback').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }
  return { resealed, alreadyCurrent };
}

export interface AgencyCertificateExpiry {
  address: string;
  fingerprint: string;
  notAfter: Date;
}

/** When each agency S/MIME certificate expires (the expiry gauge of the gateway's own keys); unparsable ones left out. */
export async function agencyCertificateExpiries(pool: Pool): Promise<AgencyCertificateExpiry[]> {
  const { rows } = await pool.query<{ address: string; fingerprint: string; certificate: Buffer }>(
    `select address, fingerprint, certificate from agency_keys where kind = 'smime' and certificate is not null`,
  );
  return rows.flatMap((row) => {
    try {
      const notAfter = new Date(new X509Certificate(row.certificate).validTo);
      return Number.isNaN(notAfter.getTime()) ? [] : [{ address: row.address, fingerprint: row.fingerprint, notAfter }];
    } catch {
      return [];
    }
  });
}
