-- Campaigns that send. A start materialises the segment into
-- `campaign_recipients` (one row per contact, in a fixed order, with the skip
-- reason of those the pre-flight rules out); the sender, holding the
-- campaign's lease, feeds pending rows to the outbox through the normal send
-- path with one idempotency key per recipient, so a crash between the two
-- writes neither loses nor repeats a recipient. Outcomes are read from the
-- messages the rows point at.

-- SQLite cannot change a CHECK: the table is rebuilt with the new statuses.
CREATE TABLE campaigns_new (
    id                    TEXT PRIMARY KEY,
    workspace_id          TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    segment_id            TEXT NOT NULL,
    channel_id            TEXT NOT NULL,
    template_name         TEXT NOT NULL,
    template_language     TEXT NOT NULL,
    parameters            TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled')),
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    -- JSON `SendWindow`: recipients' hours, quiet hours.
    send_window           TEXT,
    start_at              TEXT,
    -- The eligible count the person starting it confirmed.
    confirmed_recipients  INTEGER,
    started_at            TEXT,
    finished_at           TEXT,
    pause_reason          TEXT,
    lease_owner           TEXT,
    lease_until           TEXT,
    UNIQUE (workspace_id, name)
) STRICT;
INSERT INTO campaigns_new (id, workspace_id, name, segment_id, channel_id, template_name,
    template_language, parameters, status, created_at, updated_at)
SELECT id, workspace_id, name, segment_id, channel_id, template_name, template_language,
    parameters, status, created_at, updated_at FROM campaigns;
DROP TABLE campaigns;
ALTER TABLE campaigns_new RENAME TO campaigns;
CREATE INDEX campaigns_sending ON campaigns (status) WHERE status IN ('scheduled', 'running');

CREATE TABLE campaign_recipients (
    campaign_id  TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    contact_id   TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'queued', 'skipped', 'cancelled')),
    skip_reason  TEXT,
    -- The send path's refusal (`type` slug) for rows skipped at send time.
    skip_detail  TEXT,
    message_id   TEXT,
    -- Not before this time (a recipient's local hours, quiet hours).
    due_at   TEXT,
    queued_at    TEXT,
    PRIMARY KEY (campaign_id, seq),
    UNIQUE (campaign_id, contact_id)
) STRICT;
CREATE INDEX campaign_recipients_pending ON campaign_recipients (campaign_id, seq) WHERE state = 'pending';
CREATE INDEX campaign_recipients_message ON campaign_recipients (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX campaign_recipients_contact ON campaign_recipients (contact_id);

-- Meta's messaging limit per number (unique users per rolling 24 hours).
CREATE TABLE channel_messaging_tiers (
    channel_id    TEXT PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL,
    tier          TEXT NOT NULL CHECK (tier IN ('250', '1k', '10k', '100k', 'unlimited')),
    updated_at    TEXT NOT NULL
) STRICT;

-- The tier's count: a number's outbound messages of the last 24 hours.
CREATE INDEX messages_channel_created ON messages (channel_id, created_at) WHERE direction = 'outbound';
