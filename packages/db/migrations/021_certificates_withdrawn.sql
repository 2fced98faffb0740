-- An operator takes a recipient certificate out of use (@smgw/key-directory withdrawCertificate): its holder lost the
-- private key, it was harvested by mistake, or it wrongly replaced the holder's encryption certificate. The row stays,
-- marked: a withdrawn certificate is current for no address, takes no part in the replacement rule (it neither
-- replaces nor is replaced), and the same certificate arriving again (signed mail, the portal) refreshes only its
-- validation, so only an operator brings it back (reinstateCertificate). A certificate is current while replaced_by
-- and withdrawn_at are both null.
alter table certificates
  add column withdrawn_at       timestamptz,
  add column withdrawn_by       text,
  add column withdrawal_reason  text,
  add constraint certificates_withdrawn_check
    check ((withdrawn_at is null) = (withdrawn_by is null) and (withdrawn_at is null) = (withdrawal_reason is null));

drop index certificates_current_addresses_idx;
create index certificates_current_addresses_idx on certificates using gin (addresses)
  where replaced_by is null and withdrawn_at is null;

-- Who withdrew or reinstated a certificate, when and why: appended, never changed, kept after the certificate is gone
-- (no foreign key: a portal certificate goes with its mailbox). The row above holds only the latest withdrawal.
create table certificate_audit (
  id           bigserial primary key,
  fingerprint  text not null,
  addresses    text[] not null,
  event        text not null check (event in ('certificate.withdrawn', 'certificate.reinstated')),
  actor        text not null,         -- the X-SMGW-Operator of the admin API call
  at           timestamptz not null,
  reason       text not null,
  detail       jsonb not null default '{}'
);
create index certificate_audit_fingerprint_idx on certificate_audit (fingerprint, at);
