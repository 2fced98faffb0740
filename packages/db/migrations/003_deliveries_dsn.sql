-- deliver: which DSN was made for a bounced (message, recipient), so a redelivered envelope never makes a second
-- one (it publishes the recorded one again instead: the first publish may have been lost in a crash).
alter table deliveries add column dsn_message_id text;
