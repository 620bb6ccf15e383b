//! Filtered, paginated reads of one audit chain (SQL shared by both backends).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::AuditEvent;

use crate::Result;

/// Which events of a chain to return; every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub chain: String,
    /// Events with `seq` greater than this (the cursor).
    pub after_seq: i64,
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub target_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: u32,
}

#[async_trait]
pub trait AuditQueryStore {
    async fn search_audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>>;
}

macro_rules! audit_query_store_impl {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::audit_query::AuditQueryStore for $store {
            async fn search_audit_events(
                &self,
                f: &$crate::audit_query::AuditFilter,
            ) -> $crate::Result<Vec<waypost_core::AuditEvent>> {
                // Optional filters become `($n IS NULL OR col = $n)`, so the statement text is fixed.
                let sql = "SELECT id, chain, seq, workspace_id, actor_type, actor_id, action, target_type, target_id,
                        ip, user_agent, occurred_at, details, prev_hash, hash
                    FROM audit_events
                    WHERE chain = $1 AND seq > $2
                      AND ($3 IS NULL OR actor_id = $3)
                      AND ($4 IS NULL OR action = $4)
                      AND ($5 IS NULL OR target_id = $5)
                      AND ($6 IS NULL OR occurred_at >= $6)
                      AND ($7 IS NULL OR occurred_at < $7)
                    ORDER BY seq LIMIT $8";
                sqlx::query_as::<_, $crate::model::AuditRow>(sql)
                    .bind(&f.chain)
                    .bind(f.after_seq)
                    .bind(&f.actor_id)
                    .bind(&f.action)
                    .bind(&f.target_id)
                    .bind(f.since)
                    .bind(f.until)
                    .bind(f.limit as i64)
                    .fetch_all(self.reads())
                    .await?
                    .into_iter()
                    .map(waypost_core::AuditEvent::try_from)
                    .collect()
            }
        }
    };
}
pub(crate) use audit_query_store_impl;
