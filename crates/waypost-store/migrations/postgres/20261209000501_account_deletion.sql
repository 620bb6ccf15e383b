-- An account holder's own deletion request: the account is deleted when the
-- grace period ends, unless cancelled first.
ALTER TABLE users ADD COLUMN deletion_due_at TIMESTAMPTZ;
CREATE INDEX users_deletion_due ON users (deletion_due_at) WHERE deletion_due_at IS NOT NULL;
