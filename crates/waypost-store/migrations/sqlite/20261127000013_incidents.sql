-- Platform operators and the security incident register.
--
-- Operator tokens belong to no workspace: they authenticate the server's own
-- administrators on /v1/operator routes. Stored as a keyed hash only.
CREATE TABLE operator_tokens (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    display_prefix  TEXT NOT NULL,
    token_hash      BLOB NOT NULL UNIQUE,
    created_at      TEXT NOT NULL,
    last_used_at    TEXT,
    revoked_at      TEXT
) STRICT;

-- One security incident. `deadline_at` is when affected customers and
-- authorities must have been notified (detected_at + 72 h), fixed at creation.
-- `description` and `resolution` are operator free text, encrypted.
-- `version` makes updates compare-and-set.
CREATE TABLE incidents (
    id           TEXT PRIMARY KEY NOT NULL,
    severity     TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status       TEXT NOT NULL CHECK (status IN ('open', 'investigating', 'contained', 'closed')),
    description  BLOB NOT NULL,
    resolution   BLOB,
    detected_at  TEXT NOT NULL,
    deadline_at  TEXT NOT NULL,
    notified_at  TEXT,
    closed_at    TEXT,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL
) STRICT;
CREATE INDEX incidents_status ON incidents (status, id);

CREATE TABLE incident_workspaces (
    incident_id   TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    PRIMARY KEY (incident_id, workspace_id)
) STRICT;
CREATE INDEX incident_workspaces_workspace ON incident_workspaces (workspace_id, incident_id);
