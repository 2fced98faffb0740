-- Per agency: sign outbound mail with the sender address's own key before it is encrypted (issue 4). Off by default;
-- who switched it last and when is kept beside it (X-SMGW-Operator on POST /agencies/{id}/signing).
alter table agencies
  add column sign_outbound             boolean not null default false,
  add column sign_outbound_changed_by  text,
  add column sign_outbound_changed_at  timestamptz;
