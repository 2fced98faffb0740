// Key-encryption keys (KEKs) of message blobs. Each blob's data key is wrapped under the KEK of the period the blob
// was written in; the KEKs themselves live outside the database, behind this interface. Retiring a KEK (once every
// blob it protects is purged) leaves what it protected unreadable, also in a database dump taken earlier.
//
// The folder implementation (folder-key-store.ts) is the one we ship; a Kubernetes Secret or a Vault (transit or KV)
// implementation can stand in for it later: all the blob store needs is these four operations.

/** A 32-byte AES-256 key-encryption key and its id (the id is stored beside every data key it wraps). */
export interface KeyEncryptionKey {
  id: string;
  key: Buffer;
}

export interface KeyEncryptionKeyInfo {
  id: string;
  /** Start of the period whose new blobs this KEK protects. */
  periodStart: Date;
}

export interface KeyStore {
  /** The KEK for blobs written at `now`: the one of the current period, made the first time it is asked for. */
  current(now?: Date): Promise<KeyEncryptionKey>;
  /** The KEK with this id, or undefined if there is none (never made, or retired). */
  get(id: string): Promise<KeyEncryptionKey | undefined>;
  /** Every KEK held, oldest period first. */
  list(): Promise<KeyEncryptionKeyInfo[]>;
  /**
   * Deletes the KEK for good: every data key wrapped under it becomes unreadable. Idempotent. Called through
   * retireUnusedKeks, which records the retirement first, so that a master key rotation does not bring it back.
   */
  retire(id: string): Promise<void>;
}

const KEK_ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-[0-9a-f]{8}$/;

/** The start of the period `now` falls in (periods are counted from the Unix epoch, in UTC). */
export function periodStartOf(now: Date, periodMs: number): Date {
  return new Date(Math.floor(now.getTime() / periodMs) * periodMs);
}

/** A KEK id: its period's start (so an operator sees what it covers) and a random suffix. */
export function kekIdFor(periodStart: Date, suffix: string): string {
  return `${periodStart
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z')}-${suffix}`;
}

/** The period start written into a KEK id, or undefined if `id` is not a KEK id (never a path). */
export function periodStartOfKekId(id: string): Date | undefined {
  const m = KEK_ID.exec(id);
  if (!m) return undefined;
  const [, year, month, day, hour, minute, second] = m;
  return new Date(`${year}-${month}-${day}T${hour}:${minute}:${second}Z`);
}
