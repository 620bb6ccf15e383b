-- Contacts identified by a business-scoped user id (BSUID) and/or a phone
-- number: both encrypted, each found by its blind index; the parent BSUID and
-- the username kept (encrypted) when known. SQLite cannot drop NOT NULL, so
-- the table is rebuilt (the store runs migrations with foreign keys off, so
-- dropping the old table does not cascade to messages and consents). Messages
-- gain the pricing their status webhooks report.
CREATE TABLE contacts_new (
    id                  TEXT PRIMARY KEY NOT NULL,
    workspace_id        TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    phone_index         BLOB,
    phone               BLOB,
    name                BLOB,
    attributes          BLOB,
    content_key         BLOB,
    consent_marketing   TEXT CHECK (consent_marketing IN ('opted_in', 'opted_out')),
    consent_utility     TEXT CHECK (consent_utility IN ('opted_in', 'opted_out')),
    consent_authentication TEXT CHECK (consent_authentication IN ('opted_in', 'opted_out')),
    restricted          INTEGER NOT NULL DEFAULT 0,
    last_inbound_at     TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    user_id_index       BLOB,
    user_id             BLOB,
    parent_user_id_index BLOB,
    parent_user_id      BLOB,
    username            BLOB,
    UNIQUE (workspace_id, phone_index),
    UNIQUE (workspace_id, user_id_index),
    CHECK ((phone_index IS NULL) = (phone IS NULL)),
    CHECK ((user_id_index IS NULL) = (user_id IS NULL)),
    CHECK (phone_index IS NOT NULL OR user_id_index IS NOT NULL OR parent_user_id_index IS NOT NULL)
) STRICT;
INSERT INTO contacts_new (id, workspace_id, phone_index, phone, name, attributes, content_key,
    consent_marketing, consent_utility, consent_authentication, restricted, last_inbound_at,
    created_at, updated_at)
SELECT id, workspace_id, phone_index, phone, name, attributes, content_key,
    consent_marketing, consent_utility, consent_authentication, restricted, last_inbound_at,
    created_at, updated_at
FROM contacts;
DROP TABLE contacts;
ALTER TABLE contacts_new RENAME TO contacts;
CREATE INDEX contacts_workspace ON contacts (workspace_id, id);
CREATE INDEX contacts_parent_user_id ON contacts (workspace_id, parent_user_id_index)
    WHERE parent_user_id_index IS NOT NULL;

ALTER TABLE messages ADD COLUMN pricing_model TEXT;
ALTER TABLE messages ADD COLUMN pricing_type TEXT;
ALTER TABLE messages ADD COLUMN pricing_category TEXT;
ALTER TABLE messages ADD COLUMN billable INTEGER;
