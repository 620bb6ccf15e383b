-- A number's quality rating as Meta last reported it (phone_number_quality_update
-- webhooks); campaigns on a number rated RED pause themselves.
CREATE TABLE channel_quality_ratings (
    channel_id    TEXT PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL,
    rating        TEXT NOT NULL CHECK (rating IN ('GREEN', 'YELLOW', 'RED', 'UNKNOWN')),
    updated_at    TEXT NOT NULL
) STRICT;
