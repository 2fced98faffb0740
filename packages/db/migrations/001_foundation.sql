-- Foundation: blob store, messages with per-recipient state, audit trail, delivery records.

-- Claim check: message bytes live here, chunked; the envelope carries blobs.sha256 as its reference.
create table blobs (
  id          uuid primary key,
  sha256      text unique,                 -- null while the blob is being written
  size        bigint not null default 0,
  state       text not null default 'writing' check (state in ('writing', 'committed')),
  created_at  timestamptz not null default now(),
  committed_at timestamptz
);
create index blobs_writing_idx on blobs (created_at) where state = 'writing';

create table blob_chunks (
  blob_id  uuid not null references blobs (id) on delete cascade,
  seq      integer not null,
  data     bytea not null,
  primary key (blob_id, seq)
);

-- One row per accepted message (gateway message id = ULID).
create table messages (
  id           text primary key,
  trace_id     text not null,
  direction    text not null,
  mail_from    text not null,
  blob_sha256  text not null,
  size         bigint not null,
  client_ip    text,
  client_helo  text,
  client_user  text,
  client_tls   boolean not null default false,
  received_at  timestamptz not null,
  relates_to   text
);
create index messages_received_at_idx on messages (received_at);

-- Per-recipient state: pending, delivered, in_mailbox, deferred, bounced, quarantined.
create table message_recipients (
  message_id  text not null references messages (id) on delete cascade,
  recipient   text not null,
  state       text not null default 'pending'
              check (state in ('pending', 'delivered', 'in_mailbox', 'deferred', 'bounced', 'quarantined')),
  updated_at  timestamptz not null default now(),
  detail      text,
  primary key (message_id, recipient)
);

-- Audit trail: every stage outcome with time and reason (what GET /messages/{id} shows).
create table message_events (
  id          bigserial primary key,
  message_id  text not null references messages (id) on delete cascade,
  recipient   text,                        -- null: the event is about the whole message
  stage       text not null,               -- ingest, scan, encrypt, verify, deliver, mailbox, admin, ...
  event       text not null,               -- entity.action in the past tense: message.received, recipient.delivered, ...
  outcome     text not null,               -- next, retry, reject, done, ...
  code        text,                        -- stable SCREAMING_SNAKE code (docs/LOG-CODES.md)
  reason      text,
  at          timestamptz not null default now(),
  data        jsonb
);
create index message_events_message_idx on message_events (message_id, id);

-- Idempotency of deliver: (message, recipient) is recorded before deliver reports success and never sent twice.
create table deliveries (
  message_id     text not null references messages (id) on delete cascade,
  recipient      text not null,
  state          text not null check (state in ('sending', 'delivered', 'deferred', 'bounced')),
  attempts       integer not null default 0,
  destination    text,
  last_response  text,
  updated_at     timestamptz not null default now(),
  primary key (message_id, recipient)
);
