//! Signed audit checkpoints and the chain listings a verifier needs. SQL
//! shared by both backends, as in `identity.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CheckpointRecord {
    pub id: String,
    pub chain: String,
    pub seq: i64,
    pub hash: Vec<u8>,
    pub signed_at: DateTime<Utc>,
    pub public_key: Vec<u8>,
    pub signature: Vec<u8>,
}

#[async_trait]
pub trait CheckpointStore {
    /// Every chain with events or checkpoints (a chain whose events were all
    /// deleted still shows through its checkpoints).
    async fn audit_chains(&self) -> Result<Vec<String>>;
    /// The last event's `(seq, hash)` of a chain.
    async fn audit_chain_head(&self, chain: &str) -> Result<Option<(i64, Vec<u8>)>>;
    async fn latest_checkpoint(&self, chain: &str) -> Result<Option<CheckpointRecord>>;
    /// A chain's checkpoints in order.
    async fn checkpoints(&self, chain: &str) -> Result<Vec<CheckpointRecord>>;
    /// Stores a checkpoint; an existing one for the same position is kept.
    async fn insert_checkpoint(&self, checkpoint: &CheckpointRecord) -> Result<()>;
}

macro_rules! checkpoint_store_impl {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::checkpoints::CheckpointStore for $store {
            async fn audit_chains(&self) -> $crate::Result<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT chain FROM audit_events UNION SELECT chain FROM audit_checkpoints
                     UNION SELECT chain FROM audit_chain_starts ORDER BY chain",
                )
                .fetch_all(self.reads())
                .await?)
            }

            async fn audit_chain_head(&self, chain: &str) -> $crate::Result<Option<(i64, Vec<u8>)>> {
                Ok(sqlx::query_as("SELECT seq, hash FROM audit_events WHERE chain = $1 ORDER BY seq DESC LIMIT 1")
                    .bind(chain)
                    .fetch_optional(self.reads())
                    .await?)
            }

            async fn latest_checkpoint(
                &self,
                chain: &str,
            ) -> $crate::Result<Option<$crate::checkpoints::CheckpointRecord>> {
                Ok(sqlx::query_as(
                    "SELECT id, chain, seq, hash, signed_at, public_key, signature FROM audit_checkpoints
                     WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
                )
                .bind(chain)
                .fetch_optional(self.reads())
                .await?)
            }

            async fn checkpoints(&self, chain: &str) -> $crate::Result<Vec<$crate::checkpoints::CheckpointRecord>> {
                Ok(sqlx::query_as(
                    "SELECT id, chain, seq, hash, signed_at, public_key, signature FROM audit_checkpoints
                     WHERE chain = $1 ORDER BY seq",
                )
                .bind(chain)
                .fetch_all(self.reads())
                .await?)
            }

            async fn insert_checkpoint(&self, c: &$crate::checkpoints::CheckpointRecord) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO audit_checkpoints (id, chain, seq, hash, signed_at, public_key, signature)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (chain, seq) DO NOTHING",
                )
                .bind(&c.id)
                .bind(&c.chain)
                .bind(c.seq)
                .bind(&c.hash)
                .bind(c.signed_at)
                .bind(&c.public_key)
                .bind(&c.signature)
                .execute(self.writes())
                .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use checkpoint_store_impl;
