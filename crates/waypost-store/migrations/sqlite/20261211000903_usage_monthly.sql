-- Month-to-date totals of the counters plans limit (`accepted.*`,
-- `shield.scans`, `assistant.tokens`), moved with the daily counters, so every
-- node reloads the totals it enforces from a few rows per billed workspace.
CREATE TABLE usage_monthly (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    month         TEXT NOT NULL,
    metric        TEXT NOT NULL,
    amount        INTEGER NOT NULL,
    PRIMARY KEY (month, workspace_id, metric)
) STRICT;
CREATE INDEX usage_monthly_workspace ON usage_monthly (workspace_id);

-- Totals of the counters already kept.
INSERT INTO usage_monthly (workspace_id, month, metric, amount)
SELECT workspace_id, substr(day, 1, 7), metric, SUM(amount) FROM usage_counters
WHERE metric LIKE 'accepted.%' OR metric IN ('shield.scans', 'assistant.tokens')
GROUP BY workspace_id, substr(day, 1, 7), metric;
