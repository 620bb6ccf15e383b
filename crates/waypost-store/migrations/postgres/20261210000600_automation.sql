-- Automation (issue #20): rules per channel, the work queue the inbound webhook
-- fills in its own transaction, the assistant's settings and knowledge base.

-- Welcome, away and keyword rules; the highest priority that matches answers.
CREATE TABLE automation_rules (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    channel_id    TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('welcome', 'away', 'keyword')),
    name          TEXT NOT NULL,
    priority      BIGINT NOT NULL DEFAULT 0,
    -- keyword rules: the words or the regular expression.
    pattern       TEXT,
    is_regex      BOOLEAN NOT NULL DEFAULT FALSE,
    -- away rules: weekly hours, time zone, holidays (JSON).
    schedule      TEXT,
    -- reply / tag / assign / hand to the assistant (JSON).
    actions       TEXT NOT NULL,
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX automation_rules_channel ON automation_rules (channel_id, priority);

-- One row per inbound message still to handle: the text sealed under the
-- contact's content key (AAD automation_work, sealed, id), deleted once handled.
CREATE TABLE automation_work (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    channel_id       TEXT NOT NULL,
    contact_id       TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    message_id       TEXT NOT NULL,
    sealed           BYTEA,
    first_contact    BOOLEAN NOT NULL,
    -- When the customer wrote (the provider's timestamp): the 24-hour window.
    sent_at          TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    lease_until      TIMESTAMPTZ,
    attempts         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX automation_work_due ON automation_work (created_at);

-- Per conversation: the last automated reply (cooldown), assistant turns, and
-- whether the assistant handed the conversation to a person.
ALTER TABLE conversations ADD COLUMN automation_replied_at TIMESTAMPTZ;
ALTER TABLE conversations ADD COLUMN assistant_turns BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN assistant_paused BOOLEAN NOT NULL DEFAULT FALSE;

-- The workspace's assistant: off by default; the provider key sealed like
-- channel tokens (AAD assistant_settings, api_key, workspace id).
CREATE TABLE assistant_settings (
    workspace_id          TEXT PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    enabled               BOOLEAN NOT NULL DEFAULT FALSE,
    base_url              TEXT NOT NULL,
    model                 TEXT NOT NULL,
    api_key               BYTEA,
    token_field           TEXT NOT NULL DEFAULT 'max_tokens',
    max_reply_tokens      BIGINT NOT NULL DEFAULT 400,
    monthly_token_budget  BIGINT NOT NULL,
    turn_cap              BIGINT NOT NULL,
    timeout_ms            BIGINT NOT NULL,
    max_retries           BIGINT NOT NULL,
    fallback_message      TEXT NOT NULL,
    handoff_assignee      TEXT,
    channels              TEXT NOT NULL DEFAULT '[]',
    usage_month           TEXT NOT NULL DEFAULT '',
    tokens_used           BIGINT NOT NULL DEFAULT 0,
    updated_at            TIMESTAMPTZ NOT NULL
);

-- The knowledge base: FAQ entries and uploaded documents, in chunks searched
-- through a tsvector expression index (no stored tsvector column: backups
-- copy plain rows).
CREATE TABLE knowledge_documents (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('faq', 'document')),
    title         TEXT NOT NULL,
    chunks        BIGINT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX knowledge_documents_workspace ON knowledge_documents (workspace_id, created_at);

CREATE TABLE knowledge_chunks (
    document_id   TEXT NOT NULL REFERENCES knowledge_documents (id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    body          TEXT NOT NULL,
    PRIMARY KEY (document_id, seq)
);
CREATE INDEX knowledge_chunks_tsv ON knowledge_chunks USING GIN (to_tsvector('english', body));
CREATE INDEX knowledge_chunks_workspace ON knowledge_chunks (workspace_id);
