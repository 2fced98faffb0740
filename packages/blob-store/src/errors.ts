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

/** A committed blob's chunks do not add up to its recorded size or SHA-256: missing or damaged rows. */
export class BlobCorruptError extends Error {
  readonly code = 'BLOB_CORRUPT';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BlobCorruptError';
  }
}
