//! What an account holder can do about their own account: read everything
//! kept about it (for the export) and schedule, cancel and carry out its
//! deletion. SQL shared by both backends, as in `identity.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::{AuditEvent, NewAuditEvent};

use crate::Result;
use crate::identity::SessionRecord;

/// A one-time link about an address: verify it, confirm a change to it, or undo a change.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailTokenRecord {
    pub id: String,
    pub user_id: String,
    pub purpose: String,
    /// Encrypted with AAD `(email_tokens, email, id)`, with its blind index.
    #[sqlx(flatten)]
    pub sealed_email: crate::identity::SealedEmail,
    /// The opened address: filled by the server (`emails::open_token`), empty
    /// as the store returns it and ignored when storing.
    #[sqlx(skip)]
    pub email: String,
    pub token_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// What using an email token changes. Apply and Undo carry the token's
/// address sealed again for the `users` row (a ciphertext is bound to its row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailChange {
    /// Marks the address verified if it is still the account's.
    Verify,
    /// Sets the account's address to the token's, verified.
    Apply(crate::identity::SealedEmail),
    /// Sets it back to the token's (old) address and ends every session.
    Undo(crate::identity::SealedEmail),
}

#[async_trait]
pub trait AccountStore {
    /// Stores a link (its audit event carries the mail with it).
    async fn create_email_token(
        &self,
        token: &EmailTokenRecord,
        audit: NewAuditEvent,
    ) -> Result<()>;
    async fn find_email_token(&self, token_hash: &[u8]) -> Result<Option<EmailTokenRecord>>;
    /// Uses the link once and applies `change`; with `follow_up` (the undo
    /// link a change leaves the old address) stored too. `NotFound` when used
    /// or expired meanwhile; `Conflict` when the address belongs to another account.
    async fn use_email_token(
        &self,
        token: &EmailTokenRecord,
        change: EmailChange,
        follow_up: Option<&EmailTokenRecord>,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;
    async fn email_verified_at(&self, user_id: &str) -> Result<Option<DateTime<Utc>>>;
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
            async fn create_email_token(
                &self,
                t: &$crate::account::EmailTokenRecord,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                insert_email_token(&mut tx, t).await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_email_token(
                &self,
                token_hash: &[u8],
            ) -> $crate::Result<Option<$crate::account::EmailTokenRecord>> {
                Ok(sqlx::query_as(
                    "SELECT id, user_id, purpose, email, email_index, token_hash,
                        created_at, expires_at, used_at
                     FROM email_tokens WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(self.reads())
                .await?)
            }

            async fn use_email_token(
                &self,
                t: &$crate::account::EmailTokenRecord,
                change: $crate::account::EmailChange,
                follow_up: Option<&$crate::account::EmailTokenRecord>,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                use $crate::account::EmailChange;
                let mut tx = self.write_tx().await?;
                let used = sqlx::query(
                    "UPDATE email_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND expires_at > $2",
                )
                .bind(&t.id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if used == 0 {
                    return Err($crate::StoreError::NotFound("email link"));
                }
                match &change {
                    EmailChange::Verify => {
                        sqlx::query("UPDATE users SET email_verified_at = $3 WHERE id = $1 AND email_index = $2")
                            .bind(&t.user_id)
                            .bind(&t.sealed_email.index)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    }
                    EmailChange::Apply(email) | EmailChange::Undo(email) => {
                        sqlx::query(
                            "UPDATE users SET email = $2, email_index = $4, email_verified_at = $3, updated_at = $3
                             WHERE id = $1",
                        )
                        .bind(&t.user_id)
                        .bind(&email.sealed)
                        .bind(now)
                        .bind(&email.index)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| $crate::StoreError::conflict_on_unique(e, "another account uses this address"))?;
                        // Links to the address this replaces stop working.
                        sqlx::query(
                            "UPDATE email_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL AND purpose <> 'undo'",
                        )
                        .bind(&t.user_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                if matches!(change, EmailChange::Undo(_)) {
                    sqlx::query("UPDATE email_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL")
                        .bind(&t.user_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                        .bind(&t.user_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(next) = follow_up {
                    insert_email_token(&mut tx, next).await?;
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn email_verified_at(
                &self,
                user_id: &str,
            ) -> $crate::Result<Option<chrono::DateTime<chrono::Utc>>> {
                sqlx::query_scalar("SELECT email_verified_at FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("user"))
            }

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

/// The insert of an email link, for `account_store_impl!`'s callers' backends.
macro_rules! insert_email_token_fn {
    ($conn:ty) => {
        async fn insert_email_token(
            conn: &mut $conn,
            t: &$crate::account::EmailTokenRecord,
        ) -> $crate::Result<()> {
            sqlx::query(
                "INSERT INTO email_tokens (id, user_id, purpose, email, email_index, token_hash, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $8, $5, $6, $7)",
            )
            .bind(&t.id)
            .bind(&t.user_id)
            .bind(&t.purpose)
            .bind(&t.sealed_email.sealed)
            .bind(&t.token_hash)
            .bind(t.created_at)
            .bind(t.expires_at)
            .bind(&t.sealed_email.index)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
    };
}
pub(crate) use insert_email_token_fn;
