-- Foundation schema: workspaces, data keys, audit events, idempotency records.
-- Ciphertexts are BYTEA written by waypost-crypto.

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE data_keys (
    version      INTEGER PRIMARY KEY CHECK (version > 0),
    wrapped_key  BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

-- No foreign key to workspaces: the audit trail outlives what it describes.
CREATE TABLE audit_events (
    id            TEXT PRIMARY KEY,
    chain         TEXT NOT NULL,
    seq           BIGINT NOT NULL CHECK (seq > 0),
    workspace_id  TEXT,
    actor_type    TEXT NOT NULL,
    actor_id      TEXT,
    action        TEXT NOT NULL,
    target_type   TEXT,
    target_id     TEXT,
    ip            TEXT,
    user_agent    TEXT,
    occurred_at   TIMESTAMPTZ NOT NULL,
    details       TEXT NOT NULL,
    prev_hash     BYTEA NOT NULL,
    hash          BYTEA NOT NULL,
    UNIQUE (chain, seq)
);
CREATE INDEX audit_events_workspace_time ON audit_events (workspace_id, occurred_at);

-- Write-once: nothing in the application edits an audit event.
CREATE FUNCTION audit_events_write_once() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are write-once';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_write_once BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_write_once();

CREATE TABLE idempotency_records (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    idempotency_key  TEXT NOT NULL,
    request_hash     BYTEA NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
    response_status  INTEGER,
    response_body    BYTEA,
    locked_until     TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, idempotency_key)
);
CREATE INDEX idempotency_records_expiry ON idempotency_records (expires_at);

-- Where background re-encryption stands for each (target key version, column).
CREATE TABLE reencryption_progress (
    target_version  INTEGER NOT NULL,
    column_name     TEXT NOT NULL,
    last_id         TEXT,
    finished_at     TIMESTAMPTZ,
    PRIMARY KEY (target_version, column_name)
);
