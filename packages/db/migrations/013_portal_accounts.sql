-- The Messenger portal's accounts and the mailbox lifecycle (issues 9 and 11). Owners: @smgw/mailbox-store for the
-- mailbox tables, @smgw/key-directory for agency registrations and the portal flag of agency addresses.

-- A password set at activation (argon2id, as submission passwords); null while passive. `locked` is an operator's.
alter table mailboxes
  add column password_hash       text,
  add column password_changed_at timestamptz,
  add column state_changed_at    timestamptz,
  add column state_changed_by    text;

-- What the folder list shows (sender, subject, date, attachment count), sealed under the mailbox's data key like the
-- content (aad: mailbox id, row id, "summary"), so listing a folder does not decrypt every whole message. Rows stored
-- before this migration have none: the list reads their content once.
alter table mailbox_messages
  add column summary      bytea,
  add column trashed_from text check (trashed_from in ('inbox', 'sent'));

-- Tokens are also made by self-registration and re-activation, where no message arrived: then no message and trace.
alter table mailbox_tokens
  add column purpose text not null default 'arrival' check (purpose in ('arrival', 'registration', 'reactivation')),
  alter column message_id drop not null,
  alter column trace_id drop not null;

-- Inactivity warnings (issue 11): one row per mailbox, kind and inactivity period. The period starts at the last
-- login (or activation, or creation): a login starts a new period, so earlier warnings no longer count and deletion
-- is cancelled; the primary key makes a second warning of the same kind in one period impossible.
create table mailbox_inactivity_warnings (
  mailbox_id      text not null references mailboxes (id) on delete cascade,
  kind            text not null check (kind in ('first', 'second')),
  period_start    timestamptz not null,
  sent_at         timestamptz not null,
  deletion_due_at timestamptz not null,
  primary key (mailbox_id, kind, period_start)
);

-- What happened to mailboxes, kept after the mailbox is gone (no foreign key): activation, login lock-outs, operator
-- actions, warnings, deletion. No message content, no secrets.
create table mailbox_audit (
  id          bigserial primary key,
  mailbox_id  text not null,
  address     text not null,
  event       text not null,          -- e.g. mailbox.activated, mailbox.locked, mailbox.warned, mailbox.deleted
  actor       text not null,          -- 'portal', 'reaper', 'admin:<who>', 'mailbox-stage'
  at          timestamptz not null default now(),
  detail      jsonb not null default '{}'
);
create index mailbox_audit_mailbox_idx on mailbox_audit (mailbox_id, at);
create index mailbox_audit_address_idx on mailbox_audit (address, at);

-- Agency addresses a portal user may write to without replying (an operator marks them).
alter table agency_addresses add column portal_reachable boolean not null default false;

-- Agency registrations from the portal's form, waiting for an operator: accepted into agencies, or rejected.
create table agency_registrations (
  id             text primary key,    -- random UUID
  agency_name    text not null check (length(agency_name) between 1 and 200),
  contact_name   text not null check (length(contact_name) between 1 and 200),
  contact_email  text not null check (length(contact_email) between 3 and 320),
  contact_phone  text check (length(contact_phone) <= 50),
  domains        text[] not null check (cardinality(domains) between 1 and 20),
  note           text check (length(note) <= 2000),
  state          text not null default 'pending' check (state in ('pending', 'accepted', 'rejected')),
  created_at     timestamptz not null default now(),
  decided_at     timestamptz,
  decided_by     text,
  decision_note  text,
  agency_id      text references agencies (id) on delete set null
);
create index agency_registrations_state_idx on agency_registrations (state, created_at);

-- A portal user's own key (bring your own key): a certificate accepted from the portal, a PGP key pending approval.
alter table certificates drop constraint certificates_source_check;
alter table certificates add constraint certificates_source_check check (source in ('admin', 'harvested', 'portal'));
alter table pgp_keys drop constraint pgp_keys_source_check;
alter table pgp_keys add constraint pgp_keys_source_check check (source in ('imported', 'harvested', 'portal'));
