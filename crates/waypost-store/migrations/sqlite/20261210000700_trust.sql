-- Trust and safety: suspensions, per-minute signal counters, detector
-- baselines and security alerts.

-- An active suspension (lifted_at IS NULL) stops its target: an API key, a
-- channel (its outbox is held, not dropped), a user or a whole workspace.
-- Changes bump the cache generation, so every node stops the target within a poll.
CREATE TABLE suspensions (
    id            TEXT PRIMARY KEY NOT NULL,
    workspace_id  TEXT REFERENCES workspaces (id) ON DELETE CASCADE,
    target_kind   TEXT NOT NULL CHECK (target_kind IN ('api_key', 'channel', 'user', 'workspace')),
    target_id     TEXT NOT NULL,
    reason        TEXT NOT NULL,
    source        TEXT NOT NULL CHECK (source IN ('operator', 'automatic')),
    alert_id      TEXT,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    lifted_at     TEXT,
    lifted_by     TEXT
) STRICT;
CREATE UNIQUE INDEX suspensions_active ON suspensions (target_kind, target_id) WHERE lifted_at IS NULL;
CREATE INDEX suspensions_workspace ON suspensions (workspace_id, created_at);
CREATE TRIGGER suspensions_cache_insert AFTER INSERT ON suspensions
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER suspensions_cache_delete AFTER DELETE ON suspensions
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER suspensions_cache_update AFTER UPDATE ON suspensions
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;

-- Whether a high-severity finding may suspend the workspace's key or channel by itself.
ALTER TABLE workspaces ADD COLUMN auto_suspend INTEGER NOT NULL DEFAULT 0;

-- Counts per minute (unix minutes) per scope: workspace, channel, api_key,
-- user or network (a /24 or /48). Written in batches; purged after 30 days.
CREATE TABLE signal_counters (
    scope_kind    TEXT NOT NULL,
    scope_id      TEXT NOT NULL,
    signal        TEXT NOT NULL,
    minute        INTEGER NOT NULL,
    workspace_id  TEXT,
    count         INTEGER NOT NULL,
    PRIMARY KEY (scope_kind, scope_id, signal, minute)
) STRICT;
CREATE INDEX signal_counters_minute ON signal_counters (minute);

-- One EWMA per detector and scope.
CREATE TABLE detector_baselines (
    detector    TEXT NOT NULL,
    scope_kind  TEXT NOT NULL,
    scope_id    TEXT NOT NULL,
    mean        REAL NOT NULL,
    minute      INTEGER NOT NULL,
    samples     INTEGER NOT NULL,
    PRIMARY KEY (detector, scope_kind, scope_id)
) STRICT;

-- The last minute the detectors evaluated; advanced by compare-and-set.
-- Operational state (the leading underscore keeps it out of backups).
CREATE TABLE _detector_cursor (
    id       INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    minute   INTEGER NOT NULL,
    -- The last minute whose evaluation finished (for monitoring and tests).
    done     INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO _detector_cursor (id, minute) VALUES (1, 0);

-- Findings: counts as evidence, never content.
CREATE TABLE security_alerts (
    id               TEXT PRIMARY KEY NOT NULL,
    workspace_id     TEXT REFERENCES workspaces (id) ON DELETE CASCADE,
    detector         TEXT NOT NULL,
    severity         TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    entity_kind      TEXT NOT NULL,
    entity_id        TEXT NOT NULL,
    minute           INTEGER NOT NULL,
    evidence         TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    acknowledged_at  TEXT,
    acknowledged_by  TEXT,
    UNIQUE (detector, entity_kind, entity_id, minute)
) STRICT;
CREATE INDEX security_alerts_workspace ON security_alerts (workspace_id, created_at);
