-- deliver: who is sending a (message, recipient) now. The owner is the PostgreSQL session that the sending process
-- keeps open for its whole life: when the process dies (even by kill -9) the session ends, so a redelivered
-- envelope can take over at once instead of waiting for a lease to run out.
alter table deliveries add column owner_pid integer, add column owner_started timestamptz;
