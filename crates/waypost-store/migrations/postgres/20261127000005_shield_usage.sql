-- Shield usage: one row per scanned message, metadata only (who, when, the verdict's label
-- and score, input sizes in characters). The scanned text, URL and phone number are never
-- stored. Rows older than `shield_usage_retention_days` (default 90) are purged.

CREATE TABLE shield_scans (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    actor_type    TEXT NOT NULL,
    actor_id      TEXT,
    label         TEXT NOT NULL CHECK (label IN ('ham', 'spam', 'smishing')),
    score         DOUBLE PRECISION NOT NULL,
    text_len      BIGINT NOT NULL,
    url_len       BIGINT NOT NULL,
    phone_len     BIGINT NOT NULL,
    batch         BOOLEAN NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX shield_scans_workspace ON shield_scans (workspace_id, created_at);
CREATE INDEX shield_scans_created ON shield_scans (created_at);
