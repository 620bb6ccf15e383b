-- Media: files uploaded for sending and files customers sent. The provider
-- keeps the bytes (uploads 30 days, inbound 7); Waypost keeps a copy only
-- under `days:N` content retention, encrypted, until `blob_expires_at`:
-- outbound under its own key (`blob_key`, wrapped by the key ring), inbound
-- under the contact's content key, so erasure shreds it with the contact.
CREATE TABLE media (
    id                   TEXT PRIMARY KEY NOT NULL,
    workspace_id         TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    channel_id           TEXT NOT NULL REFERENCES channels (id),
    contact_id           TEXT REFERENCES contacts (id) ON DELETE CASCADE,
    message_id           TEXT REFERENCES messages (id) ON DELETE SET NULL,
    direction            TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    media_type           TEXT NOT NULL CHECK (media_type IN ('image', 'audio', 'video', 'document', 'sticker')),
    provider_media_id    TEXT NOT NULL,
    mime_type            TEXT NOT NULL,
    size                 INTEGER,
    -- Hex SHA-256 of the bytes, as the provider reported it.
    sha256               TEXT,
    -- Encrypted by the key ring: a customer's file name can be personal.
    filename             BLOB,
    blob                 BLOB,
    blob_key             BLOB,
    blob_expires_at      TEXT,
    provider_expires_at  TEXT NOT NULL,
    created_at           TEXT NOT NULL
) STRICT;
CREATE INDEX media_workspace ON media (workspace_id, id);
CREATE INDEX media_contact ON media (contact_id, id) WHERE contact_id IS NOT NULL;
CREATE INDEX media_message ON media (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX media_blob_expiry ON media (blob_expires_at) WHERE blob IS NOT NULL;
CREATE INDEX media_provider_expiry ON media (provider_expires_at) WHERE blob IS NULL;
