-- Workspace deletion: scheduled by an owner, purged by a worker after the grace
-- period. `deletion_started_at` marks that keys are destroyed and rows are being
-- removed (a purge resumes after a restart).
ALTER TABLE workspaces ADD COLUMN deletion_due_at TIMESTAMPTZ;
ALTER TABLE workspaces ADD COLUMN deletion_started_at TIMESTAMPTZ;
CREATE INDEX workspaces_deletion_due ON workspaces (deletion_due_at) WHERE deletion_due_at IS NOT NULL;

-- For the access review: sessions are purged, the last sign-in is not.
ALTER TABLE users ADD COLUMN last_sign_in_at TIMESTAMPTZ;
UPDATE users SET last_sign_in_at = (SELECT max(created_at) FROM sessions s WHERE s.user_id = users.id);

-- Owners and admins need a second factor unless the workspace relaxes it.
ALTER TABLE workspaces ADD COLUMN require_mfa_for_admins BOOLEAN NOT NULL DEFAULT TRUE;
