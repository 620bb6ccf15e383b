-- Campaigns: one template broadcast to a segment's contacts. Drafts for now (the
-- pre-flight counts recipients and who is skipped and why, reading the segment
-- live); `parameters` says where each template parameter comes from (a contact
-- field, an attribute key, or a fixed text of the business), never a value.
CREATE TABLE campaigns (
    id                 TEXT PRIMARY KEY,
    workspace_id       TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    segment_id         TEXT NOT NULL,
    channel_id         TEXT NOT NULL,
    template_name      TEXT NOT NULL,
    template_language  TEXT NOT NULL,
    parameters         TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('draft')),
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, name)
);
