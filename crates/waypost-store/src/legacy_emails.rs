//! Addresses stored in plaintext before emails were encrypted (migration
//! 20261213000200 moved them to `legacy_email`). The server seals them at
//! startup, before it serves, because a migration cannot encrypt; this module
//! only reads them and swaps each for its sealed form.

use async_trait::async_trait;

use crate::Result;
use crate::identity::SealedEmail;

/// A table that held plaintext addresses, and whether it keeps a blind index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyEmailTable {
    pub table: &'static str,
    pub indexed: bool,
}

/// Every table the migration left plaintext in.
pub const LEGACY_EMAIL_TABLES: &[LegacyEmailTable] = &[
    LegacyEmailTable {
        table: "users",
        indexed: true,
    },
    LegacyEmailTable {
        table: "invitations",
        indexed: false,
    },
    LegacyEmailTable {
        table: "email_tokens",
        indexed: true,
    },
];

/// One row's plaintext address, still to be sealed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LegacyEmail {
    pub id: String,
    pub legacy_email: String,
}

#[async_trait]
pub trait LegacyEmailStore {
    /// Up to `limit` rows of `t` that still hold a plaintext address.
    async fn legacy_emails(&self, t: LegacyEmailTable, limit: u32) -> Result<Vec<LegacyEmail>>;
    /// Stores `email` (its index only where `t` keeps one) and clears the
    /// plaintext; false when the row no longer holds `plaintext`.
    async fn seal_legacy_email(
        &self,
        t: LegacyEmailTable,
        id: &str,
        plaintext: &str,
        email: &SealedEmail,
    ) -> Result<bool>;
    /// After sealing: rewrites what still holds the old plaintext on disk
    /// (SQLite's WAL is checkpointed and truncated, its freed cells are zeroed
    /// by `secure_delete`; PostgreSQL's tables are rewritten without their
    /// dead row versions).
    async fn scrub_legacy_emails(&self) -> Result<()>;
}

/// Implements [`LegacyEmailStore`] for a backend with `writes()`, given the
/// statements that scrub old row versions from its files.
macro_rules! legacy_email_store_impl {
    ($store:ty, $scrub:expr) => {
        #[async_trait::async_trait]
        impl $crate::legacy_emails::LegacyEmailStore for $store {
            async fn legacy_emails(
                &self,
                t: $crate::legacy_emails::LegacyEmailTable,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::legacy_emails::LegacyEmail>> {
                // The table name comes from LEGACY_EMAIL_TABLES, never from input.
                let sql = format!(
                    "SELECT id, legacy_email FROM {} WHERE legacy_email IS NOT NULL ORDER BY id LIMIT $1",
                    t.table
                );
                Ok(sqlx::query_as(&sql)
                    .bind(limit as i64)
                    .fetch_all(self.writes())
                    .await?)
            }

            async fn seal_legacy_email(
                &self,
                t: $crate::legacy_emails::LegacyEmailTable,
                id: &str,
                plaintext: &str,
                email: &$crate::identity::SealedEmail,
            ) -> $crate::Result<bool> {
                let sql = if t.indexed {
                    format!(
                        "UPDATE {} SET email = $3, email_index = $4, legacy_email = NULL
                         WHERE id = $1 AND legacy_email = $2",
                        t.table
                    )
                } else {
                    format!(
                        "UPDATE {} SET email = $3, legacy_email = NULL WHERE id = $1 AND legacy_email = $2",
                        t.table
                    )
                };
                let mut query = sqlx::query(&sql).bind(id).bind(plaintext).bind(&email.sealed);
                if t.indexed {
                    query = query.bind(&email.index);
                }
                let done = query
                    .execute(self.writes())
                    .await
                    .map_err(|e| $crate::StoreError::conflict_on_unique(e, "another account uses this address"))?;
                Ok(done.rows_affected() == 1)
            }

            async fn scrub_legacy_emails(&self) -> $crate::Result<()> {
                for sql in $scrub {
                    sqlx::query(sql).execute(self.writes()).await?;
                }
                Ok(())
            }
        }
    };
}
pub(crate) use legacy_email_store_impl;
