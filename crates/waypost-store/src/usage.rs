//! Usage counters: one row per workspace, channel, UTC day and metric
//! (`usage_counters`), moved inside the transaction of the event that causes
//! them (an accepted or received message, a status with a price, a shield
//! scan, the assistant's tokens), so a crash loses no count and counts none
//! twice. Distinct active contacts are kept as markers per day and month
//! (`usage_active_contacts`); a new marker bumps the counter. The counters
//! plans limit also move a month-to-date total (`usage_monthly`), which is
//! what quota checks reload. Also the operator's rate card (one price per
//! Meta pricing category).
//!
//! A transaction collects its changes in a [`UsageBatch`] and writes them
//! once, at its end, in key order: concurrent writers on PostgreSQL then lock
//! counter rows in the same order and cannot deadlock on them.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;

/// A change of one counter. `channel_id` is empty for workspace-wide counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDelta {
    pub workspace_id: String,
    pub channel_id: String,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub metric: String,
    pub amount: i64,
}

/// A contact active on a channel at some time (it sent or was sent a message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveContact {
    pub workspace_id: String,
    pub channel_id: String,
    pub contact_id: String,
    pub at: DateTime<Utc>,
}

/// What one transaction adds to the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageBatch {
    pub deltas: Vec<UsageDelta>,
    pub active: Vec<ActiveContact>,
}

impl UsageBatch {
    pub fn add(
        &mut self,
        workspace_id: &str,
        channel_id: &str,
        at: DateTime<Utc>,
        metric: impl Into<String>,
        amount: i64,
    ) {
        self.deltas.push(UsageDelta {
            workspace_id: workspace_id.to_owned(),
            channel_id: channel_id.to_owned(),
            day: waypost_core::usage::day_of(at),
            metric: metric.into(),
            amount,
        });
    }

    pub fn active(
        &mut self,
        workspace_id: &str,
        channel_id: &str,
        contact_id: &str,
        at: DateTime<Utc>,
    ) {
        self.active.push(ActiveContact {
            workspace_id: workspace_id.to_owned(),
            channel_id: channel_id.to_owned(),
            contact_id: contact_id.to_owned(),
            at,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.deltas.is_empty() && self.active.is_empty()
    }
}

/// Sums deltas of the same counter, drops zeros, and orders by key.
pub(crate) fn merge(deltas: &[UsageDelta]) -> Vec<UsageDelta> {
    let mut sums: BTreeMap<(&str, &str, &str, &str), i64> = BTreeMap::new();
    for d in deltas {
        *sums
            .entry((&d.workspace_id, &d.day, &d.channel_id, &d.metric))
            .or_default() += d.amount;
    }
    sums.into_iter()
        .filter(|(_, a)| *a != 0)
        .map(|((w, day, c, m), amount)| UsageDelta {
            workspace_id: w.to_owned(),
            channel_id: c.to_owned(),
            day: day.to_owned(),
            metric: m.to_owned(),
            amount,
        })
        .collect()
}

/// The month-to-date changes of the counters plans limit, `(workspace, month,
/// metric, amount)`, summed and in key order.
pub(crate) fn monthly(merged: &[UsageDelta]) -> Vec<(String, String, String, i64)> {
    let mut sums: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for d in merged.iter().filter(|d| is_limited(&d.metric)) {
        let month = d.day.get(..7).unwrap_or(&d.day).to_owned();
        *sums
            .entry((month, d.workspace_id.clone(), d.metric.clone()))
            .or_default() += d.amount;
    }
    sums.into_iter()
        .filter(|(_, a)| *a != 0)
        .map(|((month, w, m), a)| (w, month, m, a))
        .collect()
}

/// Whether plans limit a counter (and so its month-to-date total is kept).
pub fn is_limited(metric: &str) -> bool {
    waypost_core::plan::Quota::for_counter(metric).is_some()
}

/// The markers a batch's active contacts need, `(workspace, period, contact, channel, day, metric)`,
/// deduplicated and in key order.
pub(crate) fn markers(
    active: &[ActiveContact],
) -> Vec<(String, String, String, String, String, &'static str)> {
    use waypost_core::usage::{CONTACTS_ACTIVE, CONTACTS_ACTIVE_MONTH, day_of, month_of};
    let mut out: BTreeMap<(String, String, String), (String, String, &'static str)> =
        BTreeMap::new();
    for a in active {
        let day = day_of(a.at);
        for (period, metric) in [
            (day.clone(), CONTACTS_ACTIVE),
            (month_of(a.at), CONTACTS_ACTIVE_MONTH),
        ] {
            out.entry((a.workspace_id.clone(), period, a.contact_id.clone()))
                .or_insert_with(|| (a.channel_id.clone(), day.clone(), metric));
        }
    }
    out.into_iter()
        .map(|((w, p, c), (ch, d, m))| (w, p, c, ch, d, m))
        .collect()
}

/// One counter's total over some days.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageTotal {
    pub day: String,
    /// Empty when the report is not broken down by channel, or the count is workspace-wide.
    pub channel_id: String,
    pub metric: String,
    pub amount: i64,
}

/// A price of the loaded rate card.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RateRow {
    pub category: String,
    /// ISO 3166-1 alpha-2; empty for the category's default price.
    pub country: String,
    pub currency: String,
    pub unit_price_micros: i64,
    pub loaded_at: DateTime<Utc>,
}

#[async_trait]
pub trait UsageStore {
    /// The counters of a workspace from `from_day` to `to_day` (inclusive, `YYYY-MM-DD`),
    /// per day, summed over channels unless `by_channel`.
    async fn usage_totals(
        &self,
        workspace_id: &str,
        from_day: &str,
        to_day: &str,
        by_channel: bool,
    ) -> Result<Vec<UsageTotal>>;
    /// The month's (`YYYY-MM`) totals of the counters plans limit, for every
    /// workspace with a plan: `(workspace, metric, amount)`. What quota checks cache.
    async fn month_totals(&self, month: &str) -> Result<Vec<(String, String, i64)>>;
    /// Moves counters outside of another transaction (shield scans, assistant tokens).
    async fn record_usage(&self, batch: &UsageBatch) -> Result<()>;
    /// Replaces the whole rate card.
    async fn replace_rate_card(&self, rates: &[RateRow], audit: NewAuditEvent) -> Result<()>;
    async fn rate_card(&self) -> Result<Vec<RateRow>>;
    /// Deletes up to `limit` active-contact markers of days (and months) before `before_day`.
    async fn purge_usage_markers(&self, before_day: &str, limit: u32) -> Result<u64>;
    /// Sets `day`'s `storage.content_bytes` of every workspace and channel to
    /// the bytes of retained content held now (message content and kept
    /// media copies); returns how many counters it set.
    async fn snapshot_storage(&self, day: &str) -> Result<u64>;
}

/// Defines `write_usage(conn, batch)` for a backend.
macro_rules! usage_fns {
    ($conn:ty) => {
        /// Writes a transaction's usage: new active-contact markers, then every counter change.
        pub(crate) async fn write_usage(
            conn: &mut $conn,
            batch: &$crate::usage::UsageBatch,
        ) -> $crate::Result<()> {
            use $crate::bulk::{chunks, values};
            let mut deltas = batch.deltas.clone();
            let markers = $crate::usage::markers(&batch.active);
            for range in chunks(markers.len()) {
                let sql = format!(
                    "INSERT INTO usage_active_contacts (workspace_id, period, contact_id)
                     VALUES {} ON CONFLICT DO NOTHING RETURNING workspace_id, period, contact_id",
                    values(3, range.len())
                );
                let mut q = sqlx::query_as::<_, (String, String, String)>(&sql);
                for m in &markers[range.clone()] {
                    q = q.bind(&m.0).bind(&m.1).bind(&m.2);
                }
                let fresh: std::collections::HashSet<(String, String, String)> =
                    q.fetch_all(&mut *conn).await?.into_iter().collect();
                for m in &markers[range] {
                    if fresh.contains(&(m.0.clone(), m.1.clone(), m.2.clone())) {
                        deltas.push($crate::usage::UsageDelta {
                            workspace_id: m.0.clone(),
                            channel_id: m.3.clone(),
                            day: m.4.clone(),
                            metric: m.5.to_owned(),
                            amount: 1,
                        });
                    }
                }
            }
            let merged = $crate::usage::merge(&deltas);
            for range in chunks(merged.len()) {
                let sql = format!(
                    "INSERT INTO usage_counters (workspace_id, day, channel_id, metric, amount)
                     VALUES {}
                     ON CONFLICT (workspace_id, day, channel_id, metric)
                     DO UPDATE SET amount = usage_counters.amount + excluded.amount",
                    values(5, range.len())
                );
                let mut q = sqlx::query(&sql);
                for d in &merged[range] {
                    q = q
                        .bind(&d.workspace_id)
                        .bind(&d.day)
                        .bind(&d.channel_id)
                        .bind(&d.metric)
                        .bind(d.amount);
                }
                q.execute(&mut *conn).await?;
            }
            let monthly = $crate::usage::monthly(&merged);
            for range in chunks(monthly.len()) {
                let sql = format!(
                    "INSERT INTO usage_monthly (workspace_id, month, metric, amount)
                     VALUES {}
                     ON CONFLICT (month, workspace_id, metric)
                     DO UPDATE SET amount = usage_monthly.amount + excluded.amount",
                    values(4, range.len())
                );
                let mut q = sqlx::query(&sql);
                for (w, month, metric, amount) in &monthly[range] {
                    q = q.bind(w).bind(month).bind(metric).bind(*amount);
                }
                q.execute(&mut *conn).await?;
            }
            Ok(())
        }
    };
}
pub(crate) use usage_fns;

/// Defines `count_inbounds` and `count_price` for a backend: what webhooks'
/// inbound messages and priced statuses add to their transaction's [`UsageBatch`].
macro_rules! usage_count_fns {
    ($conn:ty) => {
        /// Counts a batch of new inbound messages by type, their contacts as
        /// active, and the customer-service windows they open, in order, with
        /// one read of their conversations: a message opens a window unless the
        /// contact wrote on the channel within 24 hours, counting earlier
        /// messages of the batch. Runs before the conversations are touched.
        pub(crate) async fn count_inbounds(
            conn: &mut $conn,
            messages: &[&$crate::messaging::MessageRow],
            usage: &mut $crate::usage::UsageBatch,
        ) -> $crate::Result<()> {
            // Per channel, so the (channel, contact) key serves the lookup.
            let mut pairs: Vec<(&str, &str)> =
                messages.iter().map(|m| (m.channel_id.as_str(), m.contact_id.as_str())).collect();
            pairs.sort_unstable();
            pairs.dedup();
            let mut last: std::collections::HashMap<(String, String), Option<chrono::DateTime<chrono::Utc>>> =
                Default::default();
            for channel in pairs.chunk_by(|a, b| a.0 == b.0) {
                let channel_id = channel[0].0;
                for range in $crate::bulk::chunks(channel.len()) {
                    let list = $crate::placeholders(2, range.len());
                    let sql = format!(
                        "SELECT contact_id, last_inbound_at FROM conversations
                         WHERE channel_id = $1 AND contact_id IN ({list})"
                    );
                    let mut q = sqlx::query_as::<_, (String, Option<chrono::DateTime<chrono::Utc>>)>(&sql)
                        .bind(channel_id);
                    for (_, contact) in &channel[range] {
                        q = q.bind(*contact);
                    }
                    for (contact, at) in q.fetch_all(&mut *conn).await? {
                        last.insert((channel_id.to_owned(), contact), at);
                    }
                }
            }
            for m in messages {
                let key = (m.channel_id.clone(), m.contact_id.clone());
                let window_start = m.created_at - chrono::Duration::hours(24);
                if last.get(&key).copied().flatten().is_none_or(|at| at <= window_start) {
                    usage.add(
                        &m.workspace_id,
                        &m.channel_id,
                        m.created_at,
                        waypost_core::usage::CONVERSATIONS_OPENED,
                        1,
                    );
                }
                usage.add(
                    &m.workspace_id,
                    &m.channel_id,
                    m.created_at,
                    waypost_core::usage::message_metric(&m.direction, &m.message_type),
                    1,
                );
                usage.active(&m.workspace_id, &m.channel_id, &m.contact_id, m.created_at);
                last.insert(key, Some(m.created_at));
            }
            Ok(())
        }

        /// Counts a message's reported price once, on the day the message was
        /// created; a later report with another category or billability moves
        /// the count. Runs before the new price is stored.
        pub(crate) async fn count_price(
            conn: &mut $conn,
            target: &$crate::inbound::MessageRef,
            p: &$crate::inbound::MessagePricing,
            usage: &mut $crate::usage::UsageBatch,
        ) -> $crate::Result<()> {
            let (category, billable, pricing_type, created_at, country): (
                Option<String>,
                Option<bool>,
                Option<String>,
                chrono::DateTime<chrono::Utc>,
                Option<String>,
            ) = sqlx::query_as(
                "SELECT pricing_category, billable, pricing_type, created_at, country FROM messages WHERE id = $1",
            )
            .bind(&target.id)
            .fetch_one(&mut *conn)
            .await?;
            let before = $crate::usage::counted(&category, billable, &pricing_type);
            if let Some(after) = $crate::usage::counted(&p.pricing_category, p.billable, &p.pricing_type) {
                for (metric, amount) in waypost_core::usage::pricing_change(before, after) {
                    // Billable messages are also counted by their recipient's country.
                    if let (Some(c), Some(cc)) = (
                        metric.strip_prefix("billable.").and_then(waypost_core::usage::PricingCategory::parse),
                        country.as_deref(),
                    ) {
                        let by_country = waypost_core::usage::billable_country_metric(c, cc);
                        usage.add(&target.workspace_id, &target.channel_id, created_at, by_country, amount);
                    }
                    usage.add(&target.workspace_id, &target.channel_id, created_at, metric, amount);
                }
            }
            Ok(())
        }
    };
}
pub(crate) use usage_count_fns;

/// The category and billability a stored or reported price counts as.
pub(crate) fn counted(
    category: &Option<String>,
    billable: Option<bool>,
    pricing_type: &Option<String>,
) -> Option<(waypost_core::usage::PricingCategory, bool)> {
    category.as_deref().map(|c| {
        (
            waypost_core::usage::PricingCategory::from_provider(c),
            waypost_core::usage::is_billable(billable, pricing_type.as_deref()),
        )
    })
}

/// Implements [`UsageStore`] for a backend with `write_tx()`, `reads()`,
/// `write_usage` and `$append` in scope.
macro_rules! usage_store_impl {
    ($store:ty, $append:path) => {
        #[async_trait::async_trait]
        impl $crate::usage::UsageStore for $store {
            async fn usage_totals(
                &self,
                workspace_id: &str,
                from_day: &str,
                to_day: &str,
                by_channel: bool,
            ) -> $crate::Result<Vec<$crate::usage::UsageTotal>> {
                let (select, group) = if by_channel {
                    ("channel_id", ", channel_id")
                } else {
                    ("''", "")
                };
                let sql = format!(
                    "SELECT day, {select} AS channel_id, metric, CAST(SUM(amount) AS BIGINT) AS amount
                     FROM usage_counters
                     WHERE workspace_id = $1 AND day >= $2 AND day <= $3
                     GROUP BY day{group}, metric
                     ORDER BY day{group}, metric"
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(from_day)
                    .bind(to_day)
                    .fetch_all(self.reads())
                    .await?)
            }

            async fn month_totals(&self, month: &str) -> $crate::Result<Vec<(String, String, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT m.workspace_id, m.metric, m.amount FROM usage_monthly m
                     JOIN workspace_billing b ON b.workspace_id = m.workspace_id
                     WHERE m.month = $1",
                )
                .bind(month)
                .fetch_all(self.reads())
                .await?)
            }

            async fn record_usage(&self, batch: &$crate::usage::UsageBatch) -> $crate::Result<()> {
                if batch.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write_tx().await?;
                write_usage(&mut *tx, batch).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn replace_rate_card(
                &self,
                rates: &[$crate::usage::RateRow],
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query("DELETE FROM rate_card").execute(&mut *tx).await?;
                for r in rates {
                    sqlx::query(
                        "INSERT INTO rate_card (category, country, currency, unit_price_micros, loaded_at)
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&r.category)
                    .bind(&r.country)
                    .bind(&r.currency)
                    .bind(r.unit_price_micros)
                    .bind(r.loaded_at)
                    .execute(&mut *tx)
                    .await?;
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn rate_card(&self) -> $crate::Result<Vec<$crate::usage::RateRow>> {
                Ok(sqlx::query_as(
                    "SELECT category, country, currency, unit_price_micros, loaded_at FROM rate_card
                     ORDER BY category, country",
                )
                .fetch_all(self.reads())
                .await?)
            }

            async fn snapshot_storage(&self, day: &str) -> $crate::Result<u64> {
                let metric = waypost_core::usage::STORAGE_CONTENT_BYTES;
                let mut tx = self.write_tx().await?;
                // Channels whose content all went since the last snapshot show none.
                sqlx::query("DELETE FROM usage_counters WHERE day = $1 AND metric = $2")
                    .bind(day)
                    .bind(metric)
                    .execute(&mut *tx)
                    .await?;
                // LENGTH of a blob reads its size, not its bytes, on both backends.
                let set = sqlx::query(
                    "INSERT INTO usage_counters (workspace_id, day, channel_id, metric, amount)
                     SELECT workspace_id, $1, channel_id, $2, CAST(SUM(bytes) AS BIGINT) FROM (
                         SELECT workspace_id, channel_id, LENGTH(content) AS bytes
                         FROM messages WHERE content IS NOT NULL
                         UNION ALL
                         SELECT workspace_id, channel_id, LENGTH(blob) AS bytes
                         FROM media WHERE blob IS NOT NULL
                     ) held WHERE true GROUP BY workspace_id, channel_id
                     ON CONFLICT (workspace_id, day, channel_id, metric)
                     DO UPDATE SET amount = excluded.amount",
                )
                .bind(day)
                .bind(metric)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(set.rows_affected())
            }

            async fn purge_usage_markers(&self, before_day: &str, limit: u32) -> $crate::Result<u64> {
                // A month (`YYYY-MM`) sorts before its first day, so markers of
                // days and months before `before_day`'s month both go.
                let done = sqlx::query(
                    "DELETE FROM usage_active_contacts WHERE (workspace_id, period, contact_id) IN
                        (SELECT workspace_id, period, contact_id FROM usage_active_contacts
                         WHERE period < $1 LIMIT $2)",
                )
                .bind(before_day)
                .bind(limit as i64)
                .execute(self.writes())
                .await?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(crate) use usage_store_impl;
