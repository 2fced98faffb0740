-- The lifecycle reaper deletes the records of retired KEKs that protect nothing any more (retired-keks sweep,
-- @smgw/blob-store pruneRetiredKeks): migration 022 kept them for ever, one row a KEK period, though one is read only
-- by a master key rotation running while its KEK is retired. It goes once the KEK's file is gone and no rotation runs.
grant delete on table retired_keks to smgw_lifecycle_reaper;
