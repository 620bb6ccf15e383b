-- Outgoing mail and password resets. A mail row holds its recipient, subject
-- and bodies sealed (envelope-encrypted) until it is sent or given up, then the
-- sealed content is blanked; only the kind, a masked recipient and the
-- delivery record stay, until the purge.

CREATE TABLE mail_outbox (
    id               TEXT PRIMARY KEY NOT NULL,
    kind             TEXT NOT NULL,
    recipient_hint   TEXT NOT NULL,
    sealed           BLOB,
    created_at       TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    lease_until      TEXT,
    last_error       TEXT,
    sent_at          TEXT,
    failed_at        TEXT
) STRICT;
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;

-- One-time password reset links: only the SHA-256 of the token is kept.
CREATE TABLE password_resets (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  BLOB NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
) STRICT;
CREATE INDEX password_resets_user ON password_resets (user_id);
