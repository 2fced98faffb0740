-- The KEKs retired for good (@smgw/blob-store retireUnusedKeks): a KEK is recorded here before its file is deleted,
-- so a master key rotation that re-sealed the file while it was being retired finds the record after its rename and
-- deletes its copy again (rotateMasterKey), rather than bring back what the retirement made unreadable. Ids only (a
-- period's start and a random suffix), never a key; one row a KEK period, kept.
create table retired_keks (
  id          text primary key,
  retired_at  timestamptz not null default now()
);
