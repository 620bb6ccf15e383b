-- WebAuthn passkeys and the short-lived state of WebAuthn ceremonies.
-- The credential (id, public key, counter, flags) and the ceremony state are
-- encrypted with the key ring; an assertion finds its passkey by a keyed hash
-- of the credential id, so no credential id is stored in the clear.

CREATE TABLE passkeys (
    id             TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    credential_id_hash  BLOB NOT NULL UNIQUE,
    credential     BLOB NOT NULL,
    created_at     TEXT NOT NULL,
    last_used_at   TEXT
) STRICT;
CREATE INDEX passkeys_user ON passkeys (user_id, created_at);

CREATE TABLE webauthn_challenges (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('register', 'authenticate', 'login')),
    state       BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
) STRICT;
CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_at);
