-- Identity: users, memberships, sessions, API keys, MFA, first-run setup.
-- Secrets are stored only as hashes (passwords: Argon2id PHC; tokens and
-- codes: SHA-256 or keyed HMAC) or encrypted (TOTP secrets).

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    failed_logins   BIGINT NOT NULL DEFAULT 0,
    lockouts        BIGINT NOT NULL DEFAULT 0,
    locked_until    TIMESTAMPTZ,
    totp_secret     BYTEA,
    totp_enabled    BOOLEAN NOT NULL DEFAULT FALSE,
    totp_last_step  BIGINT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE memberships (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'agent', 'analyst')),
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    token_hash          BYTEA NOT NULL UNIQUE,
    user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at          TIMESTAMPTZ NOT NULL,
    last_seen_at        TIMESTAMPTZ NOT NULL,
    reauthenticated_at  TIMESTAMPTZ NOT NULL,
    ip                  TEXT,
    user_agent          TEXT,
    revoked_at          TIMESTAMPTZ
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    display_prefix  TEXT NOT NULL,
    key_hash        BYTEA NOT NULL UNIQUE,
    scopes          TEXT NOT NULL,
    allowed_ips     TEXT NOT NULL,
    expires_at      TIMESTAMPTZ,
    created_by      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    last_used_at    TIMESTAMPTZ,
    last_used_ip    TEXT,
    revoked_at      TIMESTAMPTZ
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, created_at);

CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BYTEA NOT NULL,
    used_at    TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE setup_tokens (
    token_hash  BYTEA PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
