-- Services keep what the key directory rarely changes in memory: who verifies signatures (ingest), the trust
-- anchors and which agencies sign (encrypt), so a message does not pay a round trip for each. A change to these
-- tables is announced on the channel smgw_key_directory when it commits (one notice per statement); a listener
-- that hears it, or lost its connection, reads them again (@smgw/db listenForChanges, @smgw/key-directory).
create function key_directory_changed() returns trigger language plpgsql as $$
begin
  perform pg_notify('smgw_key_directory', tg_table_name);
  return null;
end
$$;

create trigger agency_addresses_notice after insert or update or delete or truncate on agency_addresses
  for each statement execute function key_directory_changed();
create trigger agency_domains_notice after insert or update or delete or truncate on agency_domains
  for each statement execute function key_directory_changed();
create trigger agencies_notice after insert or update or delete or truncate on agencies
  for each statement execute function key_directory_changed();
create trigger trust_anchors_notice after insert or update or delete or truncate on trust_anchors
  for each statement execute function key_directory_changed();
