//! The dispatcher's storage: per-channel rate-limiter leases, claiming due
//! outbox rows under a lease (PostgreSQL `FOR UPDATE SKIP LOCKED`; SQLite has
//! one writer), marking provider calls as started (so a crash leaves the row
//! "in doubt" rather than silently resendable), and recording what each call
//! did. Status changes go through [`apply_status`](crate::inbound) so the
//! monotonic rules live in one place.
//!
//! The SQL is written once with `$n` placeholders and instantiated for both
//! backends by `dispatch_store_impl!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;
use crate::events::NewCustomerEvent;
use crate::messaging::OutboxRow;

/// One status change of a message, for building its customer event.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub message_id: String,
    pub workspace_id: String,
    pub channel_id: String,
    pub contact_id: String,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: String,
    pub wamid: Option<String>,
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// Builds (and seals) the customer event of a status change; the server
/// supplies it so the store writes the event in the change's transaction.
pub type EventSealer<'a> = &'a (dyn Fn(&StatusChange) -> NewCustomerEvent + Send + Sync);

/// What one provider call (or the decision not to make it) led to.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    /// The provider accepted the message under this id.
    Sent { wamid: String },
    /// Not accepted; try again at `next_attempt_at`.
    Retry {
        next_attempt_at: DateTime<Utc>,
        code: Option<i64>,
        title: Option<String>,
    },
    /// The provider may have accepted it (timeout, lost response): keep the
    /// attempt marked as started and wait for a status webhook until `next_attempt_at`.
    InDoubt {
        next_attempt_at: DateTime<Utc>,
        title: String,
    },
    /// Not attempted (pair limit, reconciliation wait): come back later, attempts unchanged.
    Defer { next_attempt_at: DateTime<Utc> },
    /// Given up: a permanent error, or the deadline passed.
    Failed { code: Option<i64>, title: String },
}

/// The outcome for one claimed row.
#[derive(Debug, Clone, PartialEq)]
pub struct SendResult {
    pub row: OutboxRow,
    pub outcome: SendOutcome,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait DispatchStore {
    /// Takes or renews the lease on a channel's rate limiter; `false` when
    /// another owner holds an unexpired lease.
    async fn acquire_channel_lease(
        &self,
        channel_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool>;
    async fn release_channel_lease(&self, channel_id: &str, owner: &str) -> Result<()>;
    /// Claims up to `limit` due rows of a channel whose row lease is free or expired.
    async fn claim_outbox_batch(
        &self,
        channel_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxRow>>;
    /// Records that provider calls are about to start (one transaction):
    /// `attempt_started_at`, attempts + 1, and `queued → sending` with its history row.
    async fn mark_attempts_started(
        &self,
        message_ids: &[String],
        owner: &str,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Records a batch of outcomes in one transaction, with their status
    /// history and customer events; statuses that arrived before the `wamid`
    /// was known are applied once it is.
    async fn record_send_results(
        &self,
        results: &[SendResult],
        owner: &str,
        seal: EventSealer<'_>,
    ) -> Result<()>;
    /// Outbox rows of a message, for tests and operators.
    async fn outbox_row(&self, message_id: &str) -> Result<Option<OutboxRow>>;
}

/// Implements [`DispatchStore`] for a backend with `write_tx()`, `reads()` and
/// `insert_status`, `apply_status`, `apply_unmatched` in scope. `$skip_locked`
/// is the row-locking clause of the claim query.
macro_rules! dispatch_store_impl {
    ($store:ty, $insert_status:path, $apply_status:path, $apply_unmatched:path, $skip_locked:literal) => {
        #[async_trait::async_trait]
        impl $crate::dispatch::DispatchStore for $store {
            async fn acquire_channel_lease(
                &self,
                channel_id: &str,
                owner: &str,
                now: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "INSERT INTO channel_leases (channel_id, owner, lease_until) VALUES ($1, $2, $3)
                     ON CONFLICT (channel_id) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
                     WHERE channel_leases.owner = excluded.owner OR channel_leases.lease_until < $4",
                )
                .bind(channel_id)
                .bind(owner)
                .bind(until)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn release_channel_lease(&self, channel_id: &str, owner: &str) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query("DELETE FROM channel_leases WHERE channel_id = $1 AND owner = $2")
                    .bind(channel_id)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn claim_outbox_batch(
                &self,
                channel_id: &str,
                owner: &str,
                now: chrono::DateTime<chrono::Utc>,
                lease_until: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::messaging::OutboxRow>> {
                let sql = format!(
                    "UPDATE outbox SET lease_owner = $2, lease_until = $3
                     WHERE message_id IN (
                        SELECT message_id FROM outbox
                        WHERE channel_id = $1 AND next_attempt_at <= $4
                          AND (lease_until IS NULL OR lease_until < $4)
                        ORDER BY next_attempt_at, message_id LIMIT $5 {})
                     RETURNING {}",
                    $skip_locked,
                    $crate::messaging::OUTBOX_COLUMNS
                );
                let mut tx = self.write_tx().await?;
                let mut rows: Vec<$crate::messaging::OutboxRow> = sqlx::query_as(&sql)
                    .bind(channel_id)
                    .bind(owner)
                    .bind(lease_until)
                    .bind(now)
                    .bind(limit as i64)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                // RETURNING order is unspecified; keep the queue order.
                rows.sort_by(|a, b| {
                    (a.next_attempt_at, &a.message_id).cmp(&(b.next_attempt_at, &b.message_id))
                });
                Ok(rows)
            }

            async fn mark_attempts_started(
                &self,
                message_ids: &[String],
                owner: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                for id in message_ids {
                    sqlx::query(
                        "UPDATE outbox SET attempt_started_at = $2, attempts = attempts + 1
                         WHERE message_id = $1 AND lease_owner = $3",
                    )
                    .bind(id)
                    .bind(at)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
                    let moved = sqlx::query(
                        "UPDATE messages SET status = 'sending', updated_at = $2 WHERE id = $1 AND status = 'queued'",
                    )
                    .bind(id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    if moved.rows_affected() > 0 {
                        $insert_status(&mut *tx, id, "sending", None, None, at, at).await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn record_send_results(
                &self,
                results: &[$crate::dispatch::SendResult],
                owner: &str,
                seal: $crate::dispatch::EventSealer<'_>,
            ) -> $crate::Result<()> {
                use $crate::dispatch::SendOutcome;
                let mut tx = self.write_tx().await?;
                for r in results {
                    let row = &r.row;
                    let target = $crate::inbound::MessageRef {
                        id: row.message_id.clone(),
                        workspace_id: row.workspace_id.clone(),
                        channel_id: row.channel_id.clone(),
                        contact_id: row.contact_id.clone(),
                    };
                    match &r.outcome {
                        SendOutcome::Sent { wamid } => {
                            // A status webhook may have reconciled it first; then only the outbox row goes.
                            let set = sqlx::query(
                                "UPDATE messages SET provider_message_id = $2, updated_at = $3
                                 WHERE id = $1 AND provider_message_id IS NULL",
                            )
                            .bind(&row.message_id)
                            .bind(wamid)
                            .bind(r.at)
                            .execute(&mut *tx)
                            .await?;
                            if set.rows_affected() > 0 {
                                $apply_status(&mut *tx, &target, Some(wamid), "sent", None, None, r.at, r.at, seal)
                                    .await?;
                            }
                            sqlx::query("DELETE FROM outbox WHERE message_id = $1")
                                .bind(&row.message_id)
                                .execute(&mut *tx)
                                .await?;
                            $apply_unmatched(&mut *tx, &target, wamid, r.at, seal).await?;
                        }
                        SendOutcome::Failed { code, title } => {
                            $apply_status(
                                &mut *tx, &target, None, "failed", *code, Some(title.as_str()), r.at, r.at, seal,
                            )
                            .await?;
                            sqlx::query("DELETE FROM outbox WHERE message_id = $1")
                                .bind(&row.message_id)
                                .execute(&mut *tx)
                                .await?;
                        }
                        SendOutcome::Retry { next_attempt_at, code, title } => {
                            sqlx::query(
                                "UPDATE outbox SET next_attempt_at = $2, attempt_started_at = NULL,
                                    lease_owner = NULL, lease_until = NULL, last_error_code = $3, last_error_title = $4
                                 WHERE message_id = $1 AND lease_owner = $5",
                            )
                            .bind(&row.message_id)
                            .bind(next_attempt_at)
                            .bind(code)
                            .bind(title)
                            .bind(owner)
                            .execute(&mut *tx)
                            .await?;
                        }
                        SendOutcome::InDoubt { next_attempt_at, title } => {
                            sqlx::query(
                                "UPDATE outbox SET next_attempt_at = $2, lease_owner = NULL, lease_until = NULL,
                                    last_error_code = NULL, last_error_title = $3
                                 WHERE message_id = $1 AND lease_owner = $4",
                            )
                            .bind(&row.message_id)
                            .bind(next_attempt_at)
                            .bind(title)
                            .bind(owner)
                            .execute(&mut *tx)
                            .await?;
                        }
                        SendOutcome::Defer { next_attempt_at } => {
                            sqlx::query(
                                "UPDATE outbox SET next_attempt_at = $2, lease_owner = NULL, lease_until = NULL
                                 WHERE message_id = $1 AND lease_owner = $3",
                            )
                            .bind(&row.message_id)
                            .bind(next_attempt_at)
                            .bind(owner)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn outbox_row(
                &self,
                message_id: &str,
            ) -> $crate::Result<Option<$crate::messaging::OutboxRow>> {
                let sql = format!(
                    "SELECT {} FROM outbox WHERE message_id = $1",
                    $crate::messaging::OUTBOX_COLUMNS
                );
                Ok(sqlx::query_as(&sql).bind(message_id).fetch_optional(self.reads()).await?)
            }
        }
    };
}
pub(crate) use dispatch_store_impl;
