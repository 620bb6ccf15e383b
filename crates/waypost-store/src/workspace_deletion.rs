//! Workspace deletion: a schedule an owner sets and can cancel, then a purge
//! in three steps a worker repeats until done: destroy the workspace's keys and
//! access (one transaction), remove its rows in small batches (so no write lock
//! is held for long), and remove the workspace itself. Every step can run again
//! after a crash.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;

/// Tables emptied batch by batch before the workspace row goes, children
/// before parents so each batch's cascades stay small. Whatever is left (small
/// tables, and any table that refers to `workspaces` with `ON DELETE CASCADE`)
/// goes with the workspace row.
pub const PURGE_ORDER: &[&str] = &[
    "webhook_attempts",
    "webhook_deliveries",
    "customer_events",
    "outbox",
    "media",
    "messages",
    "conversation_notes",
    "conversations",
    "contact_attribute_index",
    "contact_consents",
    "contacts",
    "contact_imports",
    "idempotency_records",
    "shield_scans",
    "signal_counters",
    "security_alerts",
    "usage_active_contacts",
    "usage_counters",
    "usage_monthly",
    "stripe_usage_reports",
    "audit_events",
];

#[async_trait]
pub trait WorkspaceDeletionStore {
    /// Sets (or with `None` clears) when the workspace is deleted; `NotFound`
    /// when it does not exist, `Conflict` once its purge has started.
    async fn schedule_workspace_deletion(
        &self,
        workspace_id: &str,
        due_at: Option<DateTime<Utc>>,
        audit: NewAuditEvent,
    ) -> Result<()>;
    async fn workspace_deletion_due(&self, workspace_id: &str) -> Result<Option<DateTime<Utc>>>;
    /// Workspaces whose grace period is over or whose purge has started.
    async fn due_workspace_deletions(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<String>>;
    /// Destroys the workspace's keys and every way in (members, invitations,
    /// API keys, pending sends, webhook secrets) and marks the purge started.
    /// `false` when it had started already (nothing done).
    async fn start_workspace_purge(
        &self,
        workspace_id: &str,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<bool>;
    /// Removes up to `batch` rows of the first table in [`PURGE_ORDER`] that
    /// still has some; `0` once all are empty.
    async fn purge_workspace_batch(&self, workspace_id: &str, batch: u32) -> Result<u64>;
    /// Removes the workspace row (and with it every remaining row that
    /// cascades from it) and its audit chain's checkpoints; audited in the
    /// system chain.
    async fn finish_workspace_purge(
        &self,
        workspace_id: &str,
        chain: &str,
        audit: NewAuditEvent,
    ) -> Result<()>;
}

/// Implements [`WorkspaceDeletionStore`]; `$batch_delete` is the backend's
/// `DELETE` of a limited set of rows, with `{t}` for the table.
macro_rules! workspace_deletion_store_impl {
    ($store:ty, $append:path, $batch_delete:literal) => {
        #[async_trait::async_trait]
        impl $crate::workspace_deletion::WorkspaceDeletionStore for $store {
            async fn schedule_workspace_deletion(
                &self,
                workspace_id: &str,
                due_at: Option<chrono::DateTime<chrono::Utc>>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let started: Option<Option<chrono::DateTime<chrono::Utc>>> =
                    sqlx::query_scalar("SELECT deletion_started_at FROM workspaces WHERE id = $1")
                        .bind(workspace_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                match started {
                    None => return Err($crate::StoreError::NotFound("workspace")),
                    Some(Some(_)) => {
                        return Err($crate::StoreError::Conflict(
                            "the workspace is being deleted".into(),
                        ));
                    }
                    Some(None) => {}
                }
                sqlx::query("UPDATE workspaces SET deletion_due_at = $2 WHERE id = $1")
                    .bind(workspace_id)
                    .bind(due_at)
                    .execute(&mut *tx)
                    .await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn workspace_deletion_due(
                &self,
                workspace_id: &str,
            ) -> $crate::Result<Option<chrono::DateTime<chrono::Utc>>> {
                Ok(sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
                    "SELECT deletion_due_at FROM workspaces WHERE id = $1",
                )
                .bind(workspace_id)
                .fetch_optional(self.reads())
                .await?
                .flatten())
            }

            async fn due_workspace_deletions(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM workspaces
                     WHERE deletion_started_at IS NOT NULL OR deletion_due_at <= $1
                     ORDER BY deletion_due_at LIMIT $2",
                )
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(self.reads())
                .await?)
            }

            async fn start_workspace_purge(
                &self,
                workspace_id: &str,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<bool> {
                let mut tx = self.write_tx().await?;
                let started = sqlx::query(
                    "UPDATE workspaces SET deletion_started_at = $2
                     WHERE id = $1 AND deletion_started_at IS NULL AND deletion_due_at <= $2",
                )
                .bind(workspace_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if started == 0 {
                    return Ok(false);
                }
                let empty: &[u8] = &[];
                // Crypto-shred: without these keys and secrets whatever copy of
                // the content survives (a backup, a disk block) cannot be read.
                for statement in [
                    "UPDATE contacts SET content_key = NULL WHERE workspace_id = $1",
                    "UPDATE media SET blob_key = NULL WHERE workspace_id = $1",
                ] {
                    sqlx::query(statement).bind(workspace_id).execute(&mut *tx).await?;
                }
                sqlx::query(
                    "UPDATE channels SET access_token = $2, app_secret = $2, verify_token = $2
                     WHERE workspace_id = $1",
                )
                .bind(workspace_id)
                .bind(empty)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE assistant_settings SET api_key = NULL, enabled = FALSE WHERE workspace_id = $1")
                    .bind(workspace_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE webhook_endpoints SET secret = $2, previous_secret = NULL, enabled = FALSE,
                        disabled_reason = 'workspace deleted'
                     WHERE workspace_id = $1",
                )
                .bind(workspace_id)
                .bind(empty)
                .execute(&mut *tx)
                .await?;
                // The detectors' baselines are keyed by scope, not workspace.
                sqlx::query(
                    "DELETE FROM detector_baselines
                     WHERE (scope_kind = 'workspace' AND scope_id = $1)
                        OR (scope_kind = 'channel' AND scope_id IN (SELECT id FROM channels WHERE workspace_id = $1))
                        OR (scope_kind = 'api_key' AND scope_id IN (SELECT id FROM api_keys WHERE workspace_id = $1))",
                )
                .bind(workspace_id)
                .execute(&mut *tx)
                .await?;
                // Nobody and nothing acts in it any more.
                for statement in [
                    "DELETE FROM api_keys WHERE workspace_id = $1",
                    "DELETE FROM invitations WHERE workspace_id = $1",
                    "DELETE FROM memberships WHERE workspace_id = $1",
                    "DELETE FROM outbox WHERE workspace_id = $1",
                    "DELETE FROM automation_work WHERE workspace_id = $1",
                ] {
                    sqlx::query(statement).bind(workspace_id).execute(&mut *tx).await?;
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn purge_workspace_batch(
                &self,
                workspace_id: &str,
                batch: u32,
            ) -> $crate::Result<u64> {
                for table in $crate::workspace_deletion::PURGE_ORDER {
                    let statement = format!($batch_delete, t = table);
                    let mut tx = self.write_tx().await?;
                    let removed = sqlx::query(&statement)
                        .bind(workspace_id)
                        .bind(i64::from(batch))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    tx.commit().await?;
                    if removed > 0 {
                        return Ok(removed);
                    }
                }
                Ok(0)
            }

            async fn finish_workspace_purge(
                &self,
                workspace_id: &str,
                chain: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                for statement in [
                    "DELETE FROM audit_checkpoints WHERE chain = $1",
                    "DELETE FROM audit_chain_starts WHERE chain = $1",
                ] {
                    sqlx::query(statement).bind(chain).execute(&mut *tx).await?;
                }
                sqlx::query("DELETE FROM audit_events WHERE workspace_id = $1")
                    .bind(workspace_id)
                    .execute(&mut *tx)
                    .await?;
                // Detectors keep evaluating during the purge and may have
                // written baselines again since the first step.
                sqlx::query(
                    "DELETE FROM detector_baselines
                     WHERE (scope_kind = 'workspace' AND scope_id = $1)
                        OR (scope_kind = 'channel' AND scope_id IN (SELECT id FROM channels WHERE workspace_id = $1))",
                )
                .bind(workspace_id)
                .execute(&mut *tx)
                .await?;
                let removed = sqlx::query("DELETE FROM workspaces WHERE id = $1")
                    .bind(workspace_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if removed == 0 {
                    return Err($crate::StoreError::NotFound("workspace"));
                }
                // Counts a flush committed while it held the workspace row (see
                // `add_signals`), after the purge's own pass over the table.
                sqlx::query("DELETE FROM signal_counters WHERE workspace_id = $1")
                    .bind(workspace_id)
                    .execute(&mut *tx)
                    .await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
pub(crate) use workspace_deletion_store_impl;
