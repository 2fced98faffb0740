-- deliver: a claim's owner is the process instance (a random id per start), alive while its heartbeat here is
-- fresh. A session-bound owner (004) was lost whenever the session was (a PostgreSQL restart), and a claim made
-- while it reconnected had no owner at all, so only its 20-minute lease freed it.
create table deliver_instances (
  id            text primary key,
  heartbeat_at  timestamptz not null default now()
);
alter table deliveries add column owner_instance text;

-- The reaper: parked envelopes (an `envelope.parked` event with nothing after it) and messages refused at ingest
-- (`message.refused`) are found from these few events instead of a scan of message_events.
create index message_events_parked_idx on message_events (message_id, id) where event = 'envelope.parked';
create index message_events_refused_idx on message_events (at, message_id) where event = 'message.refused';
