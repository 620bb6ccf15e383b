//! Plans, each workspace's plan and billing status, and the quota warnings
//! already given. Quota checks never read here per request: the server keeps
//! every workspace's plan and month totals in memory and reloads them
//! ([`PlanStore::billing_snapshot`] and `UsageStore::month_totals`).
//!
//! The SQL is written once with `$n` placeholders and instantiated for both
//! backends by `plan_store_impl!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;
use crate::events::NewCustomerEvent;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PlanRow {
    /// The operator's name for it, e.g. `starter`.
    pub id: String,
    pub name: String,
    /// JSON object: quota name to limit.
    pub quotas: String,
    /// JSON array of feature names.
    pub features: String,
    /// The recurring Stripe price a checkout for this plan subscribes to.
    pub stripe_price_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A workspace's plan and where it stands with its subscription.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WorkspaceBilling {
    pub workspace_id: String,
    pub plan_id: Option<String>,
    /// `active`, `past_due`, `grace`, `read_only` or `canceled`.
    pub status: String,
    pub status_changed_at: DateTime<Utc>,
    pub grace_ends_at: Option<DateTime<Utc>>,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// A workspace's billing with its plan's limits, as quota checks need it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BillingLimits {
    pub workspace_id: String,
    pub plan_id: Option<String>,
    pub status: String,
    pub quotas: Option<String>,
    pub features: Option<String>,
}

#[async_trait]
pub trait PlanStore {
    /// Creates or replaces a plan.
    async fn put_plan(&self, plan: &PlanRow, audit: NewAuditEvent) -> Result<()>;
    async fn list_plans(&self) -> Result<Vec<PlanRow>>;
    /// `NotFound` when there is no such plan.
    async fn get_plan(&self, id: &str) -> Result<PlanRow>;
    /// The workspace's billing row, if it has one.
    async fn workspace_billing(&self, workspace_id: &str) -> Result<Option<WorkspaceBilling>>;
    /// Creates or replaces the workspace's billing row, with its audit and customer event.
    async fn put_workspace_billing(
        &self,
        billing: &WorkspaceBilling,
        audit: NewAuditEvent,
        event: NewCustomerEvent,
    ) -> Result<()>;
    /// The workspace whose Stripe customer this is.
    async fn billing_by_customer(&self, customer_id: &str) -> Result<Option<WorkspaceBilling>>;
    /// Every workspace with a billing row, with its plan's limits.
    async fn billing_snapshot(&self) -> Result<Vec<BillingLimits>>;
    /// Records a quota warning with its customer event unless it was given
    /// already this period; `false` when it was.
    async fn record_quota_warning(
        &self,
        workspace_id: &str,
        period: &str,
        quota: &str,
        level: i64,
        event: NewCustomerEvent,
    ) -> Result<bool>;
}

/// Creates or replaces a workspace's billing row (`$1` to `$8` in column order).
pub(crate) const UPSERT_BILLING: &str =
    "INSERT INTO workspace_billing (workspace_id, plan_id, status,
        status_changed_at, grace_ends_at, stripe_customer_id, stripe_subscription_id, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (workspace_id) DO UPDATE SET plan_id = excluded.plan_id,
        status = excluded.status, status_changed_at = excluded.status_changed_at,
        grace_ends_at = excluded.grace_ends_at, stripe_customer_id = excluded.stripe_customer_id,
        stripe_subscription_id = excluded.stripe_subscription_id, updated_at = excluded.updated_at";

macro_rules! plan_store_impl {
    ($store:ty, $append:path, $insert_events:path) => {
        #[async_trait::async_trait]
        impl $crate::plans::PlanStore for $store {
            async fn put_plan(
                &self,
                p: &$crate::plans::PlanRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO plans (id, name, quotas, features, stripe_price_id, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, quotas = excluded.quotas,
                        features = excluded.features, stripe_price_id = excluded.stripe_price_id,
                        updated_at = excluded.updated_at",
                )
                .bind(&p.id)
                .bind(&p.name)
                .bind(&p.quotas)
                .bind(&p.features)
                .bind(&p.stripe_price_id)
                .bind(p.created_at)
                .bind(p.updated_at)
                .execute(&mut *tx)
                .await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_plans(&self) -> $crate::Result<Vec<$crate::plans::PlanRow>> {
                Ok(sqlx::query_as(
                    "SELECT id, name, quotas, features, stripe_price_id, created_at, updated_at
                     FROM plans ORDER BY id LIMIT 1000",
                )
                .fetch_all(self.reads())
                .await?)
            }

            async fn get_plan(&self, id: &str) -> $crate::Result<$crate::plans::PlanRow> {
                sqlx::query_as(
                    "SELECT id, name, quotas, features, stripe_price_id, created_at, updated_at
                     FROM plans WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(self.reads())
                .await?
                .ok_or_else(|| $crate::StoreError::NotFound("plan".into()))
            }

            async fn workspace_billing(
                &self,
                workspace_id: &str,
            ) -> $crate::Result<Option<$crate::plans::WorkspaceBilling>> {
                Ok(sqlx::query_as(
                    "SELECT workspace_id, plan_id, status, status_changed_at, grace_ends_at,
                        stripe_customer_id, stripe_subscription_id, updated_at
                     FROM workspace_billing WHERE workspace_id = $1",
                )
                .bind(workspace_id)
                .fetch_optional(self.reads())
                .await?)
            }

            async fn put_workspace_billing(
                &self,
                b: &$crate::plans::WorkspaceBilling,
                audit: waypost_core::NewAuditEvent,
                event: $crate::events::NewCustomerEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    $crate::plans::UPSERT_BILLING,
                )
                .bind(&b.workspace_id)
                .bind(&b.plan_id)
                .bind(&b.status)
                .bind(b.status_changed_at)
                .bind(b.grace_ends_at)
                .bind(&b.stripe_customer_id)
                .bind(&b.stripe_subscription_id)
                .bind(b.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| $crate::StoreError::conflict_on_unique(e, "the Stripe customer belongs to another workspace"))?;
                $append(&mut tx, audit).await?;
                $insert_events(&mut *tx, std::slice::from_ref(&event)).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn billing_by_customer(
                &self,
                customer_id: &str,
            ) -> $crate::Result<Option<$crate::plans::WorkspaceBilling>> {
                Ok(sqlx::query_as(
                    "SELECT workspace_id, plan_id, status, status_changed_at, grace_ends_at,
                        stripe_customer_id, stripe_subscription_id, updated_at
                     FROM workspace_billing WHERE stripe_customer_id = $1",
                )
                .bind(customer_id)
                .fetch_optional(self.reads())
                .await?)
            }

            async fn billing_snapshot(&self) -> $crate::Result<Vec<$crate::plans::BillingLimits>> {
                Ok(sqlx::query_as(
                    "SELECT b.workspace_id, b.plan_id, b.status, p.quotas, p.features
                     FROM workspace_billing b LEFT JOIN plans p ON p.id = b.plan_id",
                )
                .fetch_all(self.reads())
                .await?)
            }

            async fn record_quota_warning(
                &self,
                workspace_id: &str,
                period: &str,
                quota: &str,
                level: i64,
                event: $crate::events::NewCustomerEvent,
            ) -> $crate::Result<bool> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "INSERT INTO quota_warnings (workspace_id, period, quota, level, created_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(workspace_id)
                .bind(period)
                .bind(quota)
                .bind(level)
                .bind(event.created_at)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                $insert_events(&mut *tx, std::slice::from_ref(&event)).await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}
pub(crate) use plan_store_impl;
