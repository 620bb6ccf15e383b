//! Customer events and their storage trait. Other stores write events inside
//! their own transactions through [`insert_events`]; the webhook deliverer
//! reads them back. The payload arrives already encrypted by the caller.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;

/// An event to record. `payload` is the encrypted JSON `data` object
/// (associated data: table `customer_events`, column `payload`, row `id`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewCustomerEvent {
    pub id: String,
    pub workspace_id: String,
    pub event_type: String,
    pub subject_id: Option<String>,
    pub payload: Vec<u8>,
    /// Inbound content held while the event is in transit, encrypted under the
    /// contact's content key (associated data: `customer_events`, `content`, `id`).
    pub content: Option<Vec<u8>>,
    /// Whose content key `content` is encrypted under.
    pub content_contact_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CustomerEventRow {
    pub seq: i64,
    pub id: String,
    pub workspace_id: String,
    pub event_type: String,
    pub subject_id: Option<String>,
    pub payload: Vec<u8>,
    /// Held inbound content; `None` once delivered everywhere (or never carried).
    pub content: Option<Vec<u8>>,
    pub content_contact_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub fanned_out_at: Option<DateTime<Utc>>,
}

/// Most missing sequence numbers one [`CustomerEventStore::customer_events_tail`] read looks for.
pub const TAIL_MAX_ALSO: usize = 256;

pub(crate) const EVENT_COLUMNS: &str = "seq, id, workspace_id, event_type, subject_id, payload, content, content_contact_id, created_at, fanned_out_at";

#[async_trait]
pub trait CustomerEventStore {
    /// Records events in their own transaction (events that no other change carries,
    /// such as `webhook.test`).
    async fn append_customer_events(&self, events: &[NewCustomerEvent]) -> Result<()>;
    /// One event of a workspace; `NotFound` otherwise.
    async fn customer_event(&self, workspace_id: &str, id: &str) -> Result<CustomerEventRow>;
    /// A workspace's events after `after_seq`, oldest first, at most `limit`.
    async fn customer_events_after(
        &self,
        workspace_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<CustomerEventRow>>;
    /// Every workspace's events after `after_seq`, plus those among `also`
    /// (sequence numbers an earlier read found missing), oldest first, at most
    /// `limit`. One primary-key range scan: the live event stream's tail.
    async fn customer_events_tail(
        &self,
        after_seq: i64,
        also: &[i64],
        limit: u32,
    ) -> Result<Vec<CustomerEventRow>>;
    /// The lowest and highest `seq` still kept (any workspace); `None` when empty.
    async fn customer_event_seq_bounds(&self) -> Result<Option<(i64, i64)>>;
    /// Drops the held content of events created at or before `held_until` that
    /// every endpoint has (or gave up on); returns how many events lost it.
    async fn strip_delivered_content(&self, held_until: DateTime<Utc>, limit: u32) -> Result<u64>;
}

/// Inserts events inside the caller's transaction.
macro_rules! insert_events_fn {
    ($conn:ty) => {
        pub(crate) async fn insert_events(
            conn: &mut $conn,
            events: &[$crate::events::NewCustomerEvent],
        ) -> $crate::Result<()> {
            for range in $crate::bulk::chunks(events.len()) {
                let sql = format!(
                    "INSERT INTO customer_events (id, workspace_id, event_type, subject_id, payload, content, content_contact_id, created_at)
                     VALUES {}",
                    $crate::bulk::values(8, range.len())
                );
                let mut q = sqlx::query(&sql);
                for e in &events[range] {
                    q = q
                        .bind(&e.id)
                        .bind(&e.workspace_id)
                        .bind(&e.event_type)
                        .bind(&e.subject_id)
                        .bind(&e.payload)
                        .bind(&e.content)
                        .bind(&e.content_contact_id)
                        .bind(e.created_at);
                }
                q.execute(&mut *conn).await?;
            }
            Ok(())
        }
    };
}
pub(crate) use insert_events_fn;

/// Implements [`CustomerEventStore`] for a backend with `write_tx()`, `reads()`
/// and an `insert_events` function in scope.
macro_rules! customer_event_store_impl {
    ($store:ty, $insert:path) => {
        #[async_trait::async_trait]
        impl $crate::events::CustomerEventStore for $store {
            async fn append_customer_events(
                &self,
                events: &[$crate::events::NewCustomerEvent],
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                $insert(&mut *tx, events).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn customer_event(
                &self,
                workspace_id: &str,
                id: &str,
            ) -> $crate::Result<$crate::events::CustomerEventRow> {
                let sql = format!(
                    "SELECT {} FROM customer_events WHERE workspace_id = $1 AND id = $2",
                    $crate::events::EVENT_COLUMNS
                );
                sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("event"))
            }

            async fn customer_events_after(
                &self,
                workspace_id: &str,
                after_seq: i64,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::events::CustomerEventRow>> {
                let sql = format!(
                    "SELECT {} FROM customer_events WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    $crate::events::EVENT_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(after_seq)
                    .bind(limit as i64)
                    .fetch_all(self.reads())
                    .await?)
            }

            async fn customer_events_tail(
                &self,
                after_seq: i64,
                also: &[i64],
                limit: u32,
            ) -> $crate::Result<Vec<$crate::events::CustomerEventRow>> {
                let also = &also[..also.len().min($crate::events::TAIL_MAX_ALSO)];
                let extra = if also.is_empty() {
                    String::new()
                } else {
                    let list: Vec<String> = (0..also.len()).map(|i| format!("${}", i + 3)).collect();
                    format!(" OR seq IN ({})", list.join(", "))
                };
                let sql = format!(
                    "SELECT {} FROM customer_events WHERE seq > $1{extra} ORDER BY seq LIMIT $2",
                    $crate::events::EVENT_COLUMNS
                );
                let mut q = sqlx::query_as(&sql).bind(after_seq).bind(limit as i64);
                for seq in also {
                    q = q.bind(*seq);
                }
                Ok(q.fetch_all(self.reads()).await?)
            }

            async fn customer_event_seq_bounds(&self) -> $crate::Result<Option<(i64, i64)>> {
                // Two subqueries: SQLite uses the index for min/max only one aggregate at a time.
                let (min, max): (Option<i64>, Option<i64>) = sqlx::query_as(
                    "SELECT (SELECT min(seq) FROM customer_events), (SELECT max(seq) FROM customer_events)",
                )
                        .fetch_one(self.reads())
                        .await?;
                Ok(min.zip(max))
            }

            async fn strip_delivered_content(
                &self,
                held_until: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<u64> {
                // Fanned out, and no enabled endpoint still waiting: each has it or gave up.
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE customer_events SET content = NULL, content_contact_id = NULL
                     WHERE seq IN (SELECT e.seq FROM customer_events e
                        WHERE e.content IS NOT NULL AND e.fanned_out_at IS NOT NULL AND e.created_at <= $1
                          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                                          JOIN webhook_endpoints w ON w.id = d.endpoint_id
                                          WHERE d.event_id = e.id AND d.state = 'pending' AND w.enabled)
                        ORDER BY e.seq LIMIT $2)",
                )
                .bind(held_until)
                .bind(limit as i64)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(crate) use customer_event_store_impl;
