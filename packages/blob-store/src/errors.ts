// Typed errors of the blob store. Each carries a stable code (docs/LOG-CODES.md) so callers can map it to an answer:
// ingest turns BLOB_TOO_LARGE into 552 and every other code into 451.

/** The source was longer than `maxBytes`; nothing of it is kept. */
export class BlobTooLargeError extends Error {
  readonly code = 'BLOB_TOO_LARGE';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BlobTooLargeError';
  }
}

/** No committed blob has this reference (never written, still being written, or purged). */
export class BlobNotFoundError extends Error {
  readonly code = 'BLOB_NOT_FOUND';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BlobNotFoundError';
  }
}

/** The source stream failed (e.g. the SMTP client went away mid-DATA) or yielded something that is not bytes. */
export class BlobSourceError extends Error {
  readonly code = 'BLOB_SOURCE_FAILED';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BlobSourceError';
  }
}

/** PostgreSQL failed while writing or reading a blob; temporary, a retry can help. The pg error is the `cause`. */
export class BlobStorageError extends Error {
  readonly code = 'BLOB_STORAGE_FAILED';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BlobStorageError';
  }
}

/**
 * A committed blob does not read back as written: a chunk does not authenticate (changed, swapped, from another
 * blob), one is missing, or the final chunk is (truncated).
 */
export class BlobCorruptError extends Error {
  readonly code = 'BLOB_CORRUPT';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BlobCorruptError';
  }
}

/**
 * The key a blob needs is not available: its key-encryption key was retired (the blob is deleted for good) or the
 * key store cannot be read. Codes: BLOB_KEY_RETIRED (no such KEK), KEY_STORE_FAILED (the folder cannot be read or
 * written), KEY_STORE_SEALED (a KEK file does not open under SMGW_MASTER_KEY nor SMGW_MASTER_KEY_PREVIOUS).
 */
export class BlobKeyError extends Error {
  readonly code: 'BLOB_KEY_RETIRED' | 'KEY_STORE_FAILED' | 'KEY_STORE_SEALED';
  constructor(code: BlobKeyError['code'], message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BlobKeyError';
    this.code = code;
  }
}
