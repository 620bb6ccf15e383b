-- Workspace MFA requirement, just-in-time role elevation, invitations.

ALTER TABLE workspaces ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE;

ALTER TABLE memberships ADD COLUMN elevated_role TEXT
    CHECK (elevated_role IN ('owner', 'admin', 'developer', 'agent', 'analyst'));
ALTER TABLE memberships ADD COLUMN elevated_until TIMESTAMPTZ;
ALTER TABLE memberships ADD COLUMN elevated_by TEXT;
CREATE INDEX memberships_elevated_until ON memberships (elevated_until) WHERE elevated_until IS NOT NULL;

CREATE TABLE invitations (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'agent', 'analyst')),
    token_hash    BYTEA NOT NULL UNIQUE,
    invited_by    TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    accepted_at   TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX invitations_workspace ON invitations (workspace_id, created_at);
