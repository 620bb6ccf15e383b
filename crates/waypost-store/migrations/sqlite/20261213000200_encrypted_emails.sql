-- Members' email addresses are personal data: stored encrypted (AAD binds
-- table, column and row id) and found by a blind index of the normalised
-- address, like contacts' phone numbers. A migration cannot encrypt, so the
-- plaintext moves to `legacy_email` and the server seals it at startup (then
-- sets `legacy_email` to NULL) before it serves; new rows never use it.
-- Uniqueness moves to the blind index. SQLite cannot drop NOT NULL, so the
-- tables are rebuilt (migrations run with foreign keys off, so dropping the
-- old tables cascades nowhere), with PostgreSQL's column order for backups.
CREATE TABLE users_new (
    id                 TEXT PRIMARY KEY NOT NULL,
    legacy_email       TEXT UNIQUE,
    password_hash      TEXT NOT NULL,
    failed_logins      INTEGER NOT NULL DEFAULT 0,
    lockouts           INTEGER NOT NULL DEFAULT 0,
    locked_until       TEXT,
    totp_secret        BLOB,
    totp_enabled       INTEGER NOT NULL DEFAULT 0,
    totp_last_step     INTEGER,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    deletion_due_at    TEXT,
    email_verified_at  TEXT,
    last_sign_in_at    TEXT,
    email_index        BLOB UNIQUE,
    email              BLOB,
    CHECK ((email_index IS NULL) = (email IS NULL)),
    CHECK (email IS NOT NULL OR legacy_email IS NOT NULL)
) STRICT;
INSERT INTO users_new (id, legacy_email, password_hash, failed_logins, lockouts, locked_until,
    totp_secret, totp_enabled, totp_last_step, created_at, updated_at, deletion_due_at,
    email_verified_at, last_sign_in_at)
SELECT id, email, password_hash, failed_logins, lockouts, locked_until,
    totp_secret, totp_enabled, totp_last_step, created_at, updated_at, deletion_due_at,
    email_verified_at, last_sign_in_at
FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_deletion_due ON users (deletion_due_at) WHERE deletion_due_at IS NOT NULL;

CREATE TABLE invitations_new (
    id            TEXT PRIMARY KEY NOT NULL,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    legacy_email  TEXT,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'agent', 'analyst')),
    token_hash    BLOB NOT NULL UNIQUE,
    invited_by    TEXT,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    accepted_at   TEXT,
    revoked_at    TEXT,
    email         BLOB,
    CHECK (email IS NOT NULL OR legacy_email IS NOT NULL)
) STRICT;
INSERT INTO invitations_new (id, workspace_id, legacy_email, role, token_hash, invited_by,
    created_at, expires_at, accepted_at, revoked_at)
SELECT id, workspace_id, email, role, token_hash, invited_by, created_at, expires_at,
    accepted_at, revoked_at
FROM invitations;
DROP TABLE invitations;
ALTER TABLE invitations_new RENAME TO invitations;
CREATE INDEX invitations_workspace ON invitations (workspace_id, created_at);

CREATE TABLE email_tokens_new (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose       TEXT NOT NULL CHECK (purpose IN ('verify', 'change', 'undo')),
    legacy_email  TEXT,
    token_hash    BLOB NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    used_at       TEXT,
    email_index   BLOB,
    email         BLOB,
    CHECK ((email_index IS NULL) = (email IS NULL)),
    CHECK (email IS NOT NULL OR legacy_email IS NOT NULL)
) STRICT;
INSERT INTO email_tokens_new (id, user_id, purpose, legacy_email, token_hash, created_at,
    expires_at, used_at)
SELECT id, user_id, purpose, email, token_hash, created_at, expires_at, used_at
FROM email_tokens;
DROP TABLE email_tokens;
ALTER TABLE email_tokens_new RENAME TO email_tokens;
CREATE INDEX email_tokens_user ON email_tokens (user_id);
