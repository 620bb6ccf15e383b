-- Campaigns that send. A start materialises the segment into
-- `campaign_recipients` (one row per contact, in a fixed order, with the skip
-- reason of those the pre-flight rules out); the sender, holding the
-- campaign's lease, feeds pending rows to the outbox through the normal send
-- path with one idempotency key per recipient, so a crash between the two
-- writes neither loses nor repeats a recipient. Outcomes are read from the
-- messages the rows point at.
ALTER TABLE campaigns DROP CONSTRAINT campaigns_status_check;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_status_check
    CHECK (status IN ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled'));
-- JSON `SendWindow`: recipients' hours, quiet hours.
ALTER TABLE campaigns ADD COLUMN send_window TEXT;
ALTER TABLE campaigns ADD COLUMN start_at TIMESTAMPTZ;
-- The eligible count the person starting it confirmed.
ALTER TABLE campaigns ADD COLUMN confirmed_recipients BIGINT;
ALTER TABLE campaigns ADD COLUMN started_at TIMESTAMPTZ;
ALTER TABLE campaigns ADD COLUMN finished_at TIMESTAMPTZ;
ALTER TABLE campaigns ADD COLUMN pause_reason TEXT;
ALTER TABLE campaigns ADD COLUMN lease_owner TEXT;
ALTER TABLE campaigns ADD COLUMN lease_until TIMESTAMPTZ;
CREATE INDEX campaigns_sending ON campaigns (status) WHERE status IN ('scheduled', 'running');

CREATE TABLE campaign_recipients (
    campaign_id  TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL,
    contact_id   TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'queued', 'skipped', 'cancelled')),
    skip_reason  TEXT,
    -- The send path's refusal (`type` slug) for rows skipped at send time.
    skip_detail  TEXT,
    message_id   TEXT,
    -- Not before this time (a recipient's local hours, quiet hours).
    due_at   TIMESTAMPTZ,
    queued_at    TIMESTAMPTZ,
    PRIMARY KEY (campaign_id, seq),
    UNIQUE (campaign_id, contact_id)
);
CREATE INDEX campaign_recipients_pending ON campaign_recipients (campaign_id, seq) WHERE state = 'pending';
CREATE INDEX campaign_recipients_message ON campaign_recipients (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX campaign_recipients_contact ON campaign_recipients (contact_id);

-- Meta's messaging limit per number (unique users per rolling 24 hours).
CREATE TABLE channel_messaging_tiers (
    channel_id    TEXT PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL,
    tier          TEXT NOT NULL CHECK (tier IN ('250', '1k', '10k', '100k', 'unlimited')),
    updated_at    TIMESTAMPTZ NOT NULL
);

-- The tier's count: a number's outbound messages of the last 24 hours.
CREATE INDEX messages_channel_created ON messages (channel_id, created_at) WHERE direction = 'outbound';
