-- Audiences: contact language and time zone (plain: coarse, needed to schedule
-- and to pick a template language), typed custom fields, tags, the blind index
-- of custom attribute values (HMAC of workspace, field and canonical value; the
-- values themselves stay in the encrypted `contacts.attributes`), saved
-- segments (their filter encrypted: it may quote attribute values), and contact
-- imports with one result per row (no personal data: outcome, contact id and
-- a detail naming the column at fault).
ALTER TABLE contacts ADD COLUMN language TEXT;
ALTER TABLE contacts ADD COLUMN time_zone TEXT;
CREATE INDEX contacts_created ON contacts (workspace_id, created_at);

CREATE TABLE contact_fields (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    field_key     TEXT NOT NULL,
    field_type    TEXT NOT NULL CHECK (field_type IN ('text', 'number', 'boolean', 'date')),
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, field_key)
);

CREATE TABLE contact_tags (
    contact_id    TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL,
    tag           TEXT NOT NULL,
    PRIMARY KEY (contact_id, tag)
);
CREATE INDEX contact_tags_tag ON contact_tags (workspace_id, tag, contact_id);

CREATE TABLE contact_attribute_index (
    contact_id    TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL,
    field         TEXT NOT NULL,
    value_index   BYTEA NOT NULL,
    PRIMARY KEY (contact_id, field)
);
CREATE INDEX contact_attribute_index_value ON contact_attribute_index (value_index, contact_id);

CREATE TABLE segments (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    definition    BYTEA NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE contact_imports (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    import_key        TEXT NOT NULL,
    content_hash      BYTEA,
    status            TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    rows_total        BIGINT NOT NULL DEFAULT 0,
    created           BIGINT NOT NULL DEFAULT 0,
    updated           BIGINT NOT NULL DEFAULT 0,
    invalid_number    BIGINT NOT NULL DEFAULT 0,
    invalid           BIGINT NOT NULL DEFAULT 0,
    duplicate         BIGINT NOT NULL DEFAULT 0,
    consent_recorded  BIGINT NOT NULL DEFAULT 0,
    error             TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    finished_at       TIMESTAMPTZ,
    UNIQUE (workspace_id, import_key)
);

CREATE TABLE contact_import_rows (
    import_id   TEXT NOT NULL REFERENCES contact_imports (id) ON DELETE CASCADE,
    row_number  BIGINT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('created', 'updated', 'invalid_number', 'invalid', 'duplicate')),
    contact_id  TEXT REFERENCES contacts (id) ON DELETE SET NULL,
    -- What became of the row's marketing consent: recorded, not_recorded
    -- (evidence missing), kept_opt_out (the contact had opted out), or NULL.
    consent     TEXT,
    detail      TEXT,
    PRIMARY KEY (import_id, row_number)
);
CREATE INDEX contact_import_rows_contact ON contact_import_rows (contact_id);
