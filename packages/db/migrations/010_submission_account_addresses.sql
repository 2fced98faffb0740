-- Issue 8, finding 5: a submission account owns addresses. sender_addresses lists the addresses (local@domain, local
-- part lower-cased, domain as an A-label) the account may use as envelope sender and in From/Sender; sender_domains
-- stays, now as a separate, explicit grant of every address in those domains. Accounts created before keep their
-- domain grant (it was given explicitly); new accounts may have addresses only.
alter table submission_accounts
  add column sender_addresses text[] not null default '{}';
comment on column submission_accounts.sender_domains is
  'Domain grant: every address in these domains (*.x wildcards) may be used by this account; may be empty.';
comment on column submission_accounts.sender_addresses is
  'The addresses this account may use as envelope sender and in From/Sender (normalised local@domain).';
