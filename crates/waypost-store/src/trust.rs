//! Trust and safety storage: suspensions, per-minute signal counters,
//! detector baselines and the detectors' cursor, and security alerts.
//!
//! The SQL is written once with `$n` placeholders and instantiated for each
//! backend by `trust_store_impl!`, like the identity store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;
use crate::events::NewCustomerEvent;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SuspensionRow {
    pub id: String,
    pub workspace_id: Option<String>,
    pub target_kind: String,
    pub target_id: String,
    pub reason: String,
    /// `operator` or `automatic`.
    pub source: String,
    pub alert_id: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub lifted_at: Option<DateTime<Utc>>,
    pub lifted_by: Option<String>,
}

/// A count to add to one scope's signal in one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalDelta {
    pub scope_kind: &'static str,
    pub scope_id: String,
    pub signal: String,
    pub minute: i64,
    pub workspace_id: Option<String>,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SignalRow {
    pub scope_kind: String,
    pub scope_id: String,
    pub signal: String,
    pub minute: i64,
    pub workspace_id: Option<String>,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct BaselineRow {
    pub detector: String,
    pub scope_kind: String,
    pub scope_id: String,
    pub mean: f64,
    pub minute: i64,
    pub samples: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AlertRow {
    pub id: String,
    pub workspace_id: Option<String>,
    pub detector: String,
    pub severity: String,
    pub entity_kind: String,
    pub entity_id: String,
    pub minute: i64,
    /// JSON: counts and thresholds, never content.
    pub evidence: String,
    pub created_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
}

pub(crate) const SUSPENSION_COLUMNS: &str = "id, workspace_id, target_kind, target_id, reason, source, alert_id, \
     created_by, created_at, lifted_at, lifted_by";
pub(crate) const ALERT_COLUMNS: &str = "id, workspace_id, detector, severity, entity_kind, entity_id, minute, \
     evidence, created_at, acknowledged_at, acknowledged_by";

#[async_trait]
pub trait TrustStore {
    /// Records a suspension; `Conflict` when the target is already suspended.
    async fn suspend(&self, s: &SuspensionRow, audit: NewAuditEvent) -> Result<()>;
    /// Lifts the target's active suspension; `NotFound` when there is none.
    async fn lift_suspension(
        &self,
        target_kind: &str,
        target_id: &str,
        by: &str,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<SuspensionRow>;
    /// `(target_kind, target_id)` of every active suspension.
    async fn active_suspensions(&self) -> Result<Vec<(String, String)>>;
    /// The target's active suspension, if any.
    async fn active_suspension(
        &self,
        target_kind: &str,
        target_id: &str,
    ) -> Result<Option<SuspensionRow>>;
    /// Suspensions, newest first; only one workspace's when given.
    async fn list_suspensions(
        &self,
        workspace_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SuspensionRow>>;

    /// Adds counts (one upsert per chunk of rows).
    async fn add_signals(&self, deltas: &[SignalDelta]) -> Result<()>;
    /// The counters of one scope kind from minute `from` through `to`.
    async fn signals_between(&self, scope_kind: &str, from: i64, to: i64)
    -> Result<Vec<SignalRow>>;
    /// Deletes counters older than `before` (unix minutes).
    async fn purge_signals(&self, before: i64) -> Result<u64>;
    /// Counts counters older than `before`, for a dry run of the purge.
    async fn count_signals_before(&self, before: i64) -> Result<u64>;

    async fn baselines(&self, detector: &str) -> Result<Vec<BaselineRow>>;
    async fn save_baselines(&self, rows: &[BaselineRow]) -> Result<()>;
    /// The last minute evaluated.
    async fn detector_cursor(&self) -> Result<i64>;
    /// Moves the cursor from `from` to `to`; false when another node did.
    async fn advance_detector_cursor(&self, from: i64, to: i64) -> Result<bool>;
    /// Records that minutes through `to` were evaluated.
    async fn finish_detector_minutes(&self, to: i64) -> Result<()>;
    /// The last minute whose evaluation finished.
    async fn detector_done(&self) -> Result<i64>;

    /// Records a finding with its audit event and customer event; false when
    /// the same detector already reported the entity for that minute.
    async fn insert_alert(
        &self,
        alert: &AlertRow,
        audit: NewAuditEvent,
        event: Option<NewCustomerEvent>,
    ) -> Result<bool>;
    async fn list_alerts(
        &self,
        workspace_id: Option<&str>,
        open_only: bool,
        limit: u32,
    ) -> Result<Vec<AlertRow>>;
    /// `NotFound` unless the alert exists (in the workspace, when given) and is open.
    async fn acknowledge_alert(
        &self,
        workspace_id: Option<&str>,
        id: &str,
        by: &str,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<AlertRow>;
    async fn open_alert_count(&self) -> Result<i64>;
    /// Outbox rows and the earliest due time among them, for `/metrics`.
    async fn outbox_backlog(&self) -> Result<(i64, Option<DateTime<Utc>>)>;

    /// Whether high-severity findings may suspend the workspace's keys and channels.
    async fn auto_suspend(&self, workspace_id: &str) -> Result<bool>;
    async fn set_auto_suspend(
        &self,
        workspace_id: &str,
        on: bool,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// The workspace's owners' user ids and sealed emails (AAD `(users, email, id)`).
    async fn workspace_owners(&self, workspace_id: &str) -> Result<Vec<(String, Vec<u8>)>>;
}

/// Implements [`TrustStore`] for a backend with `reads()`, `writes()`,
/// `write_tx()`, its `append_audit` and `insert_events`.
macro_rules! trust_store_impl {
    ($store:ty, $append:path, $insert_events:path, $share_lock:literal) => {
        #[async_trait::async_trait]
        impl $crate::trust::TrustStore for $store {
            async fn suspend(
                &self,
                s: &$crate::trust::SuspensionRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "INSERT INTO suspensions (id, workspace_id, target_kind, target_id, reason, source, alert_id,
                        created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT DO NOTHING",
                )
                .bind(&s.id)
                .bind(&s.workspace_id)
                .bind(&s.target_kind)
                .bind(&s.target_id)
                .bind(&s.reason)
                .bind(&s.source)
                .bind(&s.alert_id)
                .bind(&s.created_by)
                .bind(s.created_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::Conflict("already suspended".into()));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn lift_suspension(
                &self,
                target_kind: &str,
                target_id: &str,
                by: &str,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<$crate::trust::SuspensionRow> {
                let mut tx = self.write_tx().await?;
                let sql = format!(
                    "UPDATE suspensions SET lifted_at = $3, lifted_by = $4
                     WHERE target_kind = $1 AND target_id = $2 AND lifted_at IS NULL RETURNING {}",
                    $crate::trust::SUSPENSION_COLUMNS
                );
                let row: Option<$crate::trust::SuspensionRow> = sqlx::query_as(&sql)
                    .bind(target_kind)
                    .bind(target_id)
                    .bind(now)
                    .bind(by)
                    .fetch_optional(&mut *tx)
                    .await?;
                let row = row.ok_or($crate::StoreError::NotFound("suspension"))?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn active_suspensions(&self) -> $crate::Result<Vec<(String, String)>> {
                Ok(sqlx::query_as(
                    "SELECT target_kind, target_id FROM suspensions WHERE lifted_at IS NULL LIMIT 100000",
                )
                .fetch_all(self.reads())
                .await?)
            }

            async fn active_suspension(
                &self,
                target_kind: &str,
                target_id: &str,
            ) -> $crate::Result<Option<$crate::trust::SuspensionRow>> {
                let sql = format!(
                    "SELECT {} FROM suspensions WHERE target_kind = $1 AND target_id = $2 AND lifted_at IS NULL",
                    $crate::trust::SUSPENSION_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(target_kind)
                    .bind(target_id)
                    .fetch_optional(self.reads())
                    .await?)
            }

            async fn list_suspensions(
                &self,
                workspace_id: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::trust::SuspensionRow>> {
                let sql = format!(
                    "SELECT {} FROM suspensions WHERE ($1 IS NULL OR workspace_id = $1)
                     ORDER BY created_at DESC, id DESC LIMIT $2",
                    $crate::trust::SUSPENSION_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(limit as i64)
                    .fetch_all(self.reads())
                    .await?)
            }

            async fn add_signals(&self, deltas: &[$crate::trust::SignalDelta]) -> $crate::Result<()> {
                if deltas.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write_tx().await?;
                // Counts for a workspace deleted while they were batched are dropped.
                // The share lock orders this with the purge's delete of the workspace
                // row: either the purge waits and then deletes these counts, or this
                // waits and finds the workspace gone (PostgreSQL; SQLite has one writer).
                let mut workspaces: Vec<&str> =
                    deltas.iter().filter_map(|d| d.workspace_id.as_deref()).collect();
                workspaces.sort_unstable();
                workspaces.dedup();
                let mut living = std::collections::HashSet::new();
                for ws in workspaces {
                    let found: Option<String> = sqlx::query_scalar(concat!(
                        "SELECT id FROM workspaces WHERE id = $1",
                        $share_lock
                    ))
                    .bind(ws)
                    .fetch_optional(&mut *tx)
                    .await?;
                    living.extend(found);
                }
                let kept: Vec<&$crate::trust::SignalDelta> = deltas
                    .iter()
                    .filter(|d| d.workspace_id.as_ref().is_none_or(|w| living.contains(w)))
                    .collect();
                for range in $crate::bulk::chunks(kept.len()) {
                    let sql = format!(
                        "INSERT INTO signal_counters (scope_kind, scope_id, signal, minute, workspace_id, count)
                         VALUES {} ON CONFLICT (scope_kind, scope_id, signal, minute)
                         DO UPDATE SET count = signal_counters.count + excluded.count",
                        $crate::bulk::values(6, range.len())
                    );
                    let mut q = sqlx::query(&sql);
                    for d in &kept[range] {
                        q = q
                            .bind(d.scope_kind)
                            .bind(&d.scope_id)
                            .bind(&d.signal)
                            .bind(d.minute)
                            .bind(&d.workspace_id)
                            .bind(d.count);
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn signals_between(
                &self,
                scope_kind: &str,
                from: i64,
                to: i64,
            ) -> $crate::Result<Vec<$crate::trust::SignalRow>> {
                Ok(sqlx::query_as(
                    "SELECT scope_kind, scope_id, signal, minute, workspace_id, count FROM signal_counters
                     WHERE scope_kind = $1 AND minute >= $2 AND minute <= $3 ORDER BY minute LIMIT 200000",
                )
                .bind(scope_kind)
                .bind(from)
                .bind(to)
                .fetch_all(self.reads())
                .await?)
            }

            async fn purge_signals(&self, before: i64) -> $crate::Result<u64> {
                Ok(sqlx::query("DELETE FROM signal_counters WHERE minute < $1")
                    .bind(before)
                    .execute(self.writes())
                    .await?
                    .rows_affected())
            }

            async fn count_signals_before(&self, before: i64) -> $crate::Result<u64> {
                let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM signal_counters WHERE minute < $1")
                    .bind(before)
                    .fetch_one(self.reads())
                    .await?;
                Ok(n as u64)
            }

            async fn baselines(&self, detector: &str) -> $crate::Result<Vec<$crate::trust::BaselineRow>> {
                Ok(sqlx::query_as(
                    "SELECT detector, scope_kind, scope_id, mean, minute, samples FROM detector_baselines
                     WHERE detector = $1 LIMIT 200000",
                )
                .bind(detector)
                .fetch_all(self.reads())
                .await?)
            }

            async fn save_baselines(&self, rows: &[$crate::trust::BaselineRow]) -> $crate::Result<()> {
                if rows.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write_tx().await?;
                for range in $crate::bulk::chunks(rows.len()) {
                    let sql = format!(
                        "INSERT INTO detector_baselines (detector, scope_kind, scope_id, mean, minute, samples)
                         VALUES {} ON CONFLICT (detector, scope_kind, scope_id)
                         DO UPDATE SET mean = excluded.mean, minute = excluded.minute, samples = excluded.samples",
                        $crate::bulk::values(6, range.len())
                    );
                    let mut q = sqlx::query(&sql);
                    for b in &rows[range] {
                        q = q
                            .bind(&b.detector)
                            .bind(&b.scope_kind)
                            .bind(&b.scope_id)
                            .bind(b.mean)
                            .bind(b.minute)
                            .bind(b.samples);
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn detector_cursor(&self) -> $crate::Result<i64> {
                let (m,): (i64,) = sqlx::query_as("SELECT minute FROM _detector_cursor WHERE id = 1")
                    .fetch_one(self.reads())
                    .await?;
                Ok(m)
            }

            async fn advance_detector_cursor(&self, from: i64, to: i64) -> $crate::Result<bool> {
                Ok(sqlx::query("UPDATE _detector_cursor SET minute = $2 WHERE id = 1 AND minute = $1")
                    .bind(from)
                    .bind(to)
                    .execute(self.writes())
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn finish_detector_minutes(&self, to: i64) -> $crate::Result<()> {
                sqlx::query("UPDATE _detector_cursor SET done = $1 WHERE id = 1 AND done < $1")
                    .bind(to)
                    .execute(self.writes())
                    .await?;
                Ok(())
            }

            async fn detector_done(&self) -> $crate::Result<i64> {
                let (m,): (i64,) = sqlx::query_as("SELECT done FROM _detector_cursor WHERE id = 1")
                    .fetch_one(self.reads())
                    .await?;
                Ok(m)
            }

            async fn insert_alert(
                &self,
                a: &$crate::trust::AlertRow,
                audit: waypost_core::NewAuditEvent,
                event: Option<$crate::events::NewCustomerEvent>,
            ) -> $crate::Result<bool> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "INSERT INTO security_alerts (id, workspace_id, detector, severity, entity_kind, entity_id, minute,
                        evidence, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                )
                .bind(&a.id)
                .bind(&a.workspace_id)
                .bind(&a.detector)
                .bind(&a.severity)
                .bind(&a.entity_kind)
                .bind(&a.entity_id)
                .bind(a.minute)
                .bind(&a.evidence)
                .bind(a.created_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    return Ok(false);
                }
                $append(&mut tx, audit).await?;
                if let Some(e) = event {
                    $insert_events(&mut *tx, std::slice::from_ref(&e)).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn list_alerts(
                &self,
                workspace_id: Option<&str>,
                open_only: bool,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::trust::AlertRow>> {
                let sql = format!(
                    "SELECT {} FROM security_alerts WHERE ($1 IS NULL OR workspace_id = $1)
                       AND ($2 = FALSE OR acknowledged_at IS NULL)
                     ORDER BY created_at DESC, id DESC LIMIT $3",
                    $crate::trust::ALERT_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(open_only)
                    .bind(limit as i64)
                    .fetch_all(self.reads())
                    .await?)
            }

            async fn acknowledge_alert(
                &self,
                workspace_id: Option<&str>,
                id: &str,
                by: &str,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<$crate::trust::AlertRow> {
                let mut tx = self.write_tx().await?;
                let sql = format!(
                    "UPDATE security_alerts SET acknowledged_at = $3, acknowledged_by = $4
                     WHERE id = $1 AND ($2 IS NULL OR workspace_id = $2) AND acknowledged_at IS NULL
                     RETURNING {}",
                    $crate::trust::ALERT_COLUMNS
                );
                let row: Option<$crate::trust::AlertRow> = sqlx::query_as(&sql)
                    .bind(id)
                    .bind(workspace_id)
                    .bind(now)
                    .bind(by)
                    .fetch_optional(&mut *tx)
                    .await?;
                let row = row.ok_or($crate::StoreError::NotFound("open security alert"))?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn open_alert_count(&self) -> $crate::Result<i64> {
                let (n,): (i64,) =
                    sqlx::query_as("SELECT count(*) FROM security_alerts WHERE acknowledged_at IS NULL")
                        .fetch_one(self.reads())
                        .await?;
                Ok(n)
            }

            async fn outbox_backlog(
                &self,
            ) -> $crate::Result<(i64, Option<chrono::DateTime<chrono::Utc>>)> {
                Ok(sqlx::query_as("SELECT count(*), min(next_attempt_at) FROM outbox")
                    .fetch_one(self.reads())
                    .await?)
            }

            async fn auto_suspend(&self, workspace_id: &str) -> $crate::Result<bool> {
                let row: Option<(bool,)> = sqlx::query_as("SELECT auto_suspend FROM workspaces WHERE id = $1")
                    .bind(workspace_id)
                    .fetch_optional(self.reads())
                    .await?;
                Ok(row.is_some_and(|(b,)| b))
            }

            async fn set_auto_suspend(
                &self,
                workspace_id: &str,
                on: bool,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("UPDATE workspaces SET auto_suspend = $2 WHERE id = $1")
                    .bind(workspace_id)
                    .bind(on)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("workspace"));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn workspace_owners(&self, workspace_id: &str) -> $crate::Result<Vec<(String, Vec<u8>)>> {
                Ok(sqlx::query_as(
                    "SELECT u.id, u.email FROM memberships m JOIN users u ON u.id = m.user_id
                     WHERE m.workspace_id = $1 AND m.role = 'owner' ORDER BY m.created_at, u.id LIMIT 100",
                )
                .bind(workspace_id)
                .fetch_all(self.reads())
                .await?)
            }
        }
    };
}
pub(crate) use trust_store_impl;
