//! The security incident register: incidents recorded by platform operators,
//! the workspaces each affects, and reads for operators (everything) and for
//! workspaces (only incidents that affect them). Every write carries its
//! customer events and audit events and commits them together.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;
use crate::events::NewCustomerEvent;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct IncidentRow {
    pub id: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// `open`, `investigating`, `contained` or `closed`.
    pub status: String,
    /// Encrypted (associated data: `incidents`, `description`, id).
    pub description: Vec<u8>,
    /// Encrypted like `description`; set when closed, if given.
    pub resolution: Option<Vec<u8>>,
    pub detected_at: DateTime<Utc>,
    /// When notification is due: detected_at + 72 h.
    pub deadline_at: DateTime<Utc>,
    pub notified_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The operator token that recorded it.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Increases by one with every write; updates compare it.
    pub version: i64,
}

/// One write of the register: the incident's new state, its full set of
/// affected workspaces, and what to record alongside.
#[derive(Debug, Clone)]
pub struct IncidentWrite {
    pub incident: IncidentRow,
    pub workspaces: Vec<String>,
    pub events: Vec<NewCustomerEvent>,
    pub audits: Vec<NewAuditEvent>,
}

/// Filters of incident lists; `None` means any. Ascending by id after `after`.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub status: Option<String>,
    pub after: Option<String>,
}

#[async_trait]
pub trait IncidentStore {
    async fn create_incident(&self, write: &IncidentWrite) -> Result<()>;
    /// Applies `write` if the stored incident has version `write.incident.version - 1`
    /// and is not closed; `Conflict` otherwise, `NotFound` when there is none.
    async fn update_incident(&self, write: &IncidentWrite) -> Result<()>;
    async fn get_incident(&self, id: &str) -> Result<IncidentRow>;
    /// `(incident_id, workspace_id)` of every affected workspace of these incidents, sorted.
    async fn incident_workspaces(&self, ids: &[String]) -> Result<Vec<(String, String)>>;
    async fn list_incidents(&self, filter: &IncidentFilter, limit: u32)
    -> Result<Vec<IncidentRow>>;
    /// Incidents affecting `workspace_id` only.
    async fn workspace_incidents(
        &self,
        workspace_id: &str,
        filter: &IncidentFilter,
        limit: u32,
    ) -> Result<Vec<IncidentRow>>;
    /// `NotFound` unless the incident affects `workspace_id`.
    async fn workspace_incident(&self, workspace_id: &str, id: &str) -> Result<IncidentRow>;
    /// `(id, deadline_at)` of every incident not yet closed, oldest deadline first.
    async fn open_incident_deadlines(&self, limit: u32) -> Result<Vec<(String, DateTime<Utc>)>>;
    /// Which of `ids` name existing workspaces.
    async fn existing_workspace_ids(&self, ids: &[String]) -> Result<Vec<String>>;
}

const COLUMNS: &str =
    "i.id, i.severity, i.status, i.description, i.resolution, i.detected_at, i.deadline_at,
    i.notified_at, i.closed_at, i.created_by, i.created_at, i.updated_at, i.version";

/// `SELECT … FROM incidents i {join} WHERE {filter}` plus the list filter's
/// conditions, numbered from `$first`.
pub(crate) fn list_sql(join: &str, filter: &str, f: &IncidentFilter, first: usize) -> String {
    let mut sql = format!("SELECT {COLUMNS} FROM incidents i {join} WHERE {filter}");
    let mut n = first;
    if f.status.is_some() {
        sql.push_str(&format!(" AND i.status = ${n}"));
        n += 1;
    }
    if f.after.is_some() {
        sql.push_str(&format!(" AND i.id > ${n}"));
        n += 1;
    }
    sql.push_str(&format!(" ORDER BY i.id LIMIT ${n}"));
    sql
}

pub(crate) fn one_sql(join: &str, filter: &str) -> String {
    format!("SELECT {COLUMNS} FROM incidents i {join} WHERE {filter}")
}

macro_rules! incident_store_impl {
    ($store:ty, $conn:ty, $append_audit:path, $insert_events:path) => {
        async fn replace_incident_workspaces(
            conn: &mut $conn,
            id: &str,
            workspaces: &[String],
        ) -> $crate::Result<()> {
            sqlx::query("DELETE FROM incident_workspaces WHERE incident_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            for ws in workspaces {
                sqlx::query("INSERT INTO incident_workspaces (incident_id, workspace_id) VALUES ($1, $2)")
                    .bind(id)
                    .bind(ws)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        #[async_trait::async_trait]
        impl $crate::incidents::IncidentStore for $store {
            async fn create_incident(
                &self,
                w: &$crate::incidents::IncidentWrite,
            ) -> $crate::Result<()> {
                let i = &w.incident;
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO incidents (id, severity, status, description, resolution, detected_at, deadline_at,
                        notified_at, closed_at, created_by, created_at, updated_at, version)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(&i.id)
                .bind(&i.severity)
                .bind(&i.status)
                .bind(&i.description)
                .bind(&i.resolution)
                .bind(i.detected_at)
                .bind(i.deadline_at)
                .bind(i.notified_at)
                .bind(i.closed_at)
                .bind(&i.created_by)
                .bind(i.created_at)
                .bind(i.updated_at)
                .bind(i.version)
                .execute(&mut *tx)
                .await
                .map_err(|e| $crate::StoreError::conflict_on_unique(e, "incident exists"))?;
                replace_incident_workspaces(&mut *tx, &i.id, &w.workspaces).await?;
                $insert_events(&mut *tx, &w.events).await?;
                for audit in w.audits.iter().cloned() {
                    $append_audit(&mut *tx, audit).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn update_incident(
                &self,
                w: &$crate::incidents::IncidentWrite,
            ) -> $crate::Result<()> {
                let i = &w.incident;
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE incidents SET severity = $2, status = $3, description = $4, resolution = $5,
                        notified_at = $6, closed_at = $7, updated_at = $8, version = $9
                     WHERE id = $1 AND version = $10 AND status <> 'closed'",
                )
                .bind(&i.id)
                .bind(&i.severity)
                .bind(&i.status)
                .bind(&i.description)
                .bind(&i.resolution)
                .bind(i.notified_at)
                .bind(i.closed_at)
                .bind(i.updated_at)
                .bind(i.version)
                .bind(i.version - 1)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    let exists: Option<String> = sqlx::query_scalar("SELECT status FROM incidents WHERE id = $1")
                        .bind(&i.id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    return Err(match exists {
                        None => $crate::StoreError::NotFound("incident"),
                        Some(s) if s == "closed" => {
                            $crate::StoreError::Conflict("the incident is closed".into())
                        }
                        Some(_) => $crate::StoreError::Conflict(
                            "the incident changed while this request was applied; read it again and retry".into(),
                        ),
                    });
                }
                replace_incident_workspaces(&mut *tx, &i.id, &w.workspaces).await?;
                $insert_events(&mut *tx, &w.events).await?;
                for audit in w.audits.iter().cloned() {
                    $append_audit(&mut *tx, audit).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn get_incident(&self, id: &str) -> $crate::Result<$crate::incidents::IncidentRow> {
                sqlx::query_as(&$crate::incidents::one_sql("", "i.id = $1"))
                    .bind(id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("incident"))
            }

            async fn incident_workspaces(
                &self,
                ids: &[String],
            ) -> $crate::Result<Vec<(String, String)>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT incident_id, workspace_id FROM incident_workspaces WHERE incident_id IN ({})
                     ORDER BY incident_id, workspace_id",
                    $crate::placeholders(1, ids.len())
                );
                let mut q = sqlx::query_as(&sql);
                for id in ids {
                    q = q.bind(id);
                }
                Ok(q.fetch_all(self.reads()).await?)
            }

            async fn list_incidents(
                &self,
                f: &$crate::incidents::IncidentFilter,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::incidents::IncidentRow>> {
                let sql = $crate::incidents::list_sql("", "1 = 1", f, 1);
                let mut q = sqlx::query_as(&sql);
                if let Some(s) = &f.status {
                    q = q.bind(s);
                }
                if let Some(a) = &f.after {
                    q = q.bind(a);
                }
                Ok(q.bind(limit as i64).fetch_all(self.reads()).await?)
            }

            async fn workspace_incidents(
                &self,
                workspace_id: &str,
                f: &$crate::incidents::IncidentFilter,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::incidents::IncidentRow>> {
                let sql = $crate::incidents::list_sql(
                    "JOIN incident_workspaces w ON w.incident_id = i.id",
                    "w.workspace_id = $1",
                    f,
                    2,
                );
                let mut q = sqlx::query_as(&sql).bind(workspace_id);
                if let Some(s) = &f.status {
                    q = q.bind(s);
                }
                if let Some(a) = &f.after {
                    q = q.bind(a);
                }
                Ok(q.bind(limit as i64).fetch_all(self.reads()).await?)
            }

            async fn workspace_incident(
                &self,
                workspace_id: &str,
                id: &str,
            ) -> $crate::Result<$crate::incidents::IncidentRow> {
                sqlx::query_as(&$crate::incidents::one_sql(
                    "JOIN incident_workspaces w ON w.incident_id = i.id",
                    "w.workspace_id = $1 AND i.id = $2",
                ))
                .bind(workspace_id)
                .bind(id)
                .fetch_optional(self.reads())
                .await?
                .ok_or($crate::StoreError::NotFound("incident"))
            }

            async fn open_incident_deadlines(
                &self,
                limit: u32,
            ) -> $crate::Result<Vec<(String, chrono::DateTime<chrono::Utc>)>> {
                Ok(sqlx::query_as(
                    "SELECT id, deadline_at FROM incidents WHERE status <> 'closed'
                     ORDER BY deadline_at, id LIMIT $1",
                )
                .bind(limit as i64)
                .fetch_all(self.reads())
                .await?)
            }

            async fn existing_workspace_ids(&self, ids: &[String]) -> $crate::Result<Vec<String>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT id FROM workspaces WHERE id IN ({})",
                    $crate::placeholders(1, ids.len())
                );
                let mut q = sqlx::query_scalar(&sql);
                for id in ids {
                    q = q.bind(id);
                }
                Ok(q.fetch_all(self.reads()).await?)
            }
        }
    };
}
pub(crate) use incident_store_impl;
