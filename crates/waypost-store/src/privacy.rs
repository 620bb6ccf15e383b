//! Data-subject requests: the register, and erasure of everything about one
//! contact in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;

/// One entry of the request register.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PrivacyRequestRow {
    pub id: String,
    pub workspace_id: String,
    /// `export`, `rectify`, `restrict`, `unrestrict` or `erase`.
    pub kind: String,
    /// Hex HMAC of the E.164 number under the blind-index key.
    pub subject_hash: String,
    pub actor_type: String,
    pub actor_id: Option<String>,
    /// `completed` or `not_found`.
    pub outcome: String,
    /// JSON: counts and fields, never personal data.
    pub details: String,
    pub created_at: DateTime<Utc>,
}

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureReport {
    pub messages: u64,
    pub pending_cancelled: u64,
    pub events: u64,
    pub consents: u64,
    /// Media files the person sent, with any kept copies.
    pub media: u64,
}

#[async_trait]
pub trait PrivacyStore {
    /// Records a request (and its audit event) in one transaction.
    async fn record_privacy_request(
        &self,
        request: &PrivacyRequestRow,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// The workspace's register, newest first.
    async fn privacy_requests(
        &self,
        workspace_id: &str,
        limit: u32,
    ) -> Result<Vec<PrivacyRequestRow>>;
    /// Destroys the contact's content key, cancels its pending sends and deletes
    /// the contact, its consent history, messages, media files and the customer
    /// events about them, recording the request, all in one transaction.
    async fn erase_contact(
        &self,
        workspace_id: &str,
        contact_id: &str,
        request: &PrivacyRequestRow,
        audit: NewAuditEvent,
    ) -> Result<ErasureReport>;
}

macro_rules! privacy_store_impl {
    ($store:ty, $append_audit:path) => {
        #[async_trait::async_trait]
        impl $crate::privacy::PrivacyStore for $store {
            async fn record_privacy_request(
                &self,
                r: &$crate::privacy::PrivacyRequestRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                insert_privacy_request(&mut *tx, r).await?;
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn privacy_requests(
                &self,
                workspace_id: &str,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::privacy::PrivacyRequestRow>> {
                Ok(sqlx::query_as(
                    "SELECT id, workspace_id, kind, subject_hash, actor_type, actor_id, outcome, details, created_at
                     FROM privacy_requests WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .bind(workspace_id)
                .bind(limit as i64)
                .fetch_all(self.reads())
                .await?)
            }

            async fn erase_contact(
                &self,
                workspace_id: &str,
                contact_id: &str,
                r: &$crate::privacy::PrivacyRequestRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<$crate::privacy::ErasureReport> {
                let mut tx = self.write_tx().await?;
                // Shred first: even if a row survives somewhere (a backup), its content stays unreadable.
                let shredded = sqlx::query(
                    "UPDATE contacts SET content_key = NULL, name = NULL, attributes = NULL
                     WHERE workspace_id = $1 AND id = $2",
                )
                .bind(workspace_id)
                .bind(contact_id)
                .execute(&mut *tx)
                .await?;
                if shredded.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound("contact"));
                }
                let pending = sqlx::query("DELETE FROM outbox WHERE workspace_id = $1 AND contact_id = $2")
                    .bind(workspace_id)
                    .bind(contact_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let events = sqlx::query(
                    "DELETE FROM customer_events WHERE workspace_id = $1 AND (subject_id = $2
                        OR subject_id IN (SELECT id FROM messages WHERE workspace_id = $1 AND contact_id = $2)
                        OR subject_id IN (SELECT id FROM conversations WHERE workspace_id = $1 AND contact_id = $2))",
                )
                .bind(workspace_id)
                .bind(contact_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // Labels and notes go with their conversations.
                sqlx::query("DELETE FROM conversations WHERE workspace_id = $1 AND contact_id = $2")
                    .bind(workspace_id)
                    .bind(contact_id)
                    .execute(&mut *tx)
                    .await?;
                let media = sqlx::query("DELETE FROM media WHERE workspace_id = $1 AND contact_id = $2")
                    .bind(workspace_id)
                    .bind(contact_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let messages = sqlx::query("DELETE FROM messages WHERE workspace_id = $1 AND contact_id = $2")
                    .bind(workspace_id)
                    .bind(contact_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let consents =
                    sqlx::query("DELETE FROM contact_consents WHERE workspace_id = $1 AND contact_id = $2")
                        .bind(workspace_id)
                        .bind(contact_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                // Tags and attribute indexes (blind indexes of the person's values) go;
                // import results keep their outcome without the contact.
                for sql in [
                    "DELETE FROM contact_tags WHERE workspace_id = $1 AND contact_id = $2",
                    "DELETE FROM contact_attribute_index WHERE workspace_id = $1 AND contact_id = $2",
                    "UPDATE contact_import_rows SET contact_id = NULL WHERE contact_id = $2
                        AND import_id IN (SELECT id FROM contact_imports WHERE workspace_id = $1)",
                ] {
                    sqlx::query(sql)
                        .bind(workspace_id)
                        .bind(contact_id)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("DELETE FROM contacts WHERE workspace_id = $1 AND id = $2")
                    .bind(workspace_id)
                    .bind(contact_id)
                    .execute(&mut *tx)
                    .await?;
                insert_privacy_request(&mut *tx, r).await?;
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok($crate::privacy::ErasureReport {
                    messages,
                    pending_cancelled: pending,
                    events,
                    consents,
                    media,
                })
            }
        }
    };
}
pub(crate) use privacy_store_impl;

macro_rules! insert_privacy_request_fn {
    ($conn:ty) => {
        async fn insert_privacy_request(
            conn: &mut $conn,
            r: &$crate::privacy::PrivacyRequestRow,
        ) -> $crate::Result<()> {
            sqlx::query(
                "INSERT INTO privacy_requests (id, workspace_id, kind, subject_hash, actor_type, actor_id,
                    outcome, details, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&r.id)
            .bind(&r.workspace_id)
            .bind(&r.kind)
            .bind(&r.subject_hash)
            .bind(&r.actor_type)
            .bind(&r.actor_id)
            .bind(&r.outcome)
            .bind(&r.details)
            .bind(r.created_at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
    };
}
pub(crate) use insert_privacy_request_fn;
