-- Accounts that may submit mail with SMTP AUTH (after STARTTLS) on the submission listener.
-- password_hash: argon2id in PHC string form ($argon2id$v=19$m=...,t=...,p=...$salt$hash), random salt per account.
-- sender_domains: the MAIL FROM domains this account may use (each must also be an agency domain; *.x wildcards).
create table submission_accounts (
  username        text primary key,
  password_hash   text not null,
  sender_domains  text[] not null,
  created_at      timestamptz not null default now(),
  disabled        boolean not null default false
);
