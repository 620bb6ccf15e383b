-- Email verification and change: one-time links (only the token's SHA-256 is
-- kept) to verify an address, confirm a change to a new one, or undo a change
-- from the old one.
ALTER TABLE users ADD COLUMN email_verified_at TEXT;

CREATE TABLE email_tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL CHECK (purpose IN ('verify', 'change', 'undo')),
    email       TEXT NOT NULL,
    token_hash  BLOB NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
) STRICT;
CREATE INDEX email_tokens_user ON email_tokens (user_id);
