//! What provider webhooks write: inbound messages (deduplicated by channel
//! and provider id, opening the contact's 24 h window, opt-out/opt-in
//! keywords applied to consent in the same transaction) and statuses, applied
//! as a monotonic state machine `queued → sending → sent → delivered → read`
//! with `failed` terminal. Statuses for a provider id we do not know yet are
//! kept in `unmatched_statuses`; one carrying our message id as callback data
//! reconciles an in-doubt send.
//!
//! The SQL is written once with `$n` placeholders and instantiated for both
//! backends by `inbound_fns!` and `inbound_store_impl!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;
use crate::dispatch::EventSealer;
use crate::events::NewCustomerEvent;
use crate::messaging::{ConsentRow, ConsentState, MessageRow};

/// The ids a status change needs.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MessageRef {
    pub id: String,
    pub workspace_id: String,
    pub channel_id: String,
    pub contact_id: String,
}

/// The stored statuses a message may move to `to` from (the state machine is
/// [`waypost_core::MessageStatus`]); empty when `to` is unknown or nothing may.
pub fn allowed_from(to: &str) -> &'static [waypost_core::MessageStatus] {
    to.parse()
        .map(waypost_core::MessageStatus::allowed_from)
        .unwrap_or(&[])
}

/// One status from a webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingStatus {
    pub wamid: String,
    /// `biz_opaque_callback_data`: our message id when we sent it.
    pub callback_data: Option<String>,
    pub status: String,
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// What the provider says the message costs, when the status says it.
    pub pricing: Option<MessagePricing>,
}

/// A message's pricing as the provider reported it, in either shape:
/// conversation-based (`CBP`, `billable`) or per message (`PMP`, `type`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MessagePricing {
    pub pricing_model: Option<String>,
    /// `regular`, `free_customer_service`, `free_entry_point`; PMP only.
    pub pricing_type: Option<String>,
    pub pricing_category: Option<String>,
    pub billable: Option<bool>,
}

/// A contact's consent change carried by an inbound keyword.
#[derive(Debug, Clone, PartialEq)]
pub struct KeywordConsent {
    pub consent: ConsentRow,
    pub state: ConsentState,
    pub event: NewCustomerEvent,
}

/// An inbound message to record, with its `message.received` event.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInboundMessage {
    /// `direction = inbound`, `status = received`, `provider_message_id` set.
    pub message: MessageRow,
    pub event: NewCustomerEvent,
    pub consent: Option<KeywordConsent>,
    /// The media file the message carries (image, audio, video, document, sticker).
    pub media: Option<crate::media::NewMedia>,
    /// The rules' and assistant's work item, written with the message.
    pub automation: Option<crate::automation::AutomationWork>,
}

/// What a webhook changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookOutcome {
    pub messages_recorded: usize,
    pub messages_duplicate: usize,
    pub statuses_applied: usize,
    pub statuses_ignored: usize,
    pub statuses_unmatched: usize,
    pub consent_changes: usize,
}

#[async_trait]
pub trait InboundStore {
    /// Records a webhook's inbound messages and statuses of one channel in one transaction.
    async fn record_webhook(
        &self,
        channel_id: &str,
        messages: &[NewInboundMessage],
        statuses: &[IncomingStatus],
        now: DateTime<Utc>,
        seal: EventSealer<'_>,
    ) -> Result<WebhookOutcome>;
    /// A message of a channel by provider id.
    /// The pricing last reported for a message, if any.
    async fn message_pricing(&self, message_id: &str) -> Result<Option<MessagePricing>>;
    async fn message_by_provider_id(
        &self,
        channel_id: &str,
        provider_message_id: &str,
    ) -> Result<Option<MessageRow>>;
    /// Statuses still waiting for their message, for a channel.
    async fn unmatched_status_count(&self, channel_id: &str) -> Result<i64>;
    /// Applies kept statuses whose message is now known (a webhook and the
    /// dispatcher's `sent` can commit concurrently on PostgreSQL, each unseen by
    /// the other); old ones go with the retention purge. Returns how many applied.
    async fn reconcile_unmatched(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        seal: EventSealer<'_>,
    ) -> Result<usize>;
    /// Drops retained content whose time is up (keeping when it expired, so readers
    /// can say why it is gone); returns how many messages lost it.
    async fn purge_expired_content(&self, now: DateTime<Utc>, limit: u32) -> Result<u64>;
}

/// `apply_status` and `apply_unmatched`, inside the caller's transaction.
macro_rules! inbound_fns {
    ($conn:ty, $insert_status:path, $insert_events:path) => {
        /// Moves a message to `status` if the state machine allows it, with its
        /// history row and event; returns whether it moved. The `IN` list makes
        /// the check and the change one statement, so concurrent webhooks on
        /// PostgreSQL cannot both move it.
        #[allow(clippy::too_many_arguments)]
        pub(crate) async fn apply_status(
            conn: &mut $conn,
            m: &$crate::inbound::MessageRef,
            wamid: Option<&String>,
            status: &str,
            code: Option<i64>,
            title: Option<&str>,
            occurred_at: chrono::DateTime<chrono::Utc>,
            now: chrono::DateTime<chrono::Utc>,
            seal: $crate::dispatch::EventSealer<'_>,
        ) -> $crate::Result<bool> {
            let from = $crate::inbound::allowed_from(status);
            if from.is_empty() {
                return Ok(false);
            }
            let list = from.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "UPDATE messages SET status = $2, error_code = COALESCE($3, error_code),
                    error_title = COALESCE($4, error_title), updated_at = $5
                 WHERE id = $1 AND status IN ({list})"
            );
            let done = sqlx::query(&sql)
                .bind(&m.id)
                .bind(status)
                .bind(code)
                .bind(title)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            $insert_status(&mut *conn, &m.id, status, code, title, occurred_at, now).await?;
            let change = $crate::dispatch::StatusChange {
                message_id: m.id.clone(),
                workspace_id: m.workspace_id.clone(),
                channel_id: m.channel_id.clone(),
                contact_id: m.contact_id.clone(),
                status: status.to_owned(),
                wamid: wamid.cloned(),
                error_code: code,
                error_title: title.map(str::to_owned),
                occurred_at,
            };
            $insert_events(&mut *conn, &[seal(&change)]).await?;
            Ok(true)
        }

        /// Applies, oldest first, the statuses that arrived for `wamid` before it was known.
        pub(crate) async fn apply_unmatched(
            conn: &mut $conn,
            m: &$crate::inbound::MessageRef,
            wamid: &String,
            now: chrono::DateTime<chrono::Utc>,
            seal: $crate::dispatch::EventSealer<'_>,
        ) -> $crate::Result<usize> {
            let waiting: Vec<(i64, String, Option<i64>, Option<String>, chrono::DateTime<chrono::Utc>)> =
                sqlx::query_as(
                    "SELECT id, status, provider_code, provider_title, occurred_at FROM unmatched_statuses
                     WHERE channel_id = $1 AND provider_message_id = $2 ORDER BY id",
                )
                .bind(&m.channel_id)
                .bind(wamid)
                .fetch_all(&mut *conn)
                .await?;
            if waiting.is_empty() {
                return Ok(0);
            }
            // Oldest state first, so history reads in the order things happened.
            let mut sorted = waiting.clone();
            sorted.sort_by_key(|(_, s, ..)| s.parse().map_or(u8::MAX, waypost_core::MessageStatus::rank));
            let mut applied = 0;
            for (_, status, code, title, at) in &sorted {
                if apply_status(conn, m, Some(wamid), status, *code, title.as_deref(), *at, now, seal).await? {
                    applied += 1;
                }
            }
            sqlx::query("DELETE FROM unmatched_statuses WHERE channel_id = $1 AND provider_message_id = $2")
                .bind(&m.channel_id)
                .bind(wamid)
                .execute(&mut *conn)
                .await?;
            if sorted.iter().any(|w| w.1 == "failed") {
                sqlx::query("DELETE FROM outbox WHERE message_id = $1")
                    .bind(&m.id)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(applied)
        }
    };
}
pub(crate) use inbound_fns;

/// Implements [`InboundStore`] for a backend with `write_tx()`, `reads()` and the
/// helper functions in scope (`count_inbound`, `count_price` and `write_usage` among them).
macro_rules! inbound_store_impl {
    ($store:ty, $insert_message:path, $insert_status:path, $insert_events:path, $apply_status:path, $apply_unmatched:path, $insert_media:path) => {
        #[async_trait::async_trait]
        impl $crate::inbound::InboundStore for $store {
            async fn record_webhook(
                &self,
                channel_id: &str,
                messages: &[$crate::inbound::NewInboundMessage],
                statuses: &[$crate::inbound::IncomingStatus],
                now: chrono::DateTime<chrono::Utc>,
                seal: $crate::dispatch::EventSealer<'_>,
            ) -> $crate::Result<$crate::inbound::WebhookOutcome> {
                let mut out = $crate::inbound::WebhookOutcome::default();
                let mut usage = $crate::usage::UsageBatch::default();
                let mut tx = self.write_tx().await?;
                for n in messages {
                    let m = &n.message;
                    if $insert_message(&mut *tx, m).await? == 0 {
                        out.messages_duplicate += 1;
                        continue;
                    }
                    out.messages_recorded += 1;
                    count_inbound(&mut *tx, m, &mut usage).await?;
                    $insert_status(&mut *tx, &m.id, "received", None, None, m.created_at, now).await?;
                    touch_conversations(
                        &mut *tx,
                        &[$crate::conversations::ConversationTouch {
                            message_id: m.id.clone(),
                            workspace_id: m.workspace_id.clone(),
                            channel_id: m.channel_id.clone(),
                            contact_id: m.contact_id.clone(),
                            at: m.created_at,
                            inbound_wamid: m.provider_message_id.clone(),
                        }],
                    )
                    .await?;
                    sqlx::query(
                        "UPDATE contacts SET last_inbound_at = $2
                         WHERE id = $1 AND (last_inbound_at IS NULL OR last_inbound_at < $2)",
                    )
                    .bind(&m.contact_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    $insert_events(&mut *tx, std::slice::from_ref(&n.event)).await?;
                    if let Some(media) = &n.media {
                        $insert_media(&mut *tx, media).await?;
                    }
                    if let Some(w) = &n.automation {
                        $crate::automation::insert_automation_work!(&mut *tx, w)?;
                    }
                    if let Some(k) = &n.consent {
                        let c = &k.consent;
                        sqlx::query(
                            "UPDATE contacts SET consent_marketing = $3, consent_utility = $4,
                                consent_authentication = $5, updated_at = $6
                             WHERE workspace_id = $1 AND id = $2",
                        )
                        .bind(&c.workspace_id)
                        .bind(&c.contact_id)
                        .bind(&k.state.marketing)
                        .bind(&k.state.utility)
                        .bind(&k.state.authentication)
                        .bind(c.recorded_at)
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query(
                            "INSERT INTO contact_consents (id, workspace_id, contact_id, status, categories, source,
                                evidence, captured_at, recorded_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        )
                        .bind(&c.id)
                        .bind(&c.workspace_id)
                        .bind(&c.contact_id)
                        .bind(&c.status)
                        .bind(&c.categories)
                        .bind(&c.source)
                        .bind(&c.evidence)
                        .bind(c.captured_at)
                        .bind(c.recorded_at)
                        .execute(&mut *tx)
                        .await?;
                        $insert_events(&mut *tx, std::slice::from_ref(&k.event)).await?;
                        out.consent_changes += 1;
                    }
                }
                for s in statuses {
                    let found: Option<$crate::inbound::MessageRef> = sqlx::query_as(
                        "SELECT id, workspace_id, channel_id, contact_id FROM messages
                         WHERE channel_id = $1 AND provider_message_id = $2",
                    )
                    .bind(channel_id)
                    .bind(&s.wamid)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let target = match found {
                        Some(t) => t,
                        None => {
                            // Our message id as callback data: a send whose answer we never
                            // saw (lost response, crash). The wamid becomes known here.
                            let reconciled: Option<$crate::inbound::MessageRef> = match &s.callback_data {
                                Some(id) => sqlx::query_as(
                                    "UPDATE messages SET provider_message_id = $3, updated_at = $4
                                     WHERE id = $1 AND channel_id = $2 AND direction = 'outbound'
                                       AND provider_message_id IS NULL
                                     RETURNING id, workspace_id, channel_id, contact_id",
                                )
                                .bind(id)
                                .bind(channel_id)
                                .bind(&s.wamid)
                                .bind(now)
                                .fetch_optional(&mut *tx)
                                .await?,
                                None => None,
                            };
                            match reconciled {
                                Some(t) => {
                                    sqlx::query("DELETE FROM outbox WHERE message_id = $1")
                                        .bind(&t.id)
                                        .execute(&mut *tx)
                                        .await?;
                                    $apply_status(
                                        &mut *tx, &t, Some(&s.wamid), "sent", None, None, s.occurred_at, now, seal,
                                    )
                                    .await?;
                                    $apply_unmatched(&mut *tx, &t, &s.wamid, now, seal).await?;
                                    t
                                }
                                None => {
                                    sqlx::query(
                                        "INSERT INTO unmatched_statuses (channel_id, provider_message_id, callback_data,
                                            status, provider_code, provider_title, occurred_at, received_at)
                                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                                    )
                                    .bind(channel_id)
                                    .bind(&s.wamid)
                                    .bind(&s.callback_data)
                                    .bind(&s.status)
                                    .bind(s.error_code)
                                    .bind(&s.error_title)
                                    .bind(s.occurred_at)
                                    .bind(now)
                                    .execute(&mut *tx)
                                    .await?;
                                    out.statuses_unmatched += 1;
                                    continue;
                                }
                            }
                        }
                    };
                    let moved = $apply_status(
                        &mut *tx,
                        &target,
                        Some(&s.wamid),
                        &s.status,
                        s.error_code,
                        s.error_title.as_deref(),
                        s.occurred_at,
                        now,
                        seal,
                    )
                    .await?;
                    if let Some(p) = &s.pricing {
                        count_price(&mut *tx, &target, p, &mut usage).await?;
                        // Whatever the status order, the latest report of the price wins.
                        sqlx::query(
                            "UPDATE messages SET pricing_model = $2, pricing_type = $3,
                                pricing_category = $4, billable = $5
                             WHERE id = $1",
                        )
                        .bind(&target.id)
                        .bind(&p.pricing_model)
                        .bind(&p.pricing_type)
                        .bind(&p.pricing_category)
                        .bind(p.billable)
                        .execute(&mut *tx)
                        .await?;
                    }
                    if moved {
                        out.statuses_applied += 1;
                        if s.status == "failed" {
                            sqlx::query("DELETE FROM outbox WHERE message_id = $1")
                                .bind(&target.id)
                                .execute(&mut *tx)
                                .await?;
                        }
                    } else {
                        out.statuses_ignored += 1;
                    }
                }
                write_usage(&mut *tx, &usage).await?;
                tx.commit().await?;
                Ok(out)
            }

            async fn message_pricing(
                &self,
                message_id: &str,
            ) -> $crate::Result<Option<$crate::inbound::MessagePricing>> {
                let row: Option<$crate::inbound::MessagePricing> = sqlx::query_as(
                    "SELECT pricing_model, pricing_type, pricing_category, billable
                     FROM messages WHERE id = $1",
                )
                .bind(message_id)
                .fetch_optional(self.reads())
                .await?;
                Ok(row.filter(|p| p.pricing_model.is_some() || p.pricing_category.is_some()))
            }

            async fn message_by_provider_id(
                &self,
                channel_id: &str,
                provider_message_id: &str,
            ) -> $crate::Result<Option<$crate::messaging::MessageRow>> {
                let sql = format!(
                    "SELECT {} FROM messages WHERE channel_id = $1 AND provider_message_id = $2",
                    $crate::messaging::MESSAGE_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(channel_id)
                    .bind(provider_message_id)
                    .fetch_optional(self.reads())
                    .await?)
            }

            async fn unmatched_status_count(&self, channel_id: &str) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM unmatched_statuses WHERE channel_id = $1")
                    .bind(channel_id)
                    .fetch_one(self.reads())
                    .await?)
            }

            async fn reconcile_unmatched(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
                seal: $crate::dispatch::EventSealer<'_>,
            ) -> $crate::Result<usize> {
                let mut tx = self.write_tx().await?;
                let known: Vec<($crate::inbound::MessageRef, String)> = sqlx::query_as(
                    "SELECT DISTINCT m.id, m.workspace_id, m.channel_id, m.contact_id, m.provider_message_id
                     FROM unmatched_statuses u
                     JOIN messages m ON m.channel_id = u.channel_id AND m.provider_message_id = u.provider_message_id
                     LIMIT $1",
                )
                .bind(limit as i64)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|(id, workspace_id, channel_id, contact_id, wamid): (String, String, String, String, String)| {
                    ($crate::inbound::MessageRef { id, workspace_id, channel_id, contact_id }, wamid)
                })
                .collect();
                let mut applied = 0;
                for (target, wamid) in &known {
                    applied += $apply_unmatched(&mut *tx, target, wamid, now, seal).await?;
                }
                tx.commit().await?;
                Ok(applied)
            }

            async fn purge_expired_content(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<u64> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE messages SET content = NULL
                     WHERE id IN (SELECT id FROM messages WHERE content IS NOT NULL AND content_expires_at < $1
                                  ORDER BY content_expires_at LIMIT $2)",
                )
                .bind(now)
                .bind(limit as i64)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(crate) use inbound_store_impl;
