-- Foundation schema: workspaces, data keys, audit events, idempotency records.
-- Times are RFC 3339 text in UTC; ciphertexts are BLOBs written by waypost-crypto.

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE data_keys (
    version      INTEGER PRIMARY KEY NOT NULL CHECK (version > 0),
    wrapped_key  BLOB NOT NULL,
    created_at   TEXT NOT NULL
) STRICT;

-- No foreign key to workspaces: the audit trail outlives what it describes.
CREATE TABLE audit_events (
    id            TEXT PRIMARY KEY NOT NULL,
    chain         TEXT NOT NULL,
    seq           INTEGER NOT NULL CHECK (seq > 0),
    workspace_id  TEXT,
    actor_type    TEXT NOT NULL,
    actor_id      TEXT,
    action        TEXT NOT NULL,
    target_type   TEXT,
    target_id     TEXT,
    ip            TEXT,
    user_agent    TEXT,
    occurred_at   TEXT NOT NULL,
    details       TEXT NOT NULL,
    prev_hash     BLOB NOT NULL,
    hash          BLOB NOT NULL,
    UNIQUE (chain, seq)
) STRICT;
CREATE INDEX audit_events_workspace_time ON audit_events (workspace_id, occurred_at);

-- Write-once: nothing in the application edits an audit event.
CREATE TRIGGER audit_events_write_once BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are write-once');
END;

CREATE TABLE idempotency_records (
    id               TEXT PRIMARY KEY NOT NULL,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    idempotency_key  TEXT NOT NULL,
    request_hash     BLOB NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
    response_status  INTEGER,
    response_body    BLOB,
    locked_until     TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL,
    UNIQUE (workspace_id, idempotency_key)
) STRICT;
CREATE INDEX idempotency_records_expiry ON idempotency_records (expires_at);

-- Where background re-encryption stands for each (target key version, column).
CREATE TABLE reencryption_progress (
    target_version  INTEGER NOT NULL,
    column_name     TEXT NOT NULL,
    last_id         TEXT,
    finished_at     TEXT,
    PRIMARY KEY (target_version, column_name)
) STRICT;
