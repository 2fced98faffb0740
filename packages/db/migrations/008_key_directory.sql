-- The key directory (issue 4): trusted CAs, recipient certificates and OpenPGP keys for outbound encryption,
-- agencies with their domains and addresses, and the agencies' own private keys (sealed under SMGW_MASTER_KEY by
-- @smgw/secrets) for inbound decryption. Fingerprints: SHA-256 of the DER, lower-case hex, for certificates;
-- the OpenPGP fingerprint, upper-case hex, for PGP keys. Addresses are stored lower-case.

create table trust_anchors (
  fingerprint  text primary key check (fingerprint ~ '^[0-9a-f]{64}$'),
  subject      text not null,
  der          bytea not null,
  not_before   timestamptz not null,
  not_after    timestamptz not null,
  added_by     text not null,
  added_at     timestamptz not null default now()
);

-- Recipient certificates (S/MIME). A renewed certificate for the same address replaces the older one: the older
-- row keeps its data and points at its successor (replaced_by); lookups use the rows not replaced.
create table certificates (
  fingerprint         text primary key check (fingerprint ~ '^[0-9a-f]{64}$'),
  subject             text not null,
  addresses           text[] not null check (array_to_string(addresses, ',') = lower(array_to_string(addresses, ','))),
  issuer              text not null,
  serial              text not null,
  not_before          timestamptz not null,
  not_after           timestamptz not null,
  der                 bytea not null,
  intermediates       bytea[] not null default '{}',
  smime_capabilities  jsonb,
  source              text not null check (source in ('admin', 'harvested')),
  added_at            timestamptz not null default now(),
  replaced_by         text references certificates (fingerprint),
  last_validation     jsonb
);
create index certificates_current_addresses_idx on certificates using gin (addresses) where replaced_by is null;
create index certificates_issuer_serial_idx on certificates (issuer, serial);

-- OpenPGP keys: never used for encryption before an operator approves them (state approved).
create table pgp_keys (
  fingerprint       text primary key check (fingerprint ~ '^[0-9A-F]{32,64}$'),
  armored           text not null,
  addresses         text[] not null check (array_to_string(addresses, ',') = lower(array_to_string(addresses, ','))),
  algorithm         text not null,
  expires_at        timestamptz,
  state             text not null default 'pending' check (state in ('pending', 'approved', 'rejected')),
  source            text not null check (source in ('imported', 'harvested')),
  state_changed_by  text,
  state_changed_at  timestamptz,
  created_at        timestamptz not null default now()
);
create index pgp_keys_addresses_idx on pgp_keys using gin (addresses);
create index pgp_keys_state_idx on pgp_keys (state, created_at);

create table agencies (
  id          text primary key,                 -- ULID
  name        text not null unique,
  created_at  timestamptz not null default now()
);

create table agency_domains (
  domain     text primary key check (domain = lower(domain)),
  agency_id  text not null references agencies (id) on delete cascade
);
create index agency_domains_agency_idx on agency_domains (agency_id);

create table agency_addresses (
  address            text primary key check (address = lower(address)),
  agency_id          text not null references agencies (id) on delete cascade,
  verify_signatures  boolean not null default false,
  created_at         timestamptz not null default now()
);
create index agency_addresses_agency_idx on agency_addresses (agency_id);

-- An agency address's own keys. private_key_sealed = sealSecret(masterKey, key, {aad: address + '|' + fingerprint}):
-- PKCS#8 DER for S/MIME, the armored (unlocked) private key for OpenPGP. It never leaves the gateway.
create table agency_keys (
  id                  text primary key,         -- ULID
  address             text not null references agency_addresses (address) on delete cascade,
  kind                text not null check (kind in ('smime', 'pgp')),
  fingerprint         text not null,
  certificate         bytea,
  public_armored      text,
  private_key_sealed  bytea not null,
  created_at          timestamptz not null default now(),
  unique (address, fingerprint),
  check ((kind = 'smime' and certificate is not null) or (kind = 'pgp' and public_armored is not null))
);
create index agency_keys_address_idx on agency_keys (address);
create index agency_keys_fingerprint_idx on agency_keys (fingerprint);
