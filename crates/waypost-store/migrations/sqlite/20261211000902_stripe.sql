-- Stripe: the webhook events already applied (deduplicated by event id, in
-- the transaction of the change they make), and the outbox of usage reports
-- (one row per workspace, day and counter; its id is the idempotency key
-- sent to Stripe, so a report retried after a crash is counted once).
CREATE TABLE stripe_events (
    id            TEXT PRIMARY KEY NOT NULL,
    event_type    TEXT NOT NULL,
    workspace_id  TEXT REFERENCES workspaces (id) ON DELETE CASCADE,
    received_at   TEXT NOT NULL
) STRICT;
CREATE INDEX stripe_events_received ON stripe_events (received_at);

CREATE TABLE stripe_usage_reports (
    id               TEXT PRIMARY KEY NOT NULL,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    customer_id      TEXT NOT NULL,
    day              TEXT NOT NULL,
    metric           TEXT NOT NULL,
    quantity         INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    reported_at      TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL
) STRICT;
CREATE INDEX stripe_usage_reports_due ON stripe_usage_reports (next_attempt_at) WHERE reported_at IS NULL;
