-- Blob contents may live in files instead of blob_chunks (SMGW_BLOB_DIR, packages/blob-store/src/blob-files.ts):
-- the row stays here, with the wrapped data key, state, digest and size, and says where its chunks are. Rows written
-- before keep their chunks in the database and read as before; a deployment can switch either way at any time.
alter table blobs add column storage text not null default 'database' check (storage in ('database', 'files'));
