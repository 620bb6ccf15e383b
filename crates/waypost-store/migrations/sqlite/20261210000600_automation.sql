-- Automation (issue #20): rules per channel, the work queue the inbound webhook
-- fills in its own transaction, the assistant's settings and knowledge base.

-- Welcome, away and keyword rules; the highest priority that matches answers.
CREATE TABLE automation_rules (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    channel_id    TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('welcome', 'away', 'keyword')),
    name          TEXT NOT NULL,
    priority      INTEGER NOT NULL DEFAULT 0,
    -- keyword rules: the words or the regular expression.
    pattern       TEXT,
    is_regex      INTEGER NOT NULL DEFAULT 0,
    -- away rules: weekly hours, time zone, holidays (JSON).
    schedule      TEXT,
    -- reply / tag / assign / hand to the assistant (JSON).
    actions       TEXT NOT NULL,
    enabled       INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;
CREATE INDEX automation_rules_channel ON automation_rules (channel_id, priority);

-- One row per inbound message still to handle: the text sealed under the
-- contact's content key (AAD automation_work, sealed, id), deleted once handled.
CREATE TABLE automation_work (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    channel_id       TEXT NOT NULL,
    contact_id       TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    message_id       TEXT NOT NULL,
    sealed           BLOB,
    first_contact    INTEGER NOT NULL,
    -- When the customer wrote (the provider's timestamp): the 24-hour window.
    sent_at          TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    lease_until      TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX automation_work_due ON automation_work (created_at);

-- Per conversation: the last automated reply (cooldown), assistant turns, and
-- whether the assistant handed the conversation to a person.
ALTER TABLE conversations ADD COLUMN automation_replied_at TEXT;
ALTER TABLE conversations ADD COLUMN assistant_turns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN assistant_paused INTEGER NOT NULL DEFAULT 0;

-- The workspace's assistant: off by default; the provider key sealed like
-- channel tokens (AAD assistant_settings, api_key, workspace id).
CREATE TABLE assistant_settings (
    workspace_id          TEXT PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    enabled               INTEGER NOT NULL DEFAULT 0,
    base_url              TEXT NOT NULL,
    model                 TEXT NOT NULL,
    api_key               BLOB,
    token_field           TEXT NOT NULL DEFAULT 'max_tokens',
    max_reply_tokens      INTEGER NOT NULL DEFAULT 400,
    monthly_token_budget  INTEGER NOT NULL,
    turn_cap              INTEGER NOT NULL,
    timeout_ms            INTEGER NOT NULL,
    max_retries           INTEGER NOT NULL,
    fallback_message      TEXT NOT NULL,
    handoff_assignee      TEXT,
    channels              TEXT NOT NULL DEFAULT '[]',
    usage_month           TEXT NOT NULL DEFAULT '',
    tokens_used           INTEGER NOT NULL DEFAULT 0,
    updated_at            TEXT NOT NULL
) STRICT;

-- The knowledge base: FAQ entries and uploaded documents, in chunks searched
-- through an FTS5 index kept by triggers (backups copy the chunks; restoring
-- them rebuilds the index).
CREATE TABLE knowledge_documents (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('faq', 'document')),
    title         TEXT NOT NULL,
    chunks        INTEGER NOT NULL,
    created_at    TEXT NOT NULL
) STRICT;
CREATE INDEX knowledge_documents_workspace ON knowledge_documents (workspace_id, created_at);

CREATE TABLE knowledge_chunks (
    document_id   TEXT NOT NULL REFERENCES knowledge_documents (id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    body          TEXT NOT NULL,
    PRIMARY KEY (document_id, seq)
) STRICT;
CREATE INDEX knowledge_chunks_workspace ON knowledge_chunks (workspace_id);

CREATE VIRTUAL TABLE knowledge_fts USING fts5 (
    body,
    content = 'knowledge_chunks',
    content_rowid = 'rowid',
    tokenize = 'porter unicode61'
);
CREATE TRIGGER knowledge_chunks_indexed AFTER INSERT ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (rowid, body) VALUES (new.rowid, new.body);
END;
CREATE TRIGGER knowledge_chunks_unindexed AFTER DELETE ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (knowledge_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
END;
