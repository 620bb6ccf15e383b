-- Usage metering: counters per workspace, channel ('' for workspace-wide
-- counts), UTC day and metric, moved in the transaction of the event that
-- causes them; markers of the contacts active per day and month (so each is
-- counted once); the operator's rate card (one price per pricing category).
CREATE TABLE usage_counters (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    day           TEXT NOT NULL,
    channel_id    TEXT NOT NULL,
    metric        TEXT NOT NULL,
    amount        INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, day, channel_id, metric)
) STRICT;
CREATE INDEX usage_counters_day ON usage_counters (day);

CREATE TABLE usage_active_contacts (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    period        TEXT NOT NULL,
    contact_id    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, period, contact_id)
) STRICT;
CREATE INDEX usage_active_contacts_period ON usage_active_contacts (period);

CREATE TABLE rate_card (
    category           TEXT PRIMARY KEY NOT NULL,
    currency           TEXT NOT NULL,
    unit_price_micros  INTEGER NOT NULL,
    loaded_at          TEXT NOT NULL
) STRICT;
