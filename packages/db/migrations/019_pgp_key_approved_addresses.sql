-- An OpenPGP key is approved for the addresses an operator named (approved_addresses), not for every address it holds:
-- approved once for whoever offered it, a key whose user IDs also named someone else was used for that person too, and
-- the newest approved key of an address won over an older one. Keys approved before keep all their addresses.
alter table pgp_keys add column approved_addresses text[] not null default '{}';
update pgp_keys set approved_addresses = addresses where state = 'approved';
alter table pgp_keys add constraint pgp_keys_approved_addresses_check
  check (approved_addresses <@ addresses and (state = 'approved' or approved_addresses = '{}'));
