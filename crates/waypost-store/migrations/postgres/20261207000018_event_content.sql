-- The content of an inbound message while its event is in transit: encrypted
-- under the contact's content key (AAD customer_events, content, id) and set
-- to NULL once every endpoint has the event (or gave up) and the stream's
-- reconnect hold has passed.
ALTER TABLE customer_events ADD COLUMN content BYTEA;
ALTER TABLE customer_events ADD COLUMN content_contact_id TEXT;
CREATE INDEX customer_events_held_content ON customer_events (seq) WHERE content IS NOT NULL;
