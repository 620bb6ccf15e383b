//! Workspace membership beyond the basics: the MFA requirement, just-in-time
//! role elevation, and invitations. SQL shared by both backends, as in
//! `identity.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;
use crate::identity::NewUser;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRecord {
    pub id: String,
    pub workspace_id: String,
    /// Encrypted with AAD `(invitations, email, id)`.
    #[sqlx(rename = "email")]
    pub sealed_email: Vec<u8>,
    /// The opened address: filled by the server (`emails::open_invitation`),
    /// empty as the store returns it and ignored when storing.
    #[sqlx(skip)]
    pub email: String,
    pub role: String,
    pub token_hash: Vec<u8>,
    pub invited_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An elevation whose time is up, for the worker that records the lapse.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LapsedElevation {
    pub workspace_id: String,
    pub user_id: String,
    pub elevated_role: String,
    pub elevated_until: DateTime<Utc>,
}

#[async_trait]
pub trait MemberStore {
    async fn set_require_mfa(
        &self,
        workspace_id: &str,
        required: bool,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// Whether owners and admins need a second factor (the default).
    async fn set_require_mfa_for_admins(
        &self,
        workspace_id: &str,
        required: bool,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// `(require_mfa, require_mfa_for_admins)` of a workspace.
    async fn mfa_policy(&self, workspace_id: &str) -> Result<(bool, bool)>;
    /// Grants `role` until `until`; `NotFound` unless the user is a member.
    async fn elevate(
        &self,
        workspace_id: &str,
        user_id: &str,
        role: &str,
        until: DateTime<Utc>,
        by: &str,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// Ends an elevation early; `NotFound` when there is none.
    async fn end_elevation(
        &self,
        workspace_id: &str,
        user_id: &str,
        audit: NewAuditEvent,
    ) -> Result<()>;
    async fn lapsed_elevations(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<LapsedElevation>>;
    /// Clears one lapsed elevation if it is still the one seen; returns whether it did.
    async fn clear_lapsed_elevation(
        &self,
        lapsed: &LapsedElevation,
        audit: NewAuditEvent,
    ) -> Result<bool>;

    async fn create_invitation(
        &self,
        invitation: &InvitationRecord,
        audit: NewAuditEvent,
    ) -> Result<()>;
    async fn list_invitations(&self, workspace_id: &str) -> Result<Vec<InvitationRecord>>;
    async fn find_invitation(&self, token_hash: &[u8]) -> Result<Option<InvitationRecord>>;
    /// `NotFound` unless pending in `workspace_id`.
    async fn revoke_invitation(
        &self,
        workspace_id: &str,
        id: &str,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// Uses the invitation once and creates the invited user as a member.
    async fn accept_invitation_as_new_user(
        &self,
        invitation: &InvitationRecord,
        user: &NewUser,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// Uses the invitation once and adds an existing user as a member.
    async fn accept_invitation_as_user(
        &self,
        invitation: &InvitationRecord,
        user_id: &str,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;
}

const INVITATION_COLUMNS: &str = "id, workspace_id, email, role, token_hash, invited_by, created_at, expires_at, accepted_at, revoked_at";

pub(crate) fn invitation_select(filter: &str) -> String {
    format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE {filter}")
}

/// Implements [`MemberStore`] for a backend, like `identity_store_impl!`.
macro_rules! member_store_impl {
    ($store:ty, $conn:ty, $append:path, $lock_workspace:path) => {
        #[async_trait::async_trait]
        impl $crate::members::MemberStore for $store {
            async fn set_require_mfa(
                &self,
                workspace_id: &str,
                required: bool,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("UPDATE workspaces SET require_mfa = $2 WHERE id = $1")
                    .bind(workspace_id)
                    .bind(required)
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

            async fn set_require_mfa_for_admins(
                &self,
                workspace_id: &str,
                required: bool,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("UPDATE workspaces SET require_mfa_for_admins = $2 WHERE id = $1")
                    .bind(workspace_id)
                    .bind(required)
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

            async fn mfa_policy(&self, workspace_id: &str) -> $crate::Result<(bool, bool)> {
                sqlx::query_as("SELECT require_mfa, require_mfa_for_admins FROM workspaces WHERE id = $1")
                    .bind(workspace_id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("workspace"))
            }

            async fn elevate(
                &self,
                workspace_id: &str,
                user_id: &str,
                role: &str,
                until: chrono::DateTime<chrono::Utc>,
                by: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE memberships SET elevated_role = $3, elevated_until = $4, elevated_by = $5
                     WHERE workspace_id = $1 AND user_id = $2",
                )
                .bind(workspace_id)
                .bind(user_id)
                .bind(role)
                .bind(until)
                .bind(by)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("member"));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn end_elevation(
                &self,
                workspace_id: &str,
                user_id: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE memberships SET elevated_role = NULL, elevated_until = NULL, elevated_by = NULL
                     WHERE workspace_id = $1 AND user_id = $2 AND elevated_role IS NOT NULL",
                )
                .bind(workspace_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("elevation"));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn lapsed_elevations(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::members::LapsedElevation>> {
                Ok(sqlx::query_as(
                    "SELECT workspace_id, user_id, elevated_role, elevated_until FROM memberships
                     WHERE elevated_until IS NOT NULL AND elevated_until <= $1 ORDER BY elevated_until LIMIT $2",
                )
                .bind(now)
                .bind(limit as i64)
                .fetch_all(self.reads())
                .await?)
            }

            async fn clear_lapsed_elevation(
                &self,
                lapsed: &$crate::members::LapsedElevation,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<bool> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE memberships SET elevated_role = NULL, elevated_until = NULL, elevated_by = NULL
                     WHERE workspace_id = $1 AND user_id = $2 AND elevated_until = $3",
                )
                .bind(&lapsed.workspace_id)
                .bind(&lapsed.user_id)
                .bind(lapsed.elevated_until)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 1 {
                    $append(&mut tx, audit).await?;
                }
                tx.commit().await?;
                Ok(done == 1)
            }

            async fn create_invitation(
                &self,
                inv: &$crate::members::InvitationRecord,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO invitations (id, workspace_id, email, role, token_hash, invited_by, created_at,
                        expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&inv.id)
                .bind(&inv.workspace_id)
                .bind(&inv.sealed_email)
                .bind(&inv.role)
                .bind(&inv.token_hash)
                .bind(&inv.invited_by)
                .bind(inv.created_at)
                .bind(inv.expires_at)
                .execute(&mut *tx)
                .await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_invitations(
                &self,
                workspace_id: &str,
            ) -> $crate::Result<Vec<$crate::members::InvitationRecord>> {
                let sql = $crate::members::invitation_select("workspace_id = $1 ORDER BY created_at DESC LIMIT 500");
                Ok(sqlx::query_as(&sql).bind(workspace_id).fetch_all(self.reads()).await?)
            }

            async fn find_invitation(
                &self,
                token_hash: &[u8],
            ) -> $crate::Result<Option<$crate::members::InvitationRecord>> {
                Ok(sqlx::query_as(&$crate::members::invitation_select("token_hash = $1"))
                    .bind(token_hash)
                    .fetch_optional(self.reads())
                    .await?)
            }

            async fn revoke_invitation(
                &self,
                workspace_id: &str,
                id: &str,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE invitations SET revoked_at = $3 WHERE workspace_id = $1 AND id = $2
                     AND revoked_at IS NULL AND accepted_at IS NULL",
                )
                .bind(workspace_id)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("invitation"));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn accept_invitation_as_new_user(
                &self,
                inv: &$crate::members::InvitationRecord,
                user: &$crate::identity::NewUser,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                mark_invitation_used(&mut tx, &inv.id, user.now).await?;
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
                .execute(&mut *tx)
                .await
                .map_err(|e| $crate::StoreError::conflict_on_unique(e, "a user with this email exists; sign in to accept"))?;
                add_member(&mut tx, &inv.workspace_id, &user.id, &inv.role, user.now).await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn accept_invitation_as_user(
                &self,
                inv: &$crate::members::InvitationRecord,
                user_id: &str,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                $lock_workspace(&mut tx, &inv.workspace_id).await?;
                mark_invitation_used(&mut tx, &inv.id, now).await?;
                add_member(&mut tx, &inv.workspace_id, user_id, &inv.role, now).await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }
        }

        async fn mark_invitation_used(
            conn: &mut $conn,
            id: &str,
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<()> {
            let done = sqlx::query(
                "UPDATE invitations SET accepted_at = $2 WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if done == 0 {
                return Err($crate::StoreError::Conflict("this invitation was already used or revoked".into()));
            }
            Ok(())
        }

        async fn add_member(
            conn: &mut $conn,
            workspace_id: &str,
            user_id: &str,
            role: &str,
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<()> {
            sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
                .bind(workspace_id)
                .bind(user_id)
                .bind(role)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(|e| $crate::StoreError::conflict_on_unique(e, "already a member of this workspace"))?;
            Ok(())
        }
    };
}
pub(crate) use member_store_impl;
