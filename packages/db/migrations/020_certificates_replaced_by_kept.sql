-- A certificate a portal user uploaded goes with their mailbox (@smgw/key-directory deletePortalKeys). One that had
-- replaced an older certificate (harvested, or an operator's) leaves that one replaced: its holder renewed, and a
-- certificate whose key they may no longer hold must not quietly encrypt their mail again. So replaced_by may name a
-- certificate that is gone (its fingerprint is in the mailbox's audit `mailbox.deleted`) and is no longer a foreign
-- key; a certificate is current while replaced_by is null, as before.
alter table certificates drop constraint certificates_replaced_by_fkey;
