-- Quarantine: messages the scan stage stopped (infected, or suspicious by policy). The blob is kept until
-- expires_at (the reaper purges it later); an operator may release one, and it continues its itinerary.
create table quarantine (
  id              text primary key,                 -- ULID
  message_id      text not null references messages (id) on delete cascade,
  blob_sha256     text not null,
  direction       text not null,
  verdict         text not null check (verdict in ('infected', 'suspicious')),
  finding         text not null,                    -- clamd's signature name or the policy reason
  detail          text,
  envelope        jsonb not null,                   -- the envelope as it reached scan; release continues from it
  quarantined_at  timestamptz not null default now(),
  expires_at      timestamptz not null,
  released_at     timestamptz,
  released_by     text,
  release_reason  text,
  unique (message_id, blob_sha256)
);
create index quarantine_open_idx on quarantine (quarantined_at) where released_at is null;
create index quarantine_expires_idx on quarantine (expires_at);
