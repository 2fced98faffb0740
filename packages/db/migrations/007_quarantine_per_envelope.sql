-- One quarantine entry per envelope, not per message: ingest splits a message with agency and outside recipients
-- into two envelopes (same message id and blob, different direction); each must be releasable on its own.
alter table quarantine drop constraint quarantine_message_id_blob_sha256_key;
alter table quarantine add constraint quarantine_message_blob_direction_key unique (message_id, blob_sha256, direction);
