-- Workspace MFA requirement, just-in-time role elevation, invitations.

ALTER TABLE workspaces ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;

ALTER TABLE memberships ADD COLUMN elevated_role TEXT;
ALTER TABLE memberships ADD COLUMN elevated_until TEXT;
ALTER TABLE memberships ADD COLUMN elevated_by TEXT;
CREATE INDEX memberships_elevated_until ON memberships (elevated_until) WHERE elevated_until IS NOT NULL;

CREATE TABLE invitations (
    id            TEXT PRIMARY KEY NOT NULL,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'agent', 'analyst')),
    token_hash    BLOB NOT NULL UNIQUE,
    invited_by    TEXT,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    accepted_at   TEXT,
    revoked_at    TEXT
) STRICT;
CREATE INDEX invitations_workspace ON invitations (workspace_id, created_at);
