//! The dispatcher's storage: per-channel rate-limiter leases, claiming due
//! outbox rows under a lease (PostgreSQL `FOR UPDATE SKIP LOCKED`; SQLite has
//! one writer), marking provider calls as started (so a crash leaves the row
//! "in doubt" rather than silently resendable), and recording what each call
//! did. Status changes go through [`apply_status`](crate::inbound) so the
//! monotonic rules live in one place.
//!
//! The SQL is written once with `$n` placeholders and instantiated for both
//! backends by `dispatch_store_impl!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;
use crate::events::NewCustomerEvent;
use crate::messaging::OutboxRow;

/// One status change of a message, for building its customer event.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub message_id: String,
    pub workspace_id: String,
    pub channel_id: String,
    pub contact_id: String,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: String,
    pub wamid: Option<String>,
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// Builds (and seals) the customer event of a status change; the server
/// supplies it so the store writes the event in the change's transaction.
pub type EventSealer<'a> = &'a (dyn Fn(&StatusChange) -> NewCustomerEvent + Send + Sync);

/// What one provider call (or the decision not to make it) led to.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    /// The provider accepted the message under this id, saying how when it did
    /// (`messages[].message_status`).
    Sent {
        wamid: String,
        acceptance: Option<String>,
    },
    /// Not accepted; try again at `next_attempt_at`.
    Retry {
        next_attempt_at: DateTime<Utc>,
        code: Option<i64>,
        title: Option<String>,
    },
    /// The provider may have accepted it (timeout, lost response): keep the
    /// attempt marked as started and wait for a status webhook until `next_attempt_at`.
    InDoubt {
        next_attempt_at: DateTime<Utc>,
        title: String,
    },
    /// Not attempted (pair limit, reconciliation wait): come back later, attempts unchanged.
    Defer { next_attempt_at: DateTime<Utc> },
    /// Given up: a permanent error, or the deadline passed.
    Failed { code: Option<i64>, title: String },
}

/// The outcome for one claimed row.
#[derive(Debug, Clone, PartialEq)]
pub struct SendResult {
    pub row: OutboxRow,
    pub outcome: SendOutcome,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait DispatchStore {
    /// Takes or renews the lease on a channel's rate limiter; `false` when
    /// another owner holds an unexpired lease.
    async fn acquire_channel_lease(
        &self,
        channel_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool>;
    async fn release_channel_lease(&self, channel_id: &str, owner: &str) -> Result<()>;
    /// Claims up to `limit` due rows of a channel whose row lease is free or expired.
    async fn claim_outbox_batch(
        &self,
        channel_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxRow>>;
    /// Records that provider calls are about to start (one transaction):
    /// `attempt_started_at`, attempts + 1, and `queued → sending` with its history row.
    async fn mark_attempts_started(
        &self,
        message_ids: &[String],
        owner: &str,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Records a batch of outcomes in one transaction, with their status
    /// history and customer events; statuses that arrived before the `wamid`
    /// was known are applied once it is.
    async fn record_send_results(
        &self,
        results: &[SendResult],
        owner: &str,
        seal: EventSealer<'_>,
    ) -> Result<()>;
    /// Outbox rows of a message, for tests and operators.
    async fn outbox_row(&self, message_id: &str) -> Result<Option<OutboxRow>>;
}

/// Implements [`DispatchStore`] for a backend with `write_tx()`, `reads()` and
/// `insert_status`, `apply_status`, `apply_unmatched` in scope. `$skip_locked`
/// is the row-locking clause of the claim query.
macro_rules! dispatch_store_impl {
    ($store:ty, $insert_status:path, $apply_status:path, $apply_unmatched:path, $skip_locked:literal) => {
        #[async_trait::async_trait]
        impl $crate::dispatch::DispatchStore for $store {
            async fn acquire_channel_lease(
                &self,
                channel_id: &str,
                owner: &str,
                now: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "INSERT INTO channel_leases (channel_id, owner, lease_until) VALUES ($1, $2, $3)
                     ON CONFLICT (channel_id) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
                     WHERE channel_leases.owner = excluded.owner OR channel_leases.lease_until < $4",
                )
                .bind(channel_id)
                .bind(owner)
                .bind(until)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn release_channel_lease(&self, channel_id: &str, owner: &str) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query("DELETE FROM channel_leases WHERE channel_id = $1 AND owner = $2")
                    .bind(channel_id)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn claim_outbox_batch(
                &self,
                channel_id: &str,
                owner: &str,
                now: chrono::DateTime<chrono::Utc>,
                lease_until: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::messaging::OutboxRow>> {
                let sql = format!(
                    "UPDATE outbox SET lease_owner = $2, lease_until = $3
                     WHERE message_id IN (
                        SELECT message_id FROM outbox
                        WHERE channel_id = $1 AND next_attempt_at <= $4
                          AND (lease_until IS NULL OR lease_until < $4)
                          AND NOT EXISTS (
                            SELECT 1 FROM suspensions s WHERE s.lifted_at IS NULL
                              AND ((s.target_kind = 'channel' AND s.target_id = $1)
                                OR (s.target_kind = 'workspace' AND s.target_id =
                                    (SELECT c.workspace_id FROM channels c WHERE c.id = $1))))
                        ORDER BY next_attempt_at, message_id LIMIT $5 {})
                     RETURNING {}",
                    $skip_locked,
                    $crate::messaging::OUTBOX_COLUMNS
                );
                let mut tx = self.write_tx().await?;
                let mut rows: Vec<$crate::messaging::OutboxRow> = sqlx::query_as(&sql)
                    .bind(channel_id)
                    .bind(owner)
                    .bind(lease_until)
                    .bind(now)
                    .bind(limit as i64)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                // RETURNING order is unspecified; keep the queue order.
                rows.sort_by(|a, b| {
                    (a.next_attempt_at, &a.message_id).cmp(&(b.next_attempt_at, &b.message_id))
                });
                Ok(rows)
            }

            async fn mark_attempts_started(
                &self,
                message_ids: &[String],
                owner: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                for chunk in message_ids.chunks(64) {
                    let ids = $crate::padded(chunk);
                    let sql = format!(
                        "UPDATE outbox SET attempt_started_at = $1, attempts = attempts + 1
                         WHERE lease_owner = $2 AND message_id IN ({})",
                        $crate::placeholders(3, ids.len())
                    );
                    let mut q = sqlx::query(&sql).bind(at).bind(owner);
                    for id in &ids {
                        q = q.bind(*id);
                    }
                    q.execute(&mut *tx).await?;
                    let sql = format!(
                        "UPDATE messages SET status = 'sending', updated_at = $1
                         WHERE status = 'queued' AND id IN ({}) RETURNING id",
                        $crate::placeholders(2, ids.len())
                    );
                    let mut q = sqlx::query_scalar::<_, String>(&sql).bind(at);
                    for id in &ids {
                        q = q.bind(*id);
                    }
                    let moved = q.fetch_all(&mut *tx).await?;
                    let rows: Vec<_> = moved
                        .iter()
                        .map(|id| $crate::messaging::NewStatusRow {
                            message_id: id,
                            status: "sending",
                            code: None,
                            title: None,
                            occurred_at: at,
                            recorded_at: at,
                        })
                        .collect();
                    insert_statuses(&mut *tx, &rows).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn record_send_results(
                &self,
                results: &[$crate::dispatch::SendResult],
                owner: &str,
                seal: $crate::dispatch::EventSealer<'_>,
            ) -> $crate::Result<()> {
                use $crate::dispatch::SendOutcome;
                let mut tx = self.write_tx().await?;
                let sent: Vec<(&$crate::dispatch::SendResult, &String)> = results
                    .iter()
                    .filter_map(|r| match &r.outcome {
                        SendOutcome::Sent { wamid, .. } => Some((r, wamid)),
                        _ => None,
                    })
                    .collect();
                record_sent(&mut *tx, &sent, seal).await?;
                for r in results {
                    let row = &r.row;
                    let target = $crate::inbound::MessageRef {
                        id: row.message_id.clone(),
                        workspace_id: row.workspace_id.clone(),
                        channel_id: row.channel_id.clone(),
                        contact_id: row.contact_id.clone(),
                    };
                    match &r.outcome {
                        SendOutcome::Sent { .. } => {}
                        SendOutcome::Failed { code, title } => {
                            $apply_status(
                                &mut *tx, &target, None, "failed", *code, Some(title.as_str()), r.at, r.at, seal,
                            )
                            .await?;
                            sqlx::query("DELETE FROM outbox WHERE message_id = $1")
                                .bind(&row.message_id)
                                .execute(&mut *tx)
                                .await?;
                        }
                        SendOutcome::Retry { next_attempt_at, code, title } => {
                            sqlx::query(
                                "UPDATE outbox SET next_attempt_at = $2, attempt_started_at = NULL,
                                    lease_owner = NULL, lease_until = NULL, last_error_code = $3, last_error_title = $4
                                 WHERE message_id = $1 AND lease_owner = $5",
                            )
                            .bind(&row.message_id)
                            .bind(next_attempt_at)
                            .bind(code)
                            .bind(title)
                            .bind(owner)
                            .execute(&mut *tx)
                            .await?;
                        }
                        SendOutcome::InDoubt { next_attempt_at, title } => {
                            sqlx::query(
                                "UPDATE outbox SET next_attempt_at = $2, lease_owner = NULL, lease_until = NULL,
                                    last_error_code = NULL, last_error_title = $3
                                 WHERE message_id = $1 AND lease_owner = $4",
                            )
                            .bind(&row.message_id)
                            .bind(next_attempt_at)
                            .bind(title)
                            .bind(owner)
                            .execute(&mut *tx)
                            .await?;
                        }
                        SendOutcome::Defer { next_attempt_at } => {
                            sqlx::query(
                                "UPDATE outbox SET next_attempt_at = $2, lease_owner = NULL, lease_until = NULL
                                 WHERE message_id = $1 AND lease_owner = $3",
                            )
                            .bind(&row.message_id)
                            .bind(next_attempt_at)
                            .bind(owner)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn outbox_row(
                &self,
                message_id: &str,
            ) -> $crate::Result<Option<$crate::messaging::OutboxRow>> {
                let sql = format!(
                    "SELECT {} FROM outbox WHERE message_id = $1",
                    $crate::messaging::OUTBOX_COLUMNS
                );
                Ok(sqlx::query_as(&sql).bind(message_id).fetch_optional(self.reads()).await?)
            }
        }
    };
}
pub(crate) use dispatch_store_impl;

/// Defines `record_sent(conn, sent, seal)` for a backend, with `insert_statuses`,
/// `insert_events` and `apply_unmatched` in scope: the accepted sends of a batch
/// in a few set-based statements (provider ids, the `sent` step where the state
/// machine allows it, history, events, outbox rows gone), then the statuses
/// that arrived before their id was known, for the few that have any.
macro_rules! record_sent_fn {
    ($conn:ty) => {
        pub(crate) async fn record_sent(
            conn: &mut $conn,
            sent: &[(&$crate::dispatch::SendResult, &String)],
            seal: $crate::dispatch::EventSealer<'_>,
        ) -> $crate::Result<()> {
            use $crate::bulk::{chunks, values};
            // A status webhook may have reconciled a message first; then only its outbox row goes.
            let mut with_id = std::collections::HashSet::new();
            for range in chunks(sent.len()) {
                let sql = format!(
                    "UPDATE messages SET provider_message_id = v.column2, updated_at = v.column3,
                        provider_acceptance = v.column4
                     FROM (VALUES {}) AS v
                     WHERE messages.id = v.column1 AND messages.provider_message_id IS NULL
                     RETURNING messages.id",
                    values(4, range.len())
                );
                let mut q = sqlx::query_scalar::<_, String>(&sql);
                for (r, wamid) in &sent[range] {
                    let acceptance = match &r.outcome {
                        $crate::dispatch::SendOutcome::Sent { acceptance, .. } => acceptance.as_deref(),
                        _ => None,
                    };
                    q = q.bind(&r.row.message_id).bind(*wamid).bind(r.at).bind(acceptance);
                }
                with_id.extend(q.fetch_all(&mut *conn).await?);
            }
            let fresh: Vec<_> = sent
                .iter()
                .filter(|(r, _)| with_id.contains(&r.row.message_id))
                .collect();
            let from = $crate::inbound::allowed_from("sent")
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            let mut moved = std::collections::HashSet::new();
            for range in chunks(fresh.len()) {
                let sql = format!(
                    "UPDATE messages SET status = 'sent', updated_at = v.column2
                     FROM (VALUES {}) AS v
                     WHERE messages.id = v.column1 AND messages.status IN ({from})
                     RETURNING messages.id",
                    values(2, range.len())
                );
                let mut q = sqlx::query_scalar::<_, String>(&sql);
                for (r, _) in &fresh[range] {
                    q = q.bind(&r.row.message_id).bind(r.at);
                }
                moved.extend(q.fetch_all(&mut *conn).await?);
            }
            let moved: Vec<_> = fresh
                .into_iter()
                .filter(|(r, _)| moved.contains(&r.row.message_id))
                .collect();
            let history: Vec<_> = moved
                .iter()
                .map(|(r, _)| $crate::messaging::NewStatusRow {
                    message_id: &r.row.message_id,
                    status: "sent",
                    code: None,
                    title: None,
                    occurred_at: r.at,
                    recorded_at: r.at,
                })
                .collect();
            insert_statuses(&mut *conn, &history).await?;
            let events: Vec<_> = moved
                .iter()
                .map(|(r, wamid)| {
                    seal(&$crate::dispatch::StatusChange {
                        message_id: r.row.message_id.clone(),
                        workspace_id: r.row.workspace_id.clone(),
                        channel_id: r.row.channel_id.clone(),
                        contact_id: r.row.contact_id.clone(),
                        status: "sent".into(),
                        wamid: Some((*wamid).clone()),
                        error_code: None,
                        error_title: None,
                        occurred_at: r.at,
                    })
                })
                .collect();
            insert_events(&mut *conn, &events).await?;
            for chunk in sent.chunks(64) {
                let ids: Vec<&String> = chunk.iter().map(|(r, _)| &r.row.message_id).collect();
                let ids = $crate::padded(&ids);
                let sql = format!(
                    "DELETE FROM outbox WHERE message_id IN ({})",
                    $crate::placeholders(1, ids.len())
                );
                let mut q = sqlx::query(&sql);
                for id in ids {
                    q = q.bind(*id);
                }
                q.execute(&mut *conn).await?;
            }
            // Statuses that came before the id: look them up per channel, apply the few found.
            let mut by_channel: std::collections::BTreeMap<&str, Vec<&String>> = Default::default();
            for (r, wamid) in sent {
                by_channel.entry(r.row.channel_id.as_str()).or_default().push(*wamid);
            }
            let mut waiting = std::collections::HashSet::new();
            for (channel, wamids) in by_channel {
                for chunk in wamids.chunks(64) {
                    let list = $crate::padded(chunk);
                    let sql = format!(
                        "SELECT DISTINCT provider_message_id FROM unmatched_statuses
                         WHERE channel_id = $1 AND provider_message_id IN ({})",
                        $crate::placeholders(2, list.len())
                    );
                    let mut q = sqlx::query_scalar::<_, String>(&sql).bind(channel);
                    for w in list {
                        q = q.bind(*w);
                    }
                    for w in q.fetch_all(&mut *conn).await? {
                        waiting.insert((channel.to_owned(), w));
                    }
                }
            }
            for (r, wamid) in sent {
                if waiting.contains(&(r.row.channel_id.clone(), (*wamid).clone())) {
                    let target = $crate::inbound::MessageRef {
                        id: r.row.message_id.clone(),
                        workspace_id: r.row.workspace_id.clone(),
                        channel_id: r.row.channel_id.clone(),
                        contact_id: r.row.contact_id.clone(),
                    };
                    apply_unmatched(&mut *conn, &target, wamid, r.at, seal).await?;
                }
            }
            Ok(())
        }
    };
}
pub(crate) use record_sent_fn;
