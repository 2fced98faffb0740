-- OpenPGP key approvals that may be a stranger's (upgrade from before migration 019). Until the release of 019, encrypt
-- stored a key harvested from inbound mail for every address in its valid user IDs, not for the sender alone: a
-- stranger's key whose user IDs also named a citizen's address was stored for both, and once an operator approved it
-- (thinking of the stranger), the citizen's mail was encrypted to the stranger's key. Migration 019 kept every address
-- of an approved key (approved_addresses = addresses), so an upgraded deployment still does that.
--
-- In doubt: an approved key that holds more than one address and that no operator imported.
--  - source 'imported': an operator imported it through the admin API (POST /pgp-keys), seeing all its addresses, and
--    approved it; it keeps its approval.
--  - source 'harvested': which address sent it was never stored (the row has only the key's addresses; the trace event
--    pgp-key.harvested named those too, not the sender, and traces are purged), nor which address the approving
--    operator meant (approvals are logged, not stored). So none of its addresses can be shown to be its holder's, and
--    all are in doubt. That includes addresses an operator named in approving it after 019: approved_addresses cannot
--    tell them from 019's copy (an approval adds to what is approved; approving another key for an address takes the
--    address away), nor can state_changed_at (that taking away does not change it).
--  - source 'portal': the portal has stored an upload for the mailbox's address alone since it came (taken only when
--    a valid user ID names that address), so a portal key holds one address and is not touched here; one holding more
--    is not what the portal stores, and is in doubt like a harvested one.
-- A key that holds one address keeps its approval, whatever its source: it is used for nobody else.
--
-- Failing closed, such a key loses its approval for every address and is pending again, changed by 'migration 023'
-- (GET /pgp-keys?state=pending and ./smgw pgp list show it). Its addresses get their certificate, another approved key
-- or the portal (still encrypted) until an operator approves it again naming the addresses it is for; an approval
-- that names none is refused for such a key (approvePgpKey, PGP_KEY_ADDRESSES_REQUIRED), since its default, every
-- address the key holds, is what this takes away.
update pgp_keys
   set state = 'pending', approved_addresses = '{}', state_changed_by = 'migration 023', state_changed_at = now()
 where state = 'approved' and source <> 'imported' and cardinality(addresses) > 1;
