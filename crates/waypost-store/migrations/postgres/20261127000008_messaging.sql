-- Messaging: channels, contacts and consent, templates, messages with their
-- status history, the outbox, statuses waiting for their message, and the
-- per-channel rate-limiter leases. Secrets, phone numbers, names and content
-- are ciphertexts written by waypost-crypto; phones are found by blind index.

ALTER TABLE workspaces ADD COLUMN content_retention TEXT NOT NULL DEFAULT 'none';
ALTER TABLE workspaces ADD COLUMN shield_policy TEXT NOT NULL DEFAULT 'flag'
    CHECK (shield_policy IN ('off', 'flag', 'block'));

CREATE TABLE channels (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    provider         TEXT NOT NULL CHECK (provider IN ('cloud', 'sandbox')),
    phone_number_id  TEXT NOT NULL,
    waba_id          TEXT NOT NULL,
    access_token     BYTEA NOT NULL,
    app_secret       BYTEA NOT NULL,
    verify_token     BYTEA NOT NULL,
    base_url         TEXT,
    api_version      TEXT,
    throughput_mps   BIGINT NOT NULL CHECK (throughput_mps > 0),
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    deleted_at       TIMESTAMPTZ
);
CREATE INDEX channels_workspace ON channels (workspace_id, id);
CREATE UNIQUE INDEX channels_number ON channels (workspace_id, phone_number_id) WHERE deleted_at IS NULL;

CREATE TABLE contacts (
    id                  TEXT PRIMARY KEY,
    workspace_id        TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    phone_index         BYTEA NOT NULL,
    phone               BYTEA NOT NULL,
    name                BYTEA,
    attributes          BYTEA,
    -- The per-contact content key, wrapped by the key ring; deleting it shreds content.
    content_key         BYTEA,
    consent_marketing   TEXT CHECK (consent_marketing IN ('opted_in', 'opted_out')),
    consent_utility     TEXT CHECK (consent_utility IN ('opted_in', 'opted_out')),
    consent_authentication TEXT CHECK (consent_authentication IN ('opted_in', 'opted_out')),
    restricted          BOOLEAN NOT NULL DEFAULT false,
    last_inbound_at     TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, phone_index)
);
CREATE INDEX contacts_workspace ON contacts (workspace_id, id);

-- Consent history: appended, never updated.
CREATE TABLE contact_consents (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    contact_id    TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status        TEXT NOT NULL CHECK (status IN ('opted_in', 'opted_out')),
    categories    TEXT NOT NULL,
    source        TEXT NOT NULL,
    evidence      BYTEA,
    captured_at   TIMESTAMPTZ NOT NULL,
    recorded_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX contact_consents_contact ON contact_consents (contact_id, recorded_at);

CREATE TABLE templates (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    channel_id        TEXT NOT NULL REFERENCES channels (id),
    name              TEXT NOT NULL,
    language          TEXT NOT NULL,
    category          TEXT NOT NULL CHECK (category IN ('marketing', 'utility', 'authentication')),
    components        TEXT NOT NULL,
    status            TEXT NOT NULL,
    rejection_reason  TEXT,
    provider_id       TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, name, language)
);
CREATE INDEX templates_provider ON templates (provider_id);

CREATE TABLE messages (
    id                   TEXT PRIMARY KEY,
    workspace_id         TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    channel_id           TEXT NOT NULL REFERENCES channels (id),
    contact_id           TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    direction            TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    message_type         TEXT NOT NULL,
    template_name        TEXT,
    template_language    TEXT,
    category             TEXT,
    status               TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'read', 'failed', 'received')),
    provider_message_id  TEXT,
    error_code           BIGINT,
    error_title          TEXT,
    -- Retained content, encrypted with the contact's content key; NULL when not kept.
    content              BYTEA,
    content_expires_at   TIMESTAMPTZ,
    shield_label         TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX messages_workspace ON messages (workspace_id, id);
CREATE INDEX messages_contact ON messages (contact_id, id);
CREATE UNIQUE INDEX messages_provider_id ON messages (channel_id, provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_content_expiry ON messages (content_expires_at) WHERE content IS NOT NULL;

CREATE TABLE message_statuses (
    id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    message_id     TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    status         TEXT NOT NULL,
    provider_code  BIGINT,
    provider_title TEXT,
    occurred_at    TIMESTAMPTZ NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX message_statuses_message ON message_statuses (message_id, id);

-- Outbound messages not yet handed to the provider. `payload` is the encrypted
-- Cloud API request body; the row goes once the message is sent or failed.
CREATE TABLE outbox (
    message_id          TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    workspace_id        TEXT NOT NULL,
    channel_id          TEXT NOT NULL,
    contact_id          TEXT NOT NULL,
    payload             BYTEA NOT NULL,
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     TIMESTAMPTZ NOT NULL,
    deadline_at         TIMESTAMPTZ NOT NULL,
    lease_owner         TEXT,
    lease_until         TIMESTAMPTZ,
    -- Set when a provider call starts; a row found with it set after a crash is in doubt.
    attempt_started_at  TIMESTAMPTZ,
    last_error_code     BIGINT,
    last_error_title    TEXT
);
CREATE INDEX outbox_due ON outbox (channel_id, next_attempt_at);

-- Status webhooks for provider ids we do not know (yet): kept for reconciliation.
CREATE TABLE unmatched_statuses (
    id                   BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    channel_id           TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    provider_message_id  TEXT NOT NULL,
    callback_data        TEXT,
    status               TEXT NOT NULL,
    provider_code        BIGINT,
    provider_title       TEXT,
    occurred_at          TIMESTAMPTZ NOT NULL,
    received_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX unmatched_statuses_provider ON unmatched_statuses (channel_id, provider_message_id);
CREATE INDEX unmatched_statuses_callback ON unmatched_statuses (callback_data);

-- Which node owns each channel's rate limiter, until when.
CREATE TABLE channel_leases (
    channel_id   TEXT PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    owner        TEXT NOT NULL,
    lease_until  TIMESTAMPTZ NOT NULL
);
