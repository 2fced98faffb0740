-- The reaper's sent-copy-reservations sweep finds portal submissions (whose Sent copy reserved quota) from these few
-- events instead of a scan of message_events every round (@smgw/trace sent-copy-reservations.ts).
create index message_events_portal_submitted_idx on message_events (at, message_id)
  where event = 'message.submitted' and stage = 'portal';
