//! Operator tokens: credentials of the platform's own administrators, kept
//! apart from workspace API keys. Stored as a keyed hash; every change is
//! audited on the platform (`system`) chain in the same transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OperatorTokenRecord {
    pub id: String,
    pub name: String,
    /// `wpo_` plus six characters; safe to show.
    pub display_prefix: String,
    pub token_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait OperatorStore {
    async fn create_operator_token(
        &self,
        token: &OperatorTokenRecord,
        audit: NewAuditEvent,
    ) -> Result<()>;
    async fn find_operator_token(&self, token_hash: &[u8]) -> Result<Option<OperatorTokenRecord>>;
    /// Every token, newest first (operators are few; bounded anyway).
    async fn list_operator_tokens(&self) -> Result<Vec<OperatorTokenRecord>>;
    /// `NotFound` unless a live token has this id.
    async fn revoke_operator_token(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;
    async fn touch_operator_token(&self, id: &str, now: DateTime<Utc>) -> Result<()>;
}

const COLUMNS: &str = "id, name, display_prefix, token_hash, created_at, last_used_at, revoked_at";

pub(crate) fn select(filter: &str) -> String {
    format!("SELECT {COLUMNS} FROM operator_tokens {filter}")
}

macro_rules! operator_store_impl {
    ($store:ty, $append_audit:path) => {
        #[async_trait::async_trait]
        impl $crate::operators::OperatorStore for $store {
            async fn create_operator_token(
                &self,
                t: &$crate::operators::OperatorTokenRecord,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO operator_tokens (id, name, display_prefix, token_hash, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&t.id)
                .bind(&t.name)
                .bind(&t.display_prefix)
                .bind(&t.token_hash)
                .bind(t.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| $crate::StoreError::conflict_on_unique(e, "operator token exists"))?;
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_operator_token(
                &self,
                token_hash: &[u8],
            ) -> $crate::Result<Option<$crate::operators::OperatorTokenRecord>> {
                Ok(sqlx::query_as(&$crate::operators::select("WHERE token_hash = $1"))
                    .bind(token_hash)
                    .fetch_optional(self.reads())
                    .await?)
            }

            async fn list_operator_tokens(
                &self,
            ) -> $crate::Result<Vec<$crate::operators::OperatorTokenRecord>> {
                Ok(sqlx::query_as(&$crate::operators::select(
                    "ORDER BY created_at DESC, id DESC LIMIT 1000",
                ))
                .fetch_all(self.reads())
                .await?)
            }

            async fn revoke_operator_token(
                &self,
                id: &str,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE operator_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("live operator token"));
                }
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn touch_operator_token(
                &self,
                id: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                sqlx::query("UPDATE operator_tokens SET last_used_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(self.writes())
                    .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use operator_store_impl;
