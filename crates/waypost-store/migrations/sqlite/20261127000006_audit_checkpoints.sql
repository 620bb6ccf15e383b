-- Signed checkpoints of audit chains: the head of a chain signed with the
-- server's Ed25519 key, so removing events after a checkpoint is detectable.

CREATE TABLE audit_checkpoints (
    id          TEXT PRIMARY KEY NOT NULL,
    chain       TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    signed_at   TEXT NOT NULL,
    public_key  BLOB NOT NULL,
    signature   BLOB NOT NULL,
    UNIQUE (chain, seq)
) STRICT;
