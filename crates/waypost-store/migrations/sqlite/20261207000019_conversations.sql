-- Conversations: a contact on a channel, kept current by the inbound webhook and
-- by acceptance in the same transactions as the messages. `status` is open,
-- pending or closed; a new inbound message reopens a closed one. `version`
-- makes state changes compare-and-set.
CREATE TABLE conversations (
    id                  TEXT PRIMARY KEY,
    workspace_id        TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    channel_id          TEXT NOT NULL,
    contact_id          TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status              TEXT NOT NULL CHECK (status IN ('open', 'pending', 'closed')),
    -- The member (user id) it is assigned to.
    assignee_id         TEXT,
    last_message_at     TEXT NOT NULL,
    last_direction      TEXT NOT NULL,
    -- The customer's last message: the 24-hour window and the read receipt's target.
    last_inbound_at     TEXT,
    last_inbound_wamid  TEXT,
    unread_count        INTEGER NOT NULL DEFAULT 0,
    version             INTEGER NOT NULL DEFAULT 1,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (channel_id, contact_id)
) STRICT;
CREATE INDEX conversations_recent ON conversations (workspace_id, last_message_at, id);
CREATE INDEX conversations_contact ON conversations (contact_id);

CREATE TABLE conversation_labels (
    conversation_id  TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    label            TEXT NOT NULL,
    PRIMARY KEY (conversation_id, label)
) STRICT;
CREATE INDEX conversation_labels_label ON conversation_labels (label, conversation_id);

-- Internal notes: never sent to the customer; the body is encrypted under the
-- contact's content key (AAD conversation_notes, body, id) and expires with the
-- workspace's content retention.
CREATE TABLE conversation_notes (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    conversation_id  TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    contact_id       TEXT NOT NULL,
    author_id        TEXT,
    body             BLOB NOT NULL,
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL
) STRICT;
CREATE INDEX conversation_notes_conversation ON conversation_notes (conversation_id, created_at);
CREATE INDEX conversation_notes_expiry ON conversation_notes (expires_at);

-- Whether agents see every conversation (`all`) or only those assigned to them.
ALTER TABLE workspaces ADD COLUMN conversation_visibility TEXT NOT NULL DEFAULT 'all';
