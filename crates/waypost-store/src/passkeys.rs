//! Records and the storage trait for WebAuthn passkeys and for the state of
//! WebAuthn ceremonies in flight (registration, second-factor and passwordless
//! sign-in).
//!
//! Both hold only ciphertext the caller made: a passkey's serialised credential
//! (AAD `(passkeys, credential, id)`) and a ceremony's state (AAD
//! `(webauthn_challenges, state, id)`). A passkey is found by a keyed hash of its
//! credential id. Ceremony state is taken at most once: reading it deletes it.
//! As in `identity`, the SQL is written once and instantiated per backend by
//! `passkey_store_impl!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;

/// The most passkeys one user may hold; lists and assertions stay bounded.
pub const MAX_PASSKEYS_PER_USER: i64 = 20;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasskeyRecord {
    /// `pk_<ulid>`.
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// Keyed hash (blind index) of the WebAuthn credential id.
    pub credential_id_hash: Vec<u8>,
    /// The serialised credential, encrypted with AAD `(passkeys, credential, id)`.
    pub credential: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// What a ceremony is for; a state started for one cannot finish another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    Register,
    /// Second factor after a correct password.
    Authenticate,
    /// Passwordless sign-in that names the account by email first.
    Login,
    /// Passwordless sign-in with a discoverable passkey: the authenticator
    /// names the account.
    Discover,
}

impl ChallengeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::Register => "register",
            ChallengeKind::Authenticate => "authenticate",
            ChallengeKind::Login => "login",
            ChallengeKind::Discover => "discover",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChallengeRecord {
    pub id: String,
    /// Absent for a passwordless sign-in started with an unknown email.
    pub user_id: Option<String>,
    pub kind: String,
    /// Encrypted with AAD `(webauthn_challenges, state, id)`.
    pub state: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait PasskeyStore {
    /// Adds a passkey; `Conflict` when the credential is already registered or
    /// the user holds [`MAX_PASSKEYS_PER_USER`].
    async fn create_passkey(&self, passkey: &PasskeyRecord, audit: NewAuditEvent) -> Result<()>;
    /// The user's passkeys, oldest first (at most [`MAX_PASSKEYS_PER_USER`]).
    async fn list_passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRecord>>;
    async fn count_passkeys(&self, user_id: &str) -> Result<i64>;
    async fn find_passkey(&self, credential_id_hash: &[u8]) -> Result<Option<PasskeyRecord>>;
    /// Stores the credential after an assertion (new counter) and marks it used.
    async fn record_passkey_use(
        &self,
        id: &str,
        credential: &[u8],
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Renames a passkey; `NotFound` unless it belongs to `user_id`.
    async fn rename_passkey(
        &self,
        user_id: &str,
        id: &str,
        name: &str,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// `NotFound` unless the passkey belongs to `user_id`.
    async fn delete_passkey(&self, user_id: &str, id: &str, audit: NewAuditEvent) -> Result<()>;

    async fn create_webauthn_challenge(&self, challenge: &ChallengeRecord) -> Result<()>;
    /// Deletes and returns the challenge when it exists, is of `kind` and has
    /// not expired; a second take of the same id finds nothing.
    async fn take_webauthn_challenge(
        &self,
        id: &str,
        kind: ChallengeKind,
        now: DateTime<Utc>,
    ) -> Result<Option<ChallengeRecord>>;
    /// Deletes up to `limit` challenges that expired before `now`; returns how many.
    async fn purge_expired_webauthn_challenges(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64>;
}

const PASSKEY_COLUMNS: &str =
    "id, user_id, name, credential_id_hash, credential, created_at, last_used_at";

pub(crate) fn passkey_select(filter: &str) -> String {
    format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE {filter}")
}

/// Implements [`PasskeyStore`] for a backend type with inherent `reads()`,
/// `writes()` and `write_tx()`, given its `append_audit(conn, event)`.
macro_rules! passkey_store_impl {
    ($store:ty, $append:path) => {
        #[async_trait::async_trait]
        impl $crate::passkeys::PasskeyStore for $store {
            async fn create_passkey(
                &self,
                p: &$crate::passkeys::PasskeyRecord,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let held: i64 = sqlx::query_scalar("SELECT count(*) FROM passkeys WHERE user_id = $1")
                    .bind(&p.user_id)
                    .fetch_one(&mut *tx)
                    .await?;
                if held >= $crate::passkeys::MAX_PASSKEYS_PER_USER {
                    return Err($crate::StoreError::Conflict(format!(
                        "a user may hold at most {} passkeys",
                        $crate::passkeys::MAX_PASSKEYS_PER_USER
                    )));
                }
                sqlx::query(
                    "INSERT INTO passkeys (id, user_id, name, credential_id_hash, credential, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&p.id)
                .bind(&p.user_id)
                .bind(&p.name)
                .bind(&p.credential_id_hash)
                .bind(&p.credential)
                .bind(p.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| $crate::StoreError::conflict_on_unique(e, "this passkey is already registered"))?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_passkeys(&self, user_id: &str) -> $crate::Result<Vec<$crate::passkeys::PasskeyRecord>> {
                let sql = $crate::passkeys::passkey_select("user_id = $1 ORDER BY created_at, id LIMIT $2");
                Ok(sqlx::query_as(&sql)
                    .bind(user_id)
                    .bind($crate::passkeys::MAX_PASSKEYS_PER_USER)
                    .fetch_all(self.reads())
                    .await?)
            }

            async fn count_passkeys(&self, user_id: &str) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar("SELECT count(*) FROM passkeys WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_one(self.reads())
                    .await?)
            }

            async fn find_passkey(
                &self,
                credential_id_hash: &[u8],
            ) -> $crate::Result<Option<$crate::passkeys::PasskeyRecord>> {
                Ok(sqlx::query_as(&$crate::passkeys::passkey_select("credential_id_hash = $1"))
                    .bind(credential_id_hash)
                    .fetch_optional(self.reads())
                    .await?)
            }

            async fn record_passkey_use(
                &self,
                id: &str,
                credential: &[u8],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                sqlx::query("UPDATE passkeys SET credential = $2, last_used_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(credential)
                    .bind(now)
                    .execute(self.writes())
                    .await?;
                Ok(())
            }

            async fn rename_passkey(
                &self,
                user_id: &str,
                id: &str,
                name: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("UPDATE passkeys SET name = $3 WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user_id)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("passkey"));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_passkey(
                &self,
                user_id: &str,
                id: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("passkey"));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_webauthn_challenge(
                &self,
                c: &$crate::passkeys::ChallengeRecord,
            ) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO webauthn_challenges (id, user_id, kind, state, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&c.id)
                .bind(&c.user_id)
                .bind(&c.kind)
                .bind(&c.state)
                .bind(c.created_at)
                .bind(c.expires_at)
                .execute(self.writes())
                .await?;
                Ok(())
            }

            async fn take_webauthn_challenge(
                &self,
                id: &str,
                kind: $crate::passkeys::ChallengeKind,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Option<$crate::passkeys::ChallengeRecord>> {
                let taken: Option<$crate::passkeys::ChallengeRecord> = sqlx::query_as(
                    "DELETE FROM webauthn_challenges WHERE id = $1 AND kind = $2
                     RETURNING id, user_id, kind, state, created_at, expires_at",
                )
                .bind(id)
                .bind(kind.as_str())
                .fetch_optional(self.writes())
                .await?;
                // Compared here, not in SQL: SQLite stores timestamps as text.
                Ok(taken.filter(|c| c.expires_at > now))
            }

            async fn purge_expired_webauthn_challenges(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<u64> {
                let done = sqlx::query(
                    "DELETE FROM webauthn_challenges WHERE id IN
                        (SELECT id FROM webauthn_challenges WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)",
                )
                .bind(now)
                .bind(limit as i64)
                .execute(self.writes())
                .await?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(crate) use passkey_store_impl;
