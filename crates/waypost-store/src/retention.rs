//! Retention: counting and removing, in bounded batches, what has outlived its
//! retention period, and cutting the oldest part off an audit chain while a
//! signed start record keeps the rest verifiable. SQL shared by both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;

/// What a retention pass removes, each with its own period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetentionKind {
    /// Retained message content past its `content_expires_at` (the cutoff is now).
    MessageContent,
    /// Messages (with their status history) created before the cutoff, no longer in the
    /// outbox, and without content the workspace still retains (a longer `days:N` wins).
    MessageMetadata,
    /// Status webhooks for unknown messages received before the cutoff.
    InboundRecords,
    /// Webhook delivery attempts, and finished deliveries without attempts.
    DeliveryAttempts,
    /// Customer events already fanned out, with no pending delivery.
    CustomerEvents,
    ShieldScans,
    /// Sessions last seen before the cutoff (long expired).
    Sessions,
    /// Idempotency records past their `expires_at` (the cutoff is now).
    IdempotencyRecords,
    /// Kept media copies past their `blob_expires_at` (the cutoff is now).
    MediaBlobs,
    /// Media rows without a kept copy whose provider copy expired before the cutoff.
    MediaRecords,
    /// Internal conversation notes past their `expires_at` (the workspace's content
    /// retention; the cutoff is now).
    ConversationNotes,
}

impl RetentionKind {
    pub const ALL: [RetentionKind; 11] = [
        RetentionKind::MessageContent,
        RetentionKind::MediaBlobs,
        RetentionKind::ConversationNotes,
        RetentionKind::MessageMetadata,
        RetentionKind::MediaRecords,
        RetentionKind::InboundRecords,
        RetentionKind::DeliveryAttempts,
        RetentionKind::CustomerEvents,
        RetentionKind::ShieldScans,
        RetentionKind::Sessions,
        RetentionKind::IdempotencyRecords,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RetentionKind::MessageContent => "message_content",
            RetentionKind::MessageMetadata => "message_metadata",
            RetentionKind::InboundRecords => "inbound_records",
            RetentionKind::DeliveryAttempts => "delivery_attempts",
            RetentionKind::CustomerEvents => "customer_events",
            RetentionKind::ShieldScans => "shield_scans",
            RetentionKind::Sessions => "sessions",
            RetentionKind::IdempotencyRecords => "idempotency_records",
            RetentionKind::MediaBlobs => "media_blobs",
            RetentionKind::MediaRecords => "media_records",
            RetentionKind::ConversationNotes => "conversation_notes",
        }
    }

    /// `SELECT count(*)` of the rows a purge at `$1` would remove.
    pub(crate) fn count_sql(self) -> &'static str {
        match self {
            RetentionKind::MessageContent => {
                "SELECT count(*) FROM messages WHERE content IS NOT NULL AND content_expires_at < $1"
            }
            RetentionKind::MessageMetadata => {
                "SELECT count(*) FROM messages m WHERE m.created_at < $1 AND m.content IS NULL
                   AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id)"
            }
            RetentionKind::InboundRecords => {
                "SELECT count(*) FROM unmatched_statuses WHERE received_at < $1"
            }
            RetentionKind::DeliveryAttempts => {
                "SELECT (SELECT count(*) FROM webhook_attempts WHERE attempted_at < $1)
                      + (SELECT count(*) FROM webhook_deliveries d WHERE d.state <> 'pending' AND d.updated_at < $1
                           AND NOT EXISTS (SELECT 1 FROM webhook_attempts a
                                           WHERE a.delivery_id = d.id AND a.attempted_at >= $1))"
            }
            RetentionKind::CustomerEvents => {
                "SELECT count(*) FROM customer_events e WHERE e.created_at < $1 AND e.fanned_out_at IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.state = 'pending')"
            }
            RetentionKind::ShieldScans => "SELECT count(*) FROM shield_scans WHERE created_at < $1",
            RetentionKind::Sessions => "SELECT count(*) FROM sessions WHERE last_seen_at < $1",
            RetentionKind::IdempotencyRecords => {
                "SELECT count(*) FROM idempotency_records WHERE expires_at < $1"
            }
            RetentionKind::MediaBlobs => {
                "SELECT count(*) FROM media WHERE blob IS NOT NULL AND blob_expires_at < $1"
            }
            RetentionKind::MediaRecords => {
                "SELECT count(*) FROM media WHERE blob IS NULL AND provider_expires_at < $1"
            }
            RetentionKind::ConversationNotes => {
                "SELECT count(*) FROM conversation_notes WHERE expires_at < $1"
            }
        }
    }

    /// Removes up to `$2` of those rows; `None` where an older purge method does it.
    pub(crate) fn purge_sql(self) -> Option<&'static str> {
        match self {
            RetentionKind::MessageMetadata => Some(
                "DELETE FROM messages WHERE id IN
                    (SELECT m.id FROM messages m WHERE m.created_at < $1 AND m.content IS NULL
                       AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id)
                     ORDER BY m.created_at LIMIT $2)",
            ),
            RetentionKind::InboundRecords => Some(
                "DELETE FROM unmatched_statuses WHERE id IN
                    (SELECT id FROM unmatched_statuses WHERE received_at < $1 ORDER BY id LIMIT $2)",
            ),
            RetentionKind::CustomerEvents => Some(
                "DELETE FROM customer_events WHERE id IN
                    (SELECT e.id FROM customer_events e WHERE e.created_at < $1 AND e.fanned_out_at IS NOT NULL
                       AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.state = 'pending')
                     ORDER BY e.seq LIMIT $2)",
            ),
            RetentionKind::Sessions => Some(
                "DELETE FROM sessions WHERE id IN
                    (SELECT id FROM sessions WHERE last_seen_at < $1 ORDER BY last_seen_at LIMIT $2)",
            ),
            RetentionKind::MediaBlobs => Some(
                "UPDATE media SET blob = NULL, blob_key = NULL, blob_expires_at = NULL WHERE id IN
                    (SELECT id FROM media WHERE blob IS NOT NULL AND blob_expires_at < $1
                     ORDER BY blob_expires_at LIMIT $2)",
            ),
            RetentionKind::MediaRecords => Some(
                "DELETE FROM media WHERE id IN
                    (SELECT id FROM media WHERE blob IS NULL AND provider_expires_at < $1
                     ORDER BY provider_expires_at LIMIT $2)",
            ),
            RetentionKind::ConversationNotes => Some(
                "DELETE FROM conversation_notes WHERE id IN
                    (SELECT id FROM conversation_notes WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
            ),
            RetentionKind::MessageContent
            | RetentionKind::DeliveryAttempts
            | RetentionKind::ShieldScans
            | RetentionKind::IdempotencyRecords => None,
        }
    }
}

/// Where the kept part of a purged audit chain begins, signed by the server's
/// audit key: the first kept event's position and the hash it links back to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditChainStart {
    pub chain: String,
    pub seq: i64,
    pub prev_hash: Vec<u8>,
    pub signed_at: DateTime<Utc>,
    pub public_key: Vec<u8>,
    pub signature: Vec<u8>,
}

/// How a chain would be cut at a cutoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCut {
    /// The first event to keep: the earliest at or after the cutoff, and never past the head.
    pub first_kept_seq: i64,
    /// That event's `prev_hash`.
    pub prev_hash: Vec<u8>,
    /// Events before it still stored.
    pub removable: u64,
}

#[async_trait]
pub trait RetentionStore {
    /// How many rows of `kind` are older than `cutoff`.
    async fn retention_count(&self, kind: RetentionKind, cutoff: DateTime<Utc>) -> Result<u64>;
    /// Removes up to `limit` rows of `kind` older than `cutoff`; returns how many went.
    async fn retention_purge(
        &self,
        kind: RetentionKind,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64>;
    /// Where a chain's kept part begins, when it was ever purged.
    async fn audit_chain_start(&self, chain: &str) -> Result<Option<AuditChainStart>>;
    /// How removing a chain's events before `cutoff` would cut it; `None` for an empty chain.
    async fn audit_cut(&self, chain: &str, cutoff: DateTime<Utc>) -> Result<Option<AuditCut>>;
    /// Records a new start (only ever moving forward) and drops the checkpoints before it.
    async fn set_audit_chain_start(&self, start: &AuditChainStart) -> Result<()>;
    /// Deletes up to `limit` events of `chain` before `before_seq`, which must
    /// not pass the chain's signed start.
    async fn delete_audit_events_before(
        &self,
        chain: &str,
        before_seq: i64,
        limit: u32,
    ) -> Result<u64>;
}

macro_rules! retention_store_impl {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::retention::RetentionStore for $store {
            async fn retention_count(
                &self,
                kind: $crate::retention::RetentionKind,
                cutoff: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<u64> {
                let n: i64 = sqlx::query_scalar(kind.count_sql())
                    .bind(cutoff)
                    .fetch_one(self.reads())
                    .await?;
                Ok(n.max(0) as u64)
            }

            async fn retention_purge(
                &self,
                kind: $crate::retention::RetentionKind,
                cutoff: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<u64> {
                use $crate::retention::RetentionKind as K;
                match kind {
                    K::MessageContent => $crate::inbound::InboundStore::purge_expired_content(self, cutoff, limit).await,
                    K::DeliveryAttempts => $crate::webhooks::WebhookStore::purge_webhook_history(self, cutoff, limit).await,
                    K::ShieldScans => $crate::shield::ShieldStore::purge_shield_scans(self, cutoff, limit).await,
                    K::IdempotencyRecords => {
                        $crate::IdempotencyStore::purge_expired_idempotency_records(self, cutoff, limit).await
                    }
                    _ => {
                        let sql = kind.purge_sql().expect("every other kind has its own SQL");
                        Ok(sqlx::query(sql)
                            .bind(cutoff)
                            .bind(i64::from(limit))
                            .execute(self.writes())
                            .await?
                            .rows_affected())
                    }
                }
            }

            async fn audit_chain_start(
                &self,
                chain: &str,
            ) -> $crate::Result<Option<$crate::retention::AuditChainStart>> {
                Ok(sqlx::query_as(
                    "SELECT chain, seq, prev_hash, signed_at, public_key, signature
                     FROM audit_chain_starts WHERE chain = $1",
                )
                .bind(chain)
                .fetch_optional(self.reads())
                .await?)
            }

            async fn audit_cut(
                &self,
                chain: &str,
                cutoff: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Option<$crate::retention::AuditCut>> {
                let first: Option<(i64, Vec<u8>)> = sqlx::query_as(
                    "SELECT seq, prev_hash FROM audit_events WHERE chain = $1 AND seq =
                        COALESCE((SELECT min(seq) FROM audit_events WHERE chain = $1 AND occurred_at >= $2),
                                 (SELECT max(seq) FROM audit_events WHERE chain = $1))",
                )
                .bind(chain)
                .bind(cutoff)
                .fetch_optional(self.reads())
                .await?;
                let Some((first_kept_seq, prev_hash)) = first else {
                    return Ok(None);
                };
                let removable: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM audit_events WHERE chain = $1 AND seq < $2",
                )
                .bind(chain)
                .bind(first_kept_seq)
                .fetch_one(self.reads())
                .await?;
                Ok(Some($crate::retention::AuditCut {
                    first_kept_seq,
                    prev_hash,
                    removable: removable.max(0) as u64,
                }))
            }

            async fn set_audit_chain_start(
                &self,
                s: &$crate::retention::AuditChainStart,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO audit_chain_starts (chain, seq, prev_hash, signed_at, public_key, signature)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash,
                        signed_at = excluded.signed_at, public_key = excluded.public_key,
                        signature = excluded.signature
                     WHERE audit_chain_starts.seq < excluded.seq",
                )
                .bind(&s.chain)
                .bind(s.seq)
                .bind(&s.prev_hash)
                .bind(s.signed_at)
                .bind(&s.public_key)
                .bind(&s.signature)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM audit_checkpoints WHERE chain = $1 AND seq < $2")
                    .bind(&s.chain)
                    .bind(s.seq)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_audit_events_before(
                &self,
                chain: &str,
                before_seq: i64,
                limit: u32,
            ) -> $crate::Result<u64> {
                // Bounded by the signed start, so nothing a verifier still walks can go.
                Ok(sqlx::query(
                    "DELETE FROM audit_events WHERE id IN
                        (SELECT e.id FROM audit_events e JOIN audit_chain_starts s ON s.chain = e.chain
                         WHERE e.chain = $1 AND e.seq < $2 AND e.seq < s.seq ORDER BY e.seq LIMIT $3)",
                )
                .bind(chain)
                .bind(before_seq)
                .bind(i64::from(limit))
                .execute(self.writes())
                .await?
                .rows_affected())
            }
        }
    };
}
pub(crate) use retention_store_impl;
