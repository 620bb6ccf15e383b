-- Signed checkpoints of audit chains: the head of a chain signed with the
-- server's Ed25519 key, so removing events after a checkpoint is detectable.

CREATE TABLE audit_checkpoints (
    id          TEXT PRIMARY KEY,
    chain       TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    hash        BYTEA NOT NULL,
    signed_at   TIMESTAMPTZ NOT NULL,
    public_key  BYTEA NOT NULL,
    signature   BYTEA NOT NULL,
    UNIQUE (chain, seq)
);
