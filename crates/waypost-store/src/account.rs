//! What an account holder can do about their own account: read everything
//! kept about it (for the export) and schedule, cancel and carry out its
//! deletion. SQL shared by both backends, as in `identity.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::{AuditEvent, NewAuditEvent};

use crate::Result;
use crate::identity::SessionRecord;

#[async_trait]
pub trait AccountStore {
    /// Every session of the user, revoked ones included, newest first.
    async fn all_sessions(&self, user_id: &str, limit: u32) -> Result<Vec<SessionRecord>>;
    /// Audit events by or about the user, oldest first, across every chain.
    async fn audit_about_user(&self, user_id: &str, limit: u32) -> Result<Vec<AuditEvent>>;
    async fn deletion_due_at(&self, user_id: &str) -> Result<Option<DateTime<Utc>>>;
    /// Schedules (or, with `None`, cancels) the user's deletion.
    async fn set_deletion_due(
        &self,
        user_id: &str,
        due: Option<DateTime<Utc>>,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// Users whose deletion is due.
    async fn due_account_deletions(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<String>>;
    /// Deletes the user (memberships, sessions, factors and links go with it)
    /// unless they are the last owner of a workspace by now: then `Conflict`.
    async fn delete_user(&self, user_id: &str, audit: NewAuditEvent) -> Result<()>;
    /// Workspaces (id, name) where the user is the only owner.
    async fn sole_owner_of(&self, user_id: &str) -> Result<Vec<(String, String)>>;
}

pub(crate) const SOLE_OWNER: &str = "SELECT w.id, w.name FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
     WHERE m.user_id = $1 AND m.role = 'owner'
       AND (SELECT count(*) FROM memberships o WHERE o.workspace_id = m.workspace_id AND o.role = 'owner') = 1
     ORDER BY w.name";

/// Implements [`AccountStore`] for a backend, given its `append_audit`.
macro_rules! account_store_impl {
    ($store:ty, $append:path) => {
        #[async_trait::async_trait]
        impl $crate::account::AccountStore for $store {
            async fn all_sessions(
                &self,
                user_id: &str,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::identity::SessionRecord>> {
                let sql = $crate::identity::session_select("user_id = $1 ORDER BY created_at DESC LIMIT $2");
                Ok(sqlx::query_as(&sql)
                    .bind(user_id)
                    .bind(limit as i64)
                    .fetch_all(self.reads())
                    .await?)
            }

            async fn audit_about_user(
                &self,
                user_id: &str,
                limit: u32,
            ) -> $crate::Result<Vec<waypost_core::AuditEvent>> {
                let sql = format!(
                    "SELECT {} FROM audit_events
                     WHERE (actor_type = 'user' AND actor_id = $1) OR (target_type = 'user' AND target_id = $1)
                     ORDER BY occurred_at, chain, seq LIMIT $2",
                    AUDIT_COLUMNS
                );
                sqlx::query_as::<_, $crate::model::AuditRow>(&sql)
                    .bind(user_id)
                    .bind(limit as i64)
                    .fetch_all(self.reads())
                    .await?
                    .into_iter()
                    .map(waypost_core::AuditEvent::try_from)
                    .collect()
            }

            async fn deletion_due_at(
                &self,
                user_id: &str,
            ) -> $crate::Result<Option<chrono::DateTime<chrono::Utc>>> {
                sqlx::query_scalar("SELECT deletion_due_at FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("user"))
            }

            async fn set_deletion_due(
                &self,
                user_id: &str,
                due: Option<chrono::DateTime<chrono::Utc>>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("UPDATE users SET deletion_due_at = $2 WHERE id = $1")
                    .bind(user_id)
                    .bind(due)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("user"));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn due_account_deletions(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM users WHERE deletion_due_at IS NOT NULL AND deletion_due_at <= $1
                     ORDER BY deletion_due_at LIMIT $2",
                )
                .bind(now)
                .bind(limit as i64)
                .fetch_all(self.reads())
                .await?)
            }

            async fn delete_user(&self, user_id: &str, audit: waypost_core::NewAuditEvent) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let sole: Vec<(String, String)> = sqlx::query_as($crate::account::SOLE_OWNER)
                    .bind(user_id)
                    .fetch_all(&mut *tx)
                    .await?;
                if !sole.is_empty() {
                    return Err($crate::StoreError::Conflict(
                        "the user is the last owner of a workspace".into(),
                    ));
                }
                let done = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("user"));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn sole_owner_of(&self, user_id: &str) -> $crate::Result<Vec<(String, String)>> {
                Ok(sqlx::query_as($crate::account::SOLE_OWNER)
                    .bind(user_id)
                    .fetch_all(self.reads())
                    .await?)
            }
        }
    };
}
pub(crate) use account_store_impl;
