//! Outgoing mail (the outbox a worker drains over SMTP) and password reset
//! links. Mail rows are inserted by `seal_audits` with the change that causes
//! them; this module claims, records and purges them. SQL shared by both
//! backends, as in `identity.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;

/// A mail claimed for sending: its sealed content and how often it was tried.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedMail {
    pub id: String,
    pub kind: String,
    pub recipient_hint: String,
    pub sealed: Option<Vec<u8>>,
    pub attempts: i32,
}

/// A mail's delivery record, without content (for operators and tests).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MailStatus {
    pub id: String,
    pub kind: String,
    pub recipient_hint: String,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub content_kept: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasswordResetRecord {
    pub id: String,
    pub user_id: String,
    pub token_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// How a user's earlier sessions (revoked ones included) compare to a new one.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct SignInHistory {
    pub sessions: i64,
    pub same_network: i64,
    pub same_device: i64,
}

#[async_trait]
pub trait MailStore {
    /// Counts the user's recorded sessions, those from `ip` and those with `user_agent`.
    async fn sign_in_history(
        &self,
        user_id: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<SignInHistory>;
    /// Leases up to `limit` due mails until `lease_until`.
    async fn claim_due_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ClaimedMail>>;
    /// Records delivery and blanks the sealed content.
    async fn mark_mail_sent(&self, id: &str, now: DateTime<Utc>) -> Result<()>;
    /// Records a failed attempt: a retry at `retry_at`, or (None) given up,
    /// which blanks the content too.
    async fn mark_mail_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Deletes finished delivery records older than `before`; returns how many.
    async fn purge_finished_mail(&self, before: DateTime<Utc>, limit: u32) -> Result<u64>;
    /// The newest delivery records, newest first.
    async fn recent_mail(&self, limit: u32) -> Result<Vec<MailStatus>>;

    /// Stores a reset link (its audit event carries the mail with the link).
    async fn create_password_reset(
        &self,
        reset: &PasswordResetRecord,
        audit: NewAuditEvent,
    ) -> Result<()>;
    async fn find_password_reset(&self, token_hash: &[u8]) -> Result<Option<PasswordResetRecord>>;
    /// Uses the link once: sets the password, ends every session of the user,
    /// voids the user's other links and clears the lockout. `NotFound` when the
    /// link was used or expired meanwhile. Returns the number of sessions ended.
    async fn complete_password_reset(
        &self,
        reset_id: &str,
        user_id: &str,
        password_hash: &str,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<u64>;

    /// An operator lifts a lockout: clears the failure counters.
    async fn unlock_user(&self, user_id: &str, audit: NewAuditEvent) -> Result<()>;
    /// An operator removes every second factor (TOTP, recovery codes,
    /// passkeys); returns whether TOTP was on and how many passkeys went.
    async fn reset_mfa(&self, user_id: &str, audit: NewAuditEvent) -> Result<(bool, u64)>;
}

/// Implements [`MailStore`] for a backend, given its `append_audit` and the
/// row-lock clause for claims (`FOR UPDATE SKIP LOCKED` or nothing).
macro_rules! mail_store_impl {
    ($store:ty, $append:path, $claim_lock:literal) => {
        #[async_trait::async_trait]
        impl $crate::mail::MailStore for $store {
            async fn sign_in_history(
                &self,
                user_id: &str,
                ip: Option<&str>,
                user_agent: Option<&str>,
            ) -> $crate::Result<$crate::mail::SignInHistory> {
                Ok(sqlx::query_as(
                    "SELECT count(*) AS sessions, count(CASE WHEN ip IS NOT DISTINCT FROM $2 THEN 1 END) AS same_network,
                        count(CASE WHEN user_agent IS NOT DISTINCT FROM $3 THEN 1 END) AS same_device
                     FROM sessions WHERE user_id = $1",
                )
                .bind(user_id)
                .bind(ip)
                .bind(user_agent)
                .fetch_one(self.reads())
                .await?)
            }

            async fn claim_due_mail(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                lease_until: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::mail::ClaimedMail>> {
                let mut tx = self.write_tx().await?;
                let rows = sqlx::query_as(concat!(
                    "UPDATE mail_outbox SET lease_until = $2
                     WHERE id IN (SELECT id FROM mail_outbox
                                  WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1
                                    AND (lease_until IS NULL OR lease_until <= $1)
                                  ORDER BY next_attempt_at LIMIT $3 ",
                    $claim_lock,
                    ")
                     RETURNING id, kind, recipient_hint, sealed, attempts"
                ))
                .bind(now)
                .bind(lease_until)
                .bind(limit as i64)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows)
            }

            async fn mark_mail_sent(&self, id: &str, now: chrono::DateTime<chrono::Utc>) -> $crate::Result<()> {
                sqlx::query(
                    "UPDATE mail_outbox SET sent_at = $2, sealed = NULL, lease_until = NULL,
                        attempts = attempts + 1, last_error = NULL WHERE id = $1",
                )
                .bind(id)
                .bind(now)
                .execute(self.writes())
                .await?;
                Ok(())
            }

            async fn mark_mail_failed(
                &self,
                id: &str,
                error: &str,
                retry_at: Option<chrono::DateTime<chrono::Utc>>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                let q = match retry_at {
                    Some(at) => sqlx::query(
                        "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2,
                            next_attempt_at = $3, lease_until = NULL WHERE id = $1",
                    )
                    .bind(id)
                    .bind(error)
                    .bind(at),
                    None => sqlx::query(
                        "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2,
                            failed_at = $3, sealed = NULL, lease_until = NULL WHERE id = $1",
                    )
                    .bind(id)
                    .bind(error)
                    .bind(now),
                };
                q.execute(self.writes()).await?;
                Ok(())
            }

            async fn purge_finished_mail(
                &self,
                before: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<u64> {
                Ok(sqlx::query(
                    "DELETE FROM mail_outbox WHERE id IN (SELECT id FROM mail_outbox
                        WHERE (sent_at IS NOT NULL AND sent_at < $1) OR (failed_at IS NOT NULL AND failed_at < $1)
                        LIMIT $2)",
                )
                .bind(before)
                .bind(limit as i64)
                .execute(self.writes())
                .await?
                .rows_affected())
            }

            async fn recent_mail(&self, limit: u32) -> $crate::Result<Vec<$crate::mail::MailStatus>> {
                Ok(sqlx::query_as(
                    "SELECT id, kind, recipient_hint, created_at, attempts, last_error, sent_at, failed_at,
                        sealed IS NOT NULL AS content_kept
                     FROM mail_outbox ORDER BY created_at DESC, id DESC LIMIT $1",
                )
                .bind(limit as i64)
                .fetch_all(self.reads())
                .await?)
            }

            async fn create_password_reset(
                &self,
                r: &$crate::mail::PasswordResetRecord,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO password_resets (id, user_id, token_hash, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&r.id)
                .bind(&r.user_id)
                .bind(&r.token_hash)
                .bind(r.created_at)
                .bind(r.expires_at)
                .execute(&mut *tx)
                .await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_password_reset(
                &self,
                token_hash: &[u8],
            ) -> $crate::Result<Option<$crate::mail::PasswordResetRecord>> {
                Ok(sqlx::query_as(
                    "SELECT id, user_id, token_hash, created_at, expires_at, used_at
                     FROM password_resets WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(self.reads())
                .await?)
            }

            async fn complete_password_reset(
                &self,
                reset_id: &str,
                user_id: &str,
                password_hash: &str,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<u64> {
                let mut tx = self.write_tx().await?;
                let used = sqlx::query(
                    "UPDATE password_resets SET used_at = $3
                     WHERE id = $1 AND user_id = $2 AND used_at IS NULL AND expires_at > $3",
                )
                .bind(reset_id)
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if used == 0 {
                    return Err($crate::StoreError::NotFound("password reset"));
                }
                // Every other link of this user stops working too.
                sqlx::query("UPDATE password_resets SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL")
                    .bind(user_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE users SET password_hash = $2, updated_at = $3, failed_logins = 0, lockouts = 0,
                        locked_until = NULL WHERE id = $1",
                )
                .bind(user_id)
                .bind(password_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let ended = sqlx::query(
                    "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                )
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                $append(&mut tx, audit.details(serde_json::json!({ "sessions_ended": ended }))).await?;
                tx.commit().await?;
                Ok(ended)
            }

            async fn unlock_user(&self, user_id: &str, audit: waypost_core::NewAuditEvent) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE users SET failed_logins = 0, lockouts = 0, locked_until = NULL WHERE id = $1",
                )
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

            async fn reset_mfa(
                &self,
                user_id: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<(bool, u64)> {
                let mut tx = self.write_tx().await?;
                let totp: bool = sqlx::query_scalar("SELECT totp_enabled FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or($crate::StoreError::NotFound("user"))?;
                sqlx::query(
                    "UPDATE users SET totp_secret = NULL, totp_enabled = FALSE, totp_last_step = NULL WHERE id = $1",
                )
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                let passkeys = sqlx::query("DELETE FROM passkeys WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                $append(
                    &mut tx,
                    audit.details(serde_json::json!({ "totp": totp, "passkeys_removed": passkeys })),
                )
                .await?;
                tx.commit().await?;
                Ok((totp, passkeys))
            }
        }
    };
}
pub(crate) use mail_store_impl;
