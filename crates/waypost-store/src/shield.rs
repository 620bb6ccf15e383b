//! Usage records of the shield's scan API and their storage trait. A record is metadata
//! only: who scanned, when, the verdict's label and score, and the sizes of the inputs.
//! The scanned text, URL and phone number never reach the database.
//!
//! The SQL is written once with `$n` placeholders and instantiated for both backends by
//! `shield_store_impl!`, like the identity queries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;

/// Rows written per `INSERT` statement; a batch request scans at most 100 messages, so one
/// request is one statement, far below either backend's bind-parameter limit.
pub const SCANS_PER_STATEMENT: usize = 100;

/// One scanned message.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ShieldScanRecord {
    pub id: String,
    pub workspace_id: String,
    /// `user` or `api_key` (see `waypost_core::audit::Actor`).
    pub actor_type: String,
    pub actor_id: Option<String>,
    /// `ham`, `spam` or `smishing`.
    pub label: String,
    pub score: f64,
    /// Input sizes in characters; 0 when the field was absent.
    pub text_len: i64,
    pub url_len: i64,
    pub phone_len: i64,
    /// Whether the message came in a batch request.
    pub batch: bool,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait ShieldStore {
    /// Records the scans of one request together, in one transaction.
    async fn record_shield_scans(&self, scans: &[ShieldScanRecord]) -> Result<()>;
    /// A workspace's most recent records, newest first, at most `limit`.
    async fn recent_shield_scans(
        &self,
        workspace_id: &str,
        limit: u32,
    ) -> Result<Vec<ShieldScanRecord>>;
    /// Deletes up to `limit` records created before `before`, oldest first; returns how many.
    async fn purge_shield_scans(&self, before: DateTime<Utc>, limit: u32) -> Result<u64>;
}

const COLUMNS: &str = "id, workspace_id, actor_type, actor_id, label, score, text_len, url_len, \
     phone_len, batch, created_at";
const COLUMN_COUNT: usize = 11;

/// `INSERT … VALUES ($1, …, $11), ($12, …)` for `rows` rows.
pub(crate) fn insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=COLUMN_COUNT)
                .map(|c| format!("${}", r * COLUMN_COUNT + c))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO shield_scans ({COLUMNS}) VALUES {}",
        values.join(", ")
    )
}

pub(crate) fn select_sql(filter: &str) -> String {
    format!("SELECT {COLUMNS} FROM shield_scans WHERE {filter}")
}

/// Implements [`ShieldStore`] for a backend type with inherent `reads()`, `writes()` and
/// `write_tx()`, and `write_usage` in scope (scans are counted with their records).
macro_rules! shield_store_impl {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::shield::ShieldStore for $store {
            async fn record_shield_scans(
                &self,
                scans: &[$crate::shield::ShieldScanRecord],
            ) -> $crate::Result<()> {
                if scans.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write_tx().await?;
                for chunk in scans.chunks($crate::shield::SCANS_PER_STATEMENT) {
                    let sql = $crate::shield::insert_sql(chunk.len());
                    let mut query = sqlx::query(&sql);
                    for s in chunk {
                        query = query
                            .bind(&s.id)
                            .bind(&s.workspace_id)
                            .bind(&s.actor_type)
                            .bind(&s.actor_id)
                            .bind(&s.label)
                            .bind(s.score)
                            .bind(s.text_len)
                            .bind(s.url_len)
                            .bind(s.phone_len)
                            .bind(s.batch)
                            .bind(s.created_at);
                    }
                    query.execute(&mut *tx).await?;
                }
                let mut usage = $crate::usage::UsageBatch::default();
                for s in scans {
                    usage.add(&s.workspace_id, "", s.created_at, waypost_core::usage::SHIELD_SCANS, 1);
                }
                write_usage(&mut *tx, &usage).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn recent_shield_scans(
                &self,
                workspace_id: &str,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::shield::ShieldScanRecord>> {
                let sql = $crate::shield::select_sql(
                    "workspace_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(limit as i64)
                    .fetch_all(self.reads())
                    .await?)
            }

            async fn purge_shield_scans(
                &self,
                before: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<u64> {
                let done = sqlx::query(
                    "DELETE FROM shield_scans WHERE id IN
                        (SELECT id FROM shield_scans WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
                )
                .bind(before)
                .bind(limit as i64)
                .execute(self.writes())
                .await?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(crate) use shield_store_impl;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_numbers_parameters_across_rows() {
        let sql = insert_sql(2);
        assert!(sql.contains("($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"));
        assert!(sql.ends_with("($12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"));
    }
}
