//! Stripe's side of billing: webhook events applied once (the event id is
//! recorded in the transaction of the billing change it makes), workspaces
//! whose grace period is over, and the outbox of usage reports whose id is
//! the idempotency key Stripe sees.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;
use crate::events::NewCustomerEvent;
use crate::plans::WorkspaceBilling;

/// A billing change a webhook event makes.
#[derive(Debug, Clone)]
pub struct BillingChange {
    pub billing: WorkspaceBilling,
    pub audit: NewAuditEvent,
    pub event: NewCustomerEvent,
}

/// One day's count of one counter, to report (or reported) to Stripe.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageReportRow {
    /// `{workspace}:{day}:{metric}`: the idempotency key and meter event identifier.
    pub id: String,
    pub workspace_id: String,
    pub customer_id: String,
    pub day: String,
    pub metric: String,
    pub quantity: i64,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub reported_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait StripeStore {
    /// Records the event and applies its change in one transaction; `false`
    /// (nothing done) when the event was applied before.
    async fn apply_stripe_event(
        &self,
        event_id: &str,
        event_type: &str,
        change: Option<&BillingChange>,
        received_at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Billing rows past due or in grace whose grace period ended by `now`.
    async fn grace_expired(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<WorkspaceBilling>>;
    /// Workspaces with a Stripe customer: `(workspace, customer)`.
    async fn stripe_customers(&self) -> Result<Vec<(String, String)>>;
    /// Adds reports not queued before (by id); returns how many were new.
    async fn enqueue_usage_reports(&self, rows: &[UsageReportRow]) -> Result<u64>;
    /// Unreported rows due by `now`, oldest first.
    async fn due_usage_reports(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<UsageReportRow>>;
    async fn usage_report_sent(&self, id: &str, now: DateTime<Utc>) -> Result<()>;
    async fn usage_report_failed(
        &self,
        id: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<()>;
    /// A workspace's reports, by day and counter.
    async fn usage_reports(&self, workspace_id: &str) -> Result<Vec<UsageReportRow>>;
}

const REPORT_COLUMNS: &str = "id, workspace_id, customer_id, day, metric, quantity, attempts, \
     next_attempt_at, reported_at, last_error, created_at";

pub(crate) fn report_select(filter: &str) -> String {
    format!("SELECT {REPORT_COLUMNS} FROM stripe_usage_reports WHERE {filter}")
}

macro_rules! stripe_store_impl {
    ($store:ty, $append:path, $insert_events:path) => {
        #[async_trait::async_trait]
        impl $crate::stripe::StripeStore for $store {
            async fn apply_stripe_event(
                &self,
                event_id: &str,
                event_type: &str,
                change: Option<&$crate::stripe::BillingChange>,
                received_at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "INSERT INTO stripe_events (id, event_type, workspace_id, received_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(event_id)
                .bind(event_type)
                .bind(change.map(|c| c.billing.workspace_id.clone()))
                .bind(received_at)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                if let Some(c) = change {
                    let b = &c.billing;
                    sqlx::query($crate::plans::UPSERT_BILLING)
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
                    $append(&mut tx, c.audit.clone()).await?;
                    $insert_events(&mut *tx, std::slice::from_ref(&c.event)).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn grace_expired(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::plans::WorkspaceBilling>> {
                Ok(sqlx::query_as(
                    "SELECT workspace_id, plan_id, status, status_changed_at, grace_ends_at,
                        stripe_customer_id, stripe_subscription_id, updated_at
                     FROM workspace_billing
                     WHERE status IN ('past_due', 'grace') AND grace_ends_at <= $1
                     ORDER BY grace_ends_at LIMIT $2",
                )
                .bind(now)
                .bind(limit as i64)
                .fetch_all(self.reads())
                .await?)
            }

            async fn stripe_customers(&self) -> $crate::Result<Vec<(String, String)>> {
                Ok(sqlx::query_as(
                    "SELECT workspace_id, stripe_customer_id FROM workspace_billing
                     WHERE stripe_customer_id IS NOT NULL ORDER BY workspace_id",
                )
                .fetch_all(self.reads())
                .await?)
            }

            async fn enqueue_usage_reports(&self, rows: &[$crate::stripe::UsageReportRow]) -> $crate::Result<u64> {
                let mut tx = self.write_tx().await?;
                let mut added = 0;
                for r in rows {
                    added += sqlx::query(
                        "INSERT INTO stripe_usage_reports (id, workspace_id, customer_id, day, metric, quantity,
                            attempts, next_attempt_at, reported_at, last_error, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
                    )
                    .bind(&r.id)
                    .bind(&r.workspace_id)
                    .bind(&r.customer_id)
                    .bind(&r.day)
                    .bind(&r.metric)
                    .bind(r.quantity)
                    .bind(r.attempts)
                    .bind(r.next_attempt_at)
                    .bind(r.reported_at)
                    .bind(&r.last_error)
                    .bind(r.created_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                tx.commit().await?;
                Ok(added)
            }

            async fn due_usage_reports(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::stripe::UsageReportRow>> {
                let sql = $crate::stripe::report_select(
                    "reported_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
                );
                Ok(sqlx::query_as(&sql).bind(now).bind(limit as i64).fetch_all(self.reads()).await?)
            }

            async fn usage_report_sent(&self, id: &str, now: chrono::DateTime<chrono::Utc>) -> $crate::Result<()> {
                sqlx::query(
                    "UPDATE stripe_usage_reports SET reported_at = $2, attempts = attempts + 1, last_error = NULL
                     WHERE id = $1 AND reported_at IS NULL",
                )
                .bind(id)
                .bind(now)
                .execute(self.writes())
                .await?;
                Ok(())
            }

            async fn usage_report_failed(
                &self,
                id: &str,
                next_attempt_at: chrono::DateTime<chrono::Utc>,
                error: &str,
            ) -> $crate::Result<()> {
                sqlx::query(
                    "UPDATE stripe_usage_reports SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3
                     WHERE id = $1 AND reported_at IS NULL",
                )
                .bind(id)
                .bind(next_attempt_at)
                .bind(error)
                .execute(self.writes())
                .await?;
                Ok(())
            }

            async fn usage_reports(&self, workspace_id: &str) -> $crate::Result<Vec<$crate::stripe::UsageReportRow>> {
                let sql = $crate::stripe::report_select("workspace_id = $1 ORDER BY day, metric LIMIT 1000");
                Ok(sqlx::query_as(&sql).bind(workspace_id).fetch_all(self.reads()).await?)
            }
        }
    };
}
pub(crate) use stripe_store_impl;
