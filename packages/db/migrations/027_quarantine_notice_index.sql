-- Scan caps the notices about infected inbound mail per notice address and hour (inboundNoticeClientsSince of
-- @smgw/quarantine): it reads the last hour's inbound entries that hold a notice. Without an index that read visited
-- every inbound entry of the hour, withheld ones included, so a stranger's flood of infected mail made each new entry
-- cost a scan of all before it. The entries that hold a notice are few by the caps themselves.
create index quarantine_inbound_notices_idx on quarantine (quarantined_at)
  where direction = 'inbound' and notice_envelope is not null;
