-- Blobs encrypted at rest (issue 8, finding 10). Each blob has its own data key, kept here only wrapped under a
-- key-encryption key (KEK) of the key store, which is outside the database; chunks are AES-256-GCM ciphertext. A
-- blob is addressed by its random id; `digest` is a keyed digest of the content (the envelope's opaque `sha256`),
-- never a plain hash: equal content is no longer stored once, and a dump confirms no guessed letter.
--
-- Upgrade with drained queues: the blobs written before this migration are plaintext and cannot be encrypted here
-- (the keys are not in the database), so they are deleted, and the plain SHA-256 values that named them are blanked.
delete from blobs;
update messages set blob_sha256 = '';
update quarantine set blob_sha256 = id;

alter table blobs drop constraint blobs_sha256_key;
alter table blobs rename column sha256 to digest;
alter table blobs
  add column message_id  text not null,   -- the message the blob belongs to: retention and garbage collection
  add column kek_id      text not null,   -- the KEK its data key is wrapped under (a file of the key store)
  add column wrapped_key bytea not null;  -- iv | data key encrypted under the KEK | tag
create index blobs_message_idx on blobs (message_id);
create index blobs_kek_idx on blobs (kek_id);
create index blobs_committed_idx on blobs (committed_at) where state = 'committed';

-- The chunk that ends the blob; bound into its authentication, so a blob cut short does not read.
alter table blob_chunks add column final boolean not null default false;

-- The reference of the message's own blob (blob_sha256 now holds the keyed digest of the envelope).
alter table messages add column blob_ref text;

-- Quarantine entries keep their blob: garbage collection looks them up by the reference in the envelope.
create index quarantine_blob_ref_idx on quarantine ((envelope -> 'blob' ->> 'ref'));
