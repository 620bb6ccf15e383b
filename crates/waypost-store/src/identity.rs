//! Records and the storage trait for identity: users, memberships, sessions,
//! API keys, MFA material and first-run setup tokens.
//!
//! The SQL is written once with `$n` placeholders (both sqlx-sqlite and
//! PostgreSQL accept them) and instantiated for each backend by
//! `identity_store_impl!`, so the two backends cannot drift apart.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use waypost_core::NewAuditEvent;

use crate::{Result, Workspace};

/// An email address at rest: sealed by the server (AAD `(table, email, row id)`)
/// and, where it is looked up, the blind index of its normalised form.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SealedEmail {
    #[sqlx(rename = "email")]
    pub sealed: Vec<u8>,
    #[sqlx(rename = "email_index")]
    pub index: Vec<u8>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: String,
    /// Encrypted with AAD `(users, email, id)`.
    #[sqlx(rename = "email")]
    pub sealed_email: Vec<u8>,
    /// The opened address: filled by the server (`emails::open_user`), empty
    /// as the store returns it.
    #[sqlx(skip)]
    pub email: String,
    pub password_hash: String,
    pub failed_logins: i64,
    pub lockouts: i64,
    pub locked_until: Option<DateTime<Utc>>,
    /// Encrypted with AAD `(users, totp_secret, id)`.
    pub totp_secret: Option<Vec<u8>>,
    pub totp_enabled: bool,
    pub totp_last_step: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    pub email: SealedEmail,
    pub password_hash: String,
    pub now: DateTime<Utc>,
    /// The address is proven already (a mailed invitation was opened).
    pub email_verified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Membership {
    pub workspace_id: String,
    pub workspace_name: String,
    pub role: String,
    pub elevated_role: Option<String>,
    pub elevated_until: Option<DateTime<Utc>>,
    pub require_mfa: bool,
    pub require_mfa_for_admins: bool,
    /// When the user joined; starts the grace period for enrolling a second factor.
    pub created_at: DateTime<Utc>,
}

impl Membership {
    /// The role in force at `now`: a just-in-time elevation until it lapses, else the base role.
    pub fn effective_role(&self, now: DateTime<Utc>) -> &str {
        match (&self.elevated_role, self.elevated_until) {
            (Some(role), Some(until)) if until > now => role,
            _ => &self.role,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Member {
    pub user_id: String,
    /// Encrypted with AAD `(users, email, user_id)`.
    #[sqlx(rename = "email")]
    pub sealed_email: Vec<u8>,
    /// Filled by the server (`emails::open_members`); empty from the store.
    #[sqlx(skip)]
    pub email: String,
    pub role: String,
    pub elevated_role: Option<String>,
    pub elevated_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Whether the member has TOTP or at least one passkey.
    pub mfa_enabled: bool,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: String,
    pub token_hash: Vec<u8>,
    pub user_id: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub reauthenticated_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRecord {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub display_prefix: String,
    pub key_hash: Vec<u8>,
    /// Space-separated scope names.
    pub scopes: String,
    /// Space-separated CIDRs; empty means any address.
    pub allowed_ips: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// How failed logins lock an account: after `max_failures` consecutive failures
/// for `base`, doubling with each further lockout, capped at `max`.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    pub max_failures: i64,
    pub base: Duration,
    pub max: Duration,
}

impl LockoutPolicy {
    /// The lock length for an account already locked `previous` times.
    pub fn duration(&self, previous: i64) -> Duration {
        let factor = 1i64
            .checked_shl(previous.clamp(0, 32) as u32)
            .unwrap_or(i64::MAX);
        let seconds = self.base.num_seconds().saturating_mul(factor);
        Duration::seconds(seconds).min(self.max)
    }
}

/// What a failed login did to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailure {
    pub failed_logins: i64,
    pub locked_until: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait IdentityStore {
    async fn count_users(&self) -> Result<i64>;
    /// Creates a workspace, its first user and their owner membership at once.
    async fn create_owner(
        &self,
        workspace: &Workspace,
        user: &NewUser,
        audit: Vec<NewAuditEvent>,
    ) -> Result<()>;
    /// Adds a new user to an existing workspace with `role`.
    async fn create_member(
        &self,
        workspace_id: &str,
        user: &NewUser,
        role: &str,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// The user whose address has this blind index (sealed: see `UserRecord::email`).
    async fn find_user_by_email_index(&self, index: &[u8]) -> Result<Option<UserRecord>>;
    /// The user, with the address still sealed (see `UserRecord::email`).
    async fn get_user_sealed(&self, id: &str) -> Result<UserRecord>;
    async fn memberships(&self, user_id: &str) -> Result<Vec<Membership>>;
    async fn membership_role(&self, workspace_id: &str, user_id: &str) -> Result<Option<String>>;
    /// The user's membership of one workspace, with elevation and workspace settings.
    async fn membership(&self, workspace_id: &str, user_id: &str) -> Result<Option<Membership>>;
    /// Members with their addresses sealed (see `Member::email`), in no useful order.
    async fn list_members_sealed(&self, workspace_id: &str) -> Result<Vec<Member>>;
    /// Changes a member's role; `Conflict` when it would leave the workspace without an owner.
    async fn set_member_role(
        &self,
        workspace_id: &str,
        user_id: &str,
        role: &str,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// Removes a member; `Conflict` for the last owner.
    async fn remove_member(
        &self,
        workspace_id: &str,
        user_id: &str,
        audit: NewAuditEvent,
    ) -> Result<()>;

    /// Counts a failed login, locking the account when the policy says so.
    async fn record_login_failure(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
        policy: LockoutPolicy,
        failure: NewAuditEvent,
        lockout: NewAuditEvent,
    ) -> Result<LoginFailure>;
    async fn clear_login_failures(&self, user_id: &str) -> Result<()>;
    /// Replaces the hash without ending sessions (upgrading an old hash on login).
    async fn set_password_hash(&self, user_id: &str, hash: &str) -> Result<()>;
    /// Sets a new password and revokes every session but `keep_session`; returns how many ended.
    async fn change_password(
        &self,
        user_id: &str,
        hash: &str,
        keep_session: &str,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<u64>;

    async fn create_session(&self, session: &SessionRecord, audit: NewAuditEvent) -> Result<()>;
    async fn find_session(&self, token_hash: &[u8]) -> Result<Option<SessionRecord>>;
    async fn touch_session(&self, id: &str, now: DateTime<Utc>) -> Result<()>;
    async fn mark_reauthenticated(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// The user's sessions that are not revoked, newest first.
    async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionRecord>>;
    async fn revoke_session(
        &self,
        user_id: &str,
        id: &str,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<bool>;
    async fn revoke_other_sessions(
        &self,
        user_id: &str,
        keep: &str,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<u64>;

    async fn create_api_key(&self, key: &ApiKeyRecord, audit: NewAuditEvent) -> Result<()>;
    async fn find_api_key(&self, key_hash: &[u8]) -> Result<Option<ApiKeyRecord>>;
    async fn list_api_keys(&self, workspace_id: &str) -> Result<Vec<ApiKeyRecord>>;
    /// `NotFound` unless the key belongs to `workspace_id`.
    async fn get_api_key(&self, workspace_id: &str, id: &str) -> Result<ApiKeyRecord>;
    /// `NotFound` unless the key belongs to `workspace_id` and is not yet revoked.
    async fn revoke_api_key(
        &self,
        workspace_id: &str,
        id: &str,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;
    async fn touch_api_key(&self, id: &str, now: DateTime<Utc>, ip: Option<&str>) -> Result<()>;

    /// Stores (or clears) the encrypted TOTP secret and whether it is active.
    async fn set_totp(
        &self,
        user_id: &str,
        encrypted_secret: Option<&[u8]>,
        enabled: bool,
        audit: Option<NewAuditEvent>,
    ) -> Result<()>;
    /// Activates the pending TOTP secret, keeping the step used to confirm it.
    async fn enable_totp(&self, user_id: &str, audit: NewAuditEvent) -> Result<()>;
    /// Records `step` as used if it is newer than any used before; false means replay.
    async fn claim_totp_step(&self, user_id: &str, step: i64) -> Result<bool>;
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[Vec<u8>],
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// Marks an unused code used; false when unknown or already used.
    async fn use_recovery_code(
        &self,
        user_id: &str,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<bool>;
    async fn unused_recovery_codes(&self, user_id: &str) -> Result<i64>;

    async fn create_setup_token(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// Uses a setup token once; false when unknown, used or expired.
    async fn consume_setup_token(&self, hash: &[u8], now: DateTime<Utc>) -> Result<bool>;
}

const USER_COLUMNS: &str = "id, email, password_hash, failed_logins, lockouts, locked_until, totp_secret, \
     totp_enabled, totp_last_step, created_at, updated_at";
const SESSION_COLUMNS: &str = "id, token_hash, user_id, created_at, last_seen_at, reauthenticated_at, ip, user_agent, revoked_at";
const API_KEY_COLUMNS: &str = "id, workspace_id, name, display_prefix, key_hash, scopes, allowed_ips, expires_at, \
     created_by, created_at, last_used_at, last_used_ip, revoked_at";

pub(crate) fn user_select(filter: &str) -> String {
    format!("SELECT {USER_COLUMNS} FROM users WHERE {filter}")
}
pub(crate) fn session_select(filter: &str) -> String {
    format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE {filter}")
}
pub(crate) fn api_key_select(filter: &str) -> String {
    format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE {filter}")
}

/// Implements [`IdentityStore`] for a backend type with inherent `reads()`,
/// `writes()` and `write_tx()`, given its connection type, its
/// `append_audit(conn, event)` and a `lock_workspace(conn, id)` that serialises
/// membership changes of one workspace until commit.
macro_rules! identity_store_impl {
    ($store:ty, $conn:ty, $append:path, $lock_workspace:path) => {
        #[async_trait::async_trait]
        impl $crate::identity::IdentityStore for $store {
            async fn count_users(&self) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(self.reads()).await?)
            }

            async fn create_owner(
                &self,
                ws: &$crate::Workspace,
                user: &$crate::identity::NewUser,
                audit: Vec<waypost_core::NewAuditEvent>,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query("INSERT INTO workspaces (id, name, created_at, updated_at) VALUES ($1, $2, $3, $4)")
                    .bind(ws.id.to_string())
                    .bind(&ws.name)
                    .bind(ws.created_at)
                    .bind(ws.updated_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| $crate::StoreError::conflict_on_unique(e, "a workspace with this name exists"))?;
                insert_user(&mut tx, user).await?;
                sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)")
                    .bind(ws.id.to_string())
                    .bind(&user.id)
                    .bind(user.now)
                    .execute(&mut *tx)
                    .await?;
                for event in audit {
                    $append(&mut tx, event).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn create_member(
                &self,
                workspace_id: &str,
                user: &$crate::identity::NewUser,
                role: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                insert_user(&mut tx, user).await?;
                sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(workspace_id)
                    .bind(&user.id)
                    .bind(role)
                    .bind(user.now)
                    .execute(&mut *tx)
                    .await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_user_by_email_index(&self, index: &[u8]) -> $crate::Result<Option<$crate::identity::UserRecord>> {
                Ok(sqlx::query_as(&$crate::identity::user_select("email_index = $1"))
                    .bind(index)
                    .fetch_optional(self.reads())
                    .await?)
            }

            async fn get_user_sealed(&self, id: &str) -> $crate::Result<$crate::identity::UserRecord> {
                sqlx::query_as(&$crate::identity::user_select("id = $1"))
                    .bind(id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("user"))
            }

            async fn memberships(&self, user_id: &str) -> $crate::Result<Vec<$crate::identity::Membership>> {
                Ok(sqlx::query_as(
                    "SELECT m.workspace_id, w.name AS workspace_name, m.role, m.elevated_role, m.elevated_until,
                        w.require_mfa, w.require_mfa_for_admins, m.created_at FROM memberships m
                     JOIN workspaces w ON w.id = m.workspace_id WHERE m.user_id = $1 ORDER BY w.name",
                )
                .bind(user_id)
                .fetch_all(self.reads())
                .await?)
            }

            async fn membership_role(&self, workspace_id: &str, user_id: &str) -> $crate::Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                    .bind(workspace_id)
                    .bind(user_id)
                    .fetch_optional(self.reads())
                    .await?)
            }

            async fn membership(
                &self,
                workspace_id: &str,
                user_id: &str,
            ) -> $crate::Result<Option<$crate::identity::Membership>> {
                Ok(sqlx::query_as(
                    "SELECT m.workspace_id, w.name AS workspace_name, m.role, m.elevated_role, m.elevated_until,
                        w.require_mfa, w.require_mfa_for_admins, m.created_at FROM memberships m
                     JOIN workspaces w ON w.id = m.workspace_id WHERE m.workspace_id = $1 AND m.user_id = $2",
                )
                .bind(workspace_id)
                .bind(user_id)
                .fetch_optional(self.reads())
                .await?)
            }

            async fn list_members_sealed(&self, workspace_id: &str) -> $crate::Result<Vec<$crate::identity::Member>> {
                Ok(sqlx::query_as(
                    "SELECT m.user_id, u.email, m.role, m.elevated_role, m.elevated_until, m.created_at,
                        (u.totp_enabled OR EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = u.id)) AS mfa_enabled,
                        u.last_sign_in_at
                     FROM memberships m
                     JOIN users u ON u.id = m.user_id WHERE m.workspace_id = $1 ORDER BY m.created_at, m.user_id LIMIT 1000",
                )
                .bind(workspace_id)
                .fetch_all(self.reads())
                .await?)
            }

            async fn set_member_role(
                &self,
                workspace_id: &str,
                user_id: &str,
                role: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                $lock_workspace(&mut tx, workspace_id).await?;
                let current = member_role_for_update(&mut tx, workspace_id, user_id).await?;
                if current == "owner" && role != "owner" {
                    ensure_another_owner(&mut tx, workspace_id).await?;
                }
                sqlx::query("UPDATE memberships SET role = $3 WHERE workspace_id = $1 AND user_id = $2")
                    .bind(workspace_id)
                    .bind(user_id)
                    .bind(role)
                    .execute(&mut *tx)
                    .await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn remove_member(
                &self,
                workspace_id: &str,
                user_id: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                $lock_workspace(&mut tx, workspace_id).await?;
                if member_role_for_update(&mut tx, workspace_id, user_id).await? == "owner" {
                    ensure_another_owner(&mut tx, workspace_id).await?;
                }
                sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                    .bind(workspace_id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                // A removed member's way in ends with the membership: every
                // session (they are not bound to one workspace) and the keys
                // they created here.
                let now = chrono::Utc::now();
                let sessions = sqlx::query(
                    "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                )
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let keys = sqlx::query(
                    "UPDATE api_keys SET revoked_at = $3
                     WHERE workspace_id = $1 AND created_by = $2 AND revoked_at IS NULL",
                )
                .bind(workspace_id)
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let audit = audit.details(serde_json::json!({
                    "sessions_revoked": sessions,
                    "api_keys_revoked": keys,
                }));
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn record_login_failure(
                &self,
                user_id: &str,
                now: chrono::DateTime<chrono::Utc>,
                policy: $crate::identity::LockoutPolicy,
                failure: waypost_core::NewAuditEvent,
                lockout: waypost_core::NewAuditEvent,
            ) -> $crate::Result<$crate::identity::LoginFailure> {
                let mut tx = self.write_tx().await?;
                let (failed, lockouts): (i64, i64) = sqlx::query_as(
                    "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins, lockouts",
                )
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
                $append(&mut tx, failure).await?;
                let mut locked_until = None;
                if failed >= policy.max_failures {
                    let until = now + policy.duration(lockouts);
                    sqlx::query(
                        "UPDATE users SET failed_logins = 0, lockouts = lockouts + 1, locked_until = $2 WHERE id = $1",
                    )
                    .bind(user_id)
                    .bind(until)
                    .execute(&mut *tx)
                    .await?;
                    $append(&mut tx, lockout.details(serde_json::json!({ "locked_until": until, "lockout": lockouts + 1 })))
                        .await?;
                    locked_until = Some(until);
                }
                tx.commit().await?;
                Ok($crate::identity::LoginFailure { failed_logins: failed, locked_until })
            }

            async fn clear_login_failures(&self, user_id: &str) -> $crate::Result<()> {
                sqlx::query("UPDATE users SET failed_logins = 0, lockouts = 0, locked_until = NULL WHERE id = $1")
                    .bind(user_id)
                    .execute(self.writes())
                    .await?;
                Ok(())
            }

            async fn set_password_hash(&self, user_id: &str, hash: &str) -> $crate::Result<()> {
                sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                    .bind(user_id)
                    .bind(hash)
                    .execute(self.writes())
                    .await?;
                Ok(())
            }

            async fn change_password(
                &self,
                user_id: &str,
                hash: &str,
                keep_session: &str,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<u64> {
                let mut tx = self.write_tx().await?;
                sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                    .bind(user_id)
                    .bind(hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let ended = sqlx::query(
                    "UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
                )
                .bind(user_id)
                .bind(keep_session)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                $append(&mut tx, audit.details(serde_json::json!({ "sessions_ended": ended }))).await?;
                tx.commit().await?;
                Ok(ended)
            }

            async fn create_session(
                &self,
                s: &$crate::identity::SessionRecord,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, reauthenticated_at, ip,
                        user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&s.id)
                .bind(&s.token_hash)
                .bind(&s.user_id)
                .bind(s.created_at)
                .bind(s.last_seen_at)
                .bind(s.reauthenticated_at)
                .bind(&s.ip)
                .bind(&s.user_agent)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE users SET last_sign_in_at = $2 WHERE id = $1")
                    .bind(&s.user_id)
                    .bind(s.created_at)
                    .execute(&mut *tx)
                    .await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_session(&self, token_hash: &[u8]) -> $crate::Result<Option<$crate::identity::SessionRecord>> {
                Ok(sqlx::query_as(&$crate::identity::session_select("token_hash = $1"))
                    .bind(token_hash)
                    .fetch_optional(self.reads())
                    .await?)
            }

            async fn touch_session(&self, id: &str, now: chrono::DateTime<chrono::Utc>) -> $crate::Result<()> {
                sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(self.writes())
                    .await?;
                Ok(())
            }

            async fn mark_reauthenticated(
                &self,
                id: &str,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query("UPDATE sessions SET reauthenticated_at = $2, last_seen_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_sessions(&self, user_id: &str) -> $crate::Result<Vec<$crate::identity::SessionRecord>> {
                let sql = $crate::identity::session_select(
                    "user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 200",
                );
                Ok(sqlx::query_as(&sql).bind(user_id).fetch_all(self.reads()).await?)
            }

            async fn revoke_session(
                &self,
                user_id: &str,
                id: &str,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<bool> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE sessions SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 1 {
                    $append(&mut tx, audit).await?;
                }
                tx.commit().await?;
                Ok(done == 1)
            }

            async fn revoke_other_sessions(
                &self,
                user_id: &str,
                keep: &str,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<u64> {
                let mut tx = self.write_tx().await?;
                let ended = sqlx::query(
                    "UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
                )
                .bind(user_id)
                .bind(keep)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                $append(&mut tx, audit.details(serde_json::json!({ "sessions_ended": ended }))).await?;
                tx.commit().await?;
                Ok(ended)
            }

            async fn create_api_key(
                &self,
                k: &$crate::identity::ApiKeyRecord,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO api_keys (id, workspace_id, name, display_prefix, key_hash, scopes, allowed_ips,
                        expires_at, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&k.id)
                .bind(&k.workspace_id)
                .bind(&k.name)
                .bind(&k.display_prefix)
                .bind(&k.key_hash)
                .bind(&k.scopes)
                .bind(&k.allowed_ips)
                .bind(k.expires_at)
                .bind(&k.created_by)
                .bind(k.created_at)
                .execute(&mut *tx)
                .await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_api_key(&self, key_hash: &[u8]) -> $crate::Result<Option<$crate::identity::ApiKeyRecord>> {
                Ok(sqlx::query_as(&$crate::identity::api_key_select("key_hash = $1"))
                    .bind(key_hash)
                    .fetch_optional(self.reads())
                    .await?)
            }

            async fn list_api_keys(&self, workspace_id: &str) -> $crate::Result<Vec<$crate::identity::ApiKeyRecord>> {
                let sql = $crate::identity::api_key_select("workspace_id = $1 ORDER BY created_at DESC LIMIT 1000");
                Ok(sqlx::query_as(&sql).bind(workspace_id).fetch_all(self.reads()).await?)
            }

            async fn get_api_key(&self, workspace_id: &str, id: &str) -> $crate::Result<$crate::identity::ApiKeyRecord> {
                sqlx::query_as(&$crate::identity::api_key_select("workspace_id = $1 AND id = $2"))
                    .bind(workspace_id)
                    .bind(id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("API key"))
            }

            async fn revoke_api_key(
                &self,
                workspace_id: &str,
                id: &str,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE api_keys SET revoked_at = $3 WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL",
                )
                .bind(workspace_id)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("API key"));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn touch_api_key(
                &self,
                id: &str,
                now: chrono::DateTime<chrono::Utc>,
                ip: Option<&str>,
            ) -> $crate::Result<()> {
                sqlx::query("UPDATE api_keys SET last_used_at = $2, last_used_ip = $3 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .bind(ip)
                    .execute(self.writes())
                    .await?;
                Ok(())
            }

            async fn set_totp(
                &self,
                user_id: &str,
                secret: Option<&[u8]>,
                enabled: bool,
                audit: Option<waypost_core::NewAuditEvent>,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query("UPDATE users SET totp_secret = $2, totp_enabled = $3, totp_last_step = NULL WHERE id = $1")
                    .bind(user_id)
                    .bind(secret)
                    .bind(enabled)
                    .execute(&mut *tx)
                    .await?;
                if !enabled && secret.is_none() {
                    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
                }
                if let Some(event) = audit {
                    $append(&mut tx, event).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn enable_totp(&self, user_id: &str, audit: waypost_core::NewAuditEvent) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("UPDATE users SET totp_enabled = TRUE WHERE id = $1 AND totp_secret IS NOT NULL")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("pending TOTP secret"));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn claim_totp_step(&self, user_id: &str, step: i64) -> $crate::Result<bool> {
                let done = sqlx::query(
                    "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
                )
                .bind(user_id)
                .bind(step)
                .execute(self.writes())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn replace_recovery_codes(
                &self,
                user_id: &str,
                hashes: &[Vec<u8>],
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
                for hash in hashes {
                    sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                        .bind(user_id)
                        .bind(hash)
                        .execute(&mut *tx)
                        .await?;
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn use_recovery_code(
                &self,
                user_id: &str,
                hash: &[u8],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let done = sqlx::query(
                    "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
                )
                .bind(user_id)
                .bind(hash)
                .bind(now)
                .execute(self.writes())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn unused_recovery_codes(&self, user_id: &str) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar("SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
                    .bind(user_id)
                    .fetch_one(self.reads())
                    .await?)
            }

            async fn create_setup_token(
                &self,
                hash: &[u8],
                now: chrono::DateTime<chrono::Utc>,
                expires_at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                sqlx::query("INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)")
                    .bind(hash)
                    .bind(now)
                    .bind(expires_at)
                    .execute(self.writes())
                    .await?;
                Ok(())
            }

            async fn consume_setup_token(&self, hash: &[u8], now: chrono::DateTime<chrono::Utc>) -> $crate::Result<bool> {
                let mut tx = self.write_tx().await?;
                let row: Option<(chrono::DateTime<chrono::Utc>, Option<chrono::DateTime<chrono::Utc>>)> =
                    sqlx::query_as("SELECT expires_at, used_at FROM setup_tokens WHERE token_hash = $1")
                        .bind(hash)
                        .fetch_optional(&mut *tx)
                        .await?;
                let usable = matches!(row, Some((expires, None)) if expires > now);
                if usable {
                    sqlx::query("UPDATE setup_tokens SET used_at = $2 WHERE token_hash = $1")
                        .bind(hash)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(usable)
            }
        }

        async fn insert_user(
            conn: &mut $conn,
            user: &$crate::identity::NewUser,
        ) -> $crate::Result<()> {
            sqlx::query(
                "INSERT INTO users (id, email, email_index, password_hash, created_at, updated_at, email_verified_at)
                 VALUES ($1, $2, $6, $3, $4, $4, $5)",
            )
            .bind(&user.id)
            .bind(&user.email.sealed)
            .bind(&user.password_hash)
            .bind(user.now)
            .bind(user.email_verified.then_some(user.now))
            .bind(&user.email.index)
            .execute(&mut *conn)
            .await
            .map_err(|e| $crate::StoreError::conflict_on_unique(e, "a user with this email exists"))?;
            Ok(())
        }

        async fn member_role_for_update(
            conn: &mut $conn,
            workspace_id: &str,
            user_id: &str,
        ) -> $crate::Result<String> {
            sqlx::query_scalar("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                .bind(workspace_id)
                .bind(user_id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or($crate::StoreError::NotFound("member"))
        }

        async fn ensure_another_owner(
            conn: &mut $conn,
            workspace_id: &str,
        ) -> $crate::Result<()> {
            let owners: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner'",
            )
            .bind(workspace_id)
            .fetch_one(&mut *conn)
            .await?;
            if owners <= 1 {
                return Err($crate::StoreError::Conflict("a workspace must keep at least one owner".into()));
            }
            Ok(())
        }
    };
}
pub(crate) use identity_store_impl;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_double_and_cap() {
        let p = LockoutPolicy {
            max_failures: 5,
            base: Duration::minutes(15),
            max: Duration::hours(24),
        };
        assert_eq!(p.duration(0), Duration::minutes(15));
        assert_eq!(p.duration(1), Duration::minutes(30));
        assert_eq!(p.duration(2), Duration::minutes(60));
        assert_eq!(p.duration(6), Duration::hours(16));
        assert_eq!(p.duration(7), Duration::hours(24));
        assert_eq!(p.duration(1000), Duration::hours(24));
    }
}
