-- Ingest (and scan) keep the agency addresses enabled for signature verification in memory, so a message does not
-- pay a round trip to find out where it goes after scan. A change to agency_addresses is announced on the channel
-- smgw_agency_addresses when it commits (one notice per statement); a listener that hears it, or lost its
-- connection, reads them again (@smgw/db listenForChanges, @smgw/key-directory).
create function agency_addresses_changed() returns trigger language plpgsql as $$
begin
  perform pg_notify('smgw_agency_addresses', '');
  return null;
end
$$;

create trigger agency_addresses_notice
  after insert or update or delete or truncate on agency_addresses
  for each statement execute function agency_addresses_changed();
