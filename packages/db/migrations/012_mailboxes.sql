-- The Messenger portal (issue 9): a mailbox per key-less recipient outside the agencies. Each mailbox has its own
-- data key, kept here only sealed under SMGW_MASTER_KEY (aad: the mailbox id); its messages are AES-256-GCM
-- ciphertext under that key, in this table rather than the shared blob store, so deleting the mailbox row (and with
-- it the key) leaves nothing readable anywhere (crypto-shredding). One owner of these tables: @smgw/mailbox-store.
create table mailboxes (
  id              text primary key,                 -- random UUID
  address         text not null,                    -- lower-cased; one mailbox per address (a deleted one is gone)
  state           text not null default 'passive' check (state in ('passive', 'active', 'locked')),
  created_at      timestamptz not null default now(),
  last_login_at   timestamptz,
  activated_at    timestamptz,
  data_key_sealed bytea not null,                   -- sealSecret(master key, data key, aad = mailbox id)
  usage_bytes     bigint not null default 0 check (usage_bytes >= 0)  -- raw sizes over all folders (the quota)
);
create unique index mailboxes_address_idx on mailboxes (address);

create table mailbox_messages (
  id          text primary key,                     -- random UUID; part of the content's aad
  mailbox_id  text not null references mailboxes (id) on delete cascade,
  folder      text not null default 'inbox' check (folder in ('inbox', 'sent', 'trash')),
  message_id  text not null,                        -- the gateway's message id (the trace)
  recipient   text not null,                        -- the envelope recipient it arrived for
  size        bigint not null,                      -- raw message bytes, counted against the quota
  received_at timestamptz not null default now(),
  read_at     timestamptz,
  content     bytea not null,                       -- iv(12) | tag(16) | AES-256-GCM ciphertext; aad = mailbox id, row id
  unique (mailbox_id, message_id, recipient)
);
create index mailbox_messages_folder_idx on mailbox_messages (mailbox_id, folder, received_at desc);

-- One-time activation link + PIN. The link token is looked up by its SHA-256 (a 32-byte random token needs no
-- slow hash); the PIN is kept as an argon2id hash. Until activation both are also sealed under the mailbox's data
-- key (`secrets_sealed`), so later arrivals and the delayed PIN mail can resend the same link and PIN without
-- keeping them in clear; activation or revocation clears it.
create table mailbox_tokens (
  id               text primary key,                -- random UUID
  mailbox_id       text not null references mailboxes (id) on delete cascade,
  link_hash        bytea not null unique,
  pin_hash         text not null,
  secrets_sealed   bytea,
  created_at       timestamptz not null default now(),
  expires_at       timestamptz not null,
  used_at          timestamptz,
  revoked_at       timestamptz,
  attempts         integer not null default 0,
  pin_mail_due_at  timestamptz not null,            -- the recipient's PIN mail goes out after SMGW_PIN_DELAY
  pin_mail_sent_at timestamptz,
  message_id       text not null,                   -- the message whose arrival made the token (the PIN mail's trace)
  trace_id         text not null
);
-- At most one live token per mailbox: concurrent arrivals share it.
create unique index mailbox_tokens_live_idx on mailbox_tokens (mailbox_id) where used_at is null and revoked_at is null;
create index mailbox_tokens_pin_due_idx on mailbox_tokens (pin_mail_due_at) where pin_mail_sent_at is null;

-- What the mailbox stage did with each recipient of each message, and the mails it made about it: a redelivered
-- envelope republishes these instead of storing or notifying twice.
create table mailbox_arrivals (
  message_id  text not null,
  recipient   text not null,
  outcome     text not null check (outcome in ('stored', 'over_quota')),
  mailbox_id  text references mailboxes (id) on delete set null,
  notices     jsonb not null default '[]',          -- envelopes of the generated mails (notification, PIN notice, DSN)
  arrived_at  timestamptz not null default now(),
  primary key (message_id, recipient)
);
