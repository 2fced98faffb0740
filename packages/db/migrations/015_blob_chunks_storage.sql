-- Blob chunks are AES-256-GCM ciphertext (packages/blob-store/src/blob-cipher.ts): random bytes no compressor
-- shrinks. With the default storage (extended), PostgreSQL tries to compress every value above ~2 KB (pglz; it gives
-- up on such bytes only after scanning their first kilobyte, into a buffer the size of the value) before it moves it
-- out of line uncompressed: work on every chunk written, for nothing. External storage moves such values out of line
-- (TOAST) without the attempt. Only the column's setting changes, no table rewrite; rows stored before keep their
-- storage and read as before.
alter table blob_chunks alter column data set storage external;
