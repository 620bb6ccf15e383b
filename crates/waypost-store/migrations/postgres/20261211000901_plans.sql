-- Plans an operator defines (quotas as a JSON object of name to limit,
-- features as a JSON array), each workspace's plan and billing status (with
-- its Stripe customer and subscription once it subscribes), and the quota
-- warnings already given, once per workspace, period, quota and level.
CREATE TABLE plans (
    id               TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL,
    quotas           TEXT NOT NULL,
    features         TEXT NOT NULL,
    stripe_price_id  TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE workspace_billing (
    workspace_id            TEXT PRIMARY KEY NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    plan_id                 TEXT REFERENCES plans (id),
    status                  TEXT NOT NULL
                            CHECK (status IN ('active', 'past_due', 'grace', 'read_only', 'canceled')),
    status_changed_at       TIMESTAMPTZ NOT NULL,
    grace_ends_at           TIMESTAMPTZ,
    stripe_customer_id      TEXT,
    stripe_subscription_id  TEXT,
    updated_at              TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX workspace_billing_customer ON workspace_billing (stripe_customer_id);

CREATE TABLE quota_warnings (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    period        TEXT NOT NULL,
    quota         TEXT NOT NULL,
    level         BIGINT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, period, quota, level)
);
