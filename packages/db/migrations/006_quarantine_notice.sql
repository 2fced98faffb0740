-- The notice scan made for a quarantined message (the envelope it published, with itinerary ['deliver']).
-- Kept with the quarantine entry so a redelivered envelope publishes the same notice again instead of a new one.
alter table quarantine add column notice_envelope jsonb;
