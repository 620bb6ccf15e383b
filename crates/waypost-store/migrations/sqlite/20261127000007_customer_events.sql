-- Customer events: what happened to a workspace's messages, contacts and templates.
-- Written in the same transaction as the change they describe; the webhook
-- deliverer fans each one out to the workspace's endpoints and marks it.
-- `payload` is the event's `data` object, encrypted (it may carry retained content).

CREATE TABLE customer_events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    workspace_id   TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    event_type     TEXT NOT NULL,
    -- The message, contact or template the event is about: the ordering key of deliveries.
    subject_id     TEXT,
    payload        BLOB NOT NULL,
    created_at     TEXT NOT NULL,
    fanned_out_at  TEXT
) STRICT;
CREATE INDEX customer_events_workspace ON customer_events (workspace_id, created_at);
CREATE INDEX customer_events_pending ON customer_events (seq) WHERE fanned_out_at IS NULL;
CREATE INDEX customer_events_subject ON customer_events (subject_id, seq);
