-- The register of data-subject requests. The subject is recorded as a keyed
-- hash of the phone number, never the number, so an erased person stays erased
-- while a repeat request can still be recognised.

CREATE TABLE privacy_requests (
    id            TEXT PRIMARY KEY NOT NULL,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('export', 'rectify', 'restrict', 'unrestrict', 'erase')),
    subject_hash  TEXT NOT NULL,
    actor_type    TEXT NOT NULL,
    actor_id      TEXT,
    outcome       TEXT NOT NULL CHECK (outcome IN ('completed', 'not_found')),
    details       TEXT NOT NULL,
    created_at    TEXT NOT NULL
) STRICT;
CREATE INDEX privacy_requests_workspace ON privacy_requests (workspace_id, created_at);
