-- Outgoing mail and password resets. A mail row holds its recipient, subject
-- and bodies sealed (envelope-encrypted) until it is sent or given up, then the
-- sealed content is blanked; only the kind, a masked recipient and the
-- delivery record stay, until the purge.

CREATE TABLE mail_outbox (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    recipient_hint   TEXT NOT NULL,
    sealed           BYTEA,
    created_at       TIMESTAMPTZ NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    lease_until      TIMESTAMPTZ,
    last_error       TEXT,
    sent_at          TIMESTAMPTZ,
    failed_at        TIMESTAMPTZ
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;

-- One-time password reset links: only the SHA-256 of the token is kept.
CREATE TABLE password_resets (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX password_resets_user ON password_resets (user_id);
