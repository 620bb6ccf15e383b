-- Retention: where each purged audit chain's kept part begins (signed, so
-- cutting the head of a chain stays verifiable), and the indexes the purges
-- walk in time order.

CREATE TABLE audit_chain_starts (
    chain       TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL CHECK (seq > 1),
    prev_hash   BYTEA NOT NULL,
    signed_at   TIMESTAMPTZ NOT NULL,
    public_key  BYTEA NOT NULL,
    signature   BYTEA NOT NULL
);

CREATE INDEX messages_created ON messages (created_at);
CREATE INDEX unmatched_statuses_received ON unmatched_statuses (received_at);
CREATE INDEX customer_events_created ON customer_events (created_at);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);
CREATE INDEX audit_events_chain_time ON audit_events (chain, occurred_at);
