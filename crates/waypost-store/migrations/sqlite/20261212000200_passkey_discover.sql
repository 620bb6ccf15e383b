-- Passwordless sign-in with a discoverable passkey (no email first) is a
-- ceremony of its own kind. SQLite cannot widen a CHECK in place; ceremony
-- state lives five minutes, so the table is rebuilt empty.

DROP TABLE webauthn_challenges;
CREATE TABLE webauthn_challenges (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('register', 'authenticate', 'login', 'discover')),
    state       BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
) STRICT;
CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_at);
