-- Identity: users, memberships, sessions, API keys, MFA, first-run setup.
-- Secrets are stored only as hashes (passwords: Argon2id PHC; tokens and
-- codes: SHA-256 or keyed HMAC) or encrypted (TOTP secrets).

CREATE TABLE users (
    id              TEXT PRIMARY KEY NOT NULL,
    email           TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    lockouts        INTEGER NOT NULL DEFAULT 0,
    locked_until    TEXT,
    totp_secret     BLOB,
    totp_enabled    INTEGER NOT NULL DEFAULT 0,
    totp_last_step  INTEGER,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;

CREATE TABLE memberships (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'agent', 'analyst')),
    created_at    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
) STRICT;
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY NOT NULL,
    token_hash          BLOB NOT NULL UNIQUE,
    user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at          TEXT NOT NULL,
    last_seen_at        TEXT NOT NULL,
    reauthenticated_at  TEXT NOT NULL,
    ip                  TEXT,
    user_agent          TEXT,
    revoked_at          TEXT
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY NOT NULL,
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    display_prefix  TEXT NOT NULL,
    key_hash        BLOB NOT NULL UNIQUE,
    scopes          TEXT NOT NULL,
    allowed_ips     TEXT NOT NULL,
    expires_at      TEXT,
    created_by      TEXT,
    created_at      TEXT NOT NULL,
    last_used_at    TEXT,
    last_used_ip    TEXT,
    revoked_at      TEXT
) STRICT;
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, created_at);

CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BLOB NOT NULL,
    used_at    TEXT,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

CREATE TABLE setup_tokens (
    token_hash  BLOB PRIMARY KEY NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
) STRICT;
