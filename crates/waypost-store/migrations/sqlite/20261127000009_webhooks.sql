-- Customer webhooks: endpoints (secrets encrypted by the server), one delivery
-- row per (event, endpoint) created by the fan-out, and every attempt made.

CREATE TABLE webhook_endpoints (
    id                       TEXT PRIMARY KEY,
    workspace_id             TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    url                      TEXT NOT NULL,
    description              TEXT NOT NULL DEFAULT '',
    -- Space-separated event type names; empty means every type.
    event_types              TEXT NOT NULL DEFAULT '',
    enabled                  INTEGER NOT NULL,
    -- `whsec_…`, encrypted with AAD (webhook_endpoints, secret, id).
    secret                   BLOB NOT NULL,
    -- The secret before the last rotation, still signing until `previous_secret_expires_at`;
    -- encrypted with AAD (webhook_endpoints, previous_secret, id).
    previous_secret          BLOB,
    previous_secret_expires_at TEXT,
    -- Start of the current run of failed attempts; NULL after any success.
    first_failure_at         TEXT,
    disabled_reason          TEXT,
    last_replay_at           TEXT,
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL
) STRICT;
CREATE INDEX webhook_endpoints_workspace ON webhook_endpoints (workspace_id, enabled);

CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL REFERENCES customer_events (id) ON DELETE CASCADE,
    event_seq        INTEGER NOT NULL,
    -- Deliveries with the same key go to their endpoint in event order (the
    -- event's subject, or one key per replay); NULL: no ordering.
    ordering_key     TEXT,
    -- pending | succeeded | exhausted
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    -- A worker's lease while it attempts the delivery.
    locked_until     TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, event_seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, ordering_key, event_seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

CREATE TABLE webhook_attempts (
    id               TEXT PRIMARY KEY,
    delivery_id      INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL,
    attempted_at     TEXT NOT NULL,
    status_code      INTEGER,
    latency_ms       INTEGER NOT NULL,
    -- The first bytes of the response body (lossy UTF-8).
    response_excerpt TEXT,
    -- NULL on success; else http_status | timeout | connect | tls | dns | ssrf_blocked | other.
    error_class      TEXT,
    succeeded        INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);
CREATE INDEX webhook_attempts_time ON webhook_attempts (attempted_at);
