//! What provider webhooks write: inbound messages (deduplicated by channel
//! and provider id, opening the contact's 24 h window, opt-out/opt-in
//! keywords applied to consent in the same transaction) and statuses, applied
//! as a monotonic state machine `queued → sending → sent → delivered → read`
//! with `failed` terminal. Statuses for a provider id we do not know yet are
//! kept in `unmatched_statuses`; one carrying our message id as callback data
//! reconciles an in-doubt send.
//!
//! The SQL is written once with `$n` placeholders and instantiated for both
//! backends by `inbound_store_impl!` and, for the statements inside a
//! transaction, `crate::inbound_writes::inbound_fns!`.

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

/// One verified webhook's inbound messages and statuses, for one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookWrite {
    pub channel_id: String,
    pub messages: Vec<NewInboundMessage>,
    pub statuses: Vec<IncomingStatus>,
    /// When the webhook was received.
    pub now: DateTime<Utc>,
}

#[async_trait]
pub trait InboundStore {
    /// Records webhooks in one transaction (a group commit): each webhook's
    /// messages and then its statuses, in order; one outcome per webhook.
    /// The messages of all of them are written with multi-row statements.
    async fn record_webhooks(
        &self,
        webhooks: &[WebhookWrite],
        seal: EventSealer<'_>,
    ) -> Result<Vec<WebhookOutcome>>;
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

/// Implements [`InboundStore`] for a backend with `write_tx()`, `reads()` and the
/// helper functions in scope (`count_inbounds`, `count_price` and `write_usage` among them).
macro_rules! inbound_store_impl {
    ($store:ty, $insert_events:path, $insert_media:path) => {
        #[async_trait::async_trait]
        impl $crate::inbound::InboundStore for $store {
            async fn record_webhooks(
                &self,
                webhooks: &[$crate::inbound::WebhookWrite],
                seal: $crate::dispatch::EventSealer<'_>,
            ) -> $crate::Result<Vec<$crate::inbound::WebhookOutcome>> {
                let mut outs = vec![$crate::inbound::WebhookOutcome::default(); webhooks.len()];
                let mut usage = $crate::usage::UsageBatch::default();
                let mut tx = self.write_tx().await?;
                let all: Vec<(usize, &$crate::inbound::NewInboundMessage)> = webhooks
                    .iter()
                    .enumerate()
                    .flat_map(|(i, w)| w.messages.iter().map(move |n| (i, n)))
                    .collect();
                let rows: Vec<&$crate::messaging::MessageRow> = all.iter().map(|(_, n)| &n.message).collect();
                let inserted: std::collections::HashSet<String> =
                    insert_messages(&mut *tx, &rows, true).await?.into_iter().collect();
                // In arrival order: each first copy of a provider id, never a duplicate.
                let mut new = Vec::with_capacity(inserted.len());
                for (i, n) in &all {
                    if inserted.contains(n.message.id.as_str()) {
                        outs[*i].messages_recorded += 1;
                        new.push((*i, *n));
                    } else {
                        outs[*i].messages_duplicate += 1;
                    }
                }
                if !new.is_empty() {
                    let rows: Vec<&$crate::messaging::MessageRow> = new.iter().map(|(_, n)| &n.message).collect();
                    count_inbounds(&mut *tx, &rows, &mut usage).await?;
                    let history: Vec<$crate::messaging::NewStatusRow<'_>> = new
                        .iter()
                        .map(|(i, n)| $crate::messaging::NewStatusRow {
                            message_id: &n.message.id,
                            status: "received",
                            code: None,
                            title: None,
                            occurred_at: n.message.created_at,
                            recorded_at: webhooks[*i].now,
                        })
                        .collect();
                    insert_statuses(&mut *tx, &history).await?;
                    let touches: Vec<$crate::conversations::ConversationTouch> = rows
                        .iter()
                        .map(|m| $crate::conversations::ConversationTouch {
                            message_id: m.id.clone(),
                            workspace_id: m.workspace_id.clone(),
                            channel_id: m.channel_id.clone(),
                            contact_id: m.contact_id.clone(),
                            at: m.created_at,
                            inbound_wamid: m.provider_message_id.clone(),
                        })
                        .collect();
                    touch_conversations(&mut *tx, &touches).await?;
                    let latest = new.iter().map(|(i, _)| webhooks[*i].now).max();
                    let mut contacts: Vec<&str> = rows.iter().map(|m| m.contact_id.as_str()).collect();
                    contacts.sort_unstable();
                    contacts.dedup();
                    for range in $crate::bulk::chunks(contacts.len()) {
                        let list = $crate::placeholders(2, range.len());
                        let sql = format!(
                            "UPDATE contacts SET last_inbound_at = $1
                             WHERE id IN ({list}) AND (last_inbound_at IS NULL OR last_inbound_at < $1)"
                        );
                        let mut q = sqlx::query(&sql).bind(latest);
                        for c in &contacts[range] {
                            q = q.bind(*c);
                        }
                        q.execute(&mut *tx).await?;
                    }
                    // Each message's event, then its keyword's, in arrival order.
                    let events: Vec<$crate::events::NewCustomerEvent> = new
                        .iter()
                        .flat_map(|(_, n)| {
                            std::iter::once(n.event.clone()).chain(n.consent.as_ref().map(|k| k.event.clone()))
                        })
                        .collect();
                    $insert_events(&mut *tx, &events).await?;
                    let work: Vec<&$crate::automation::AutomationWork> =
                        new.iter().filter_map(|(_, n)| n.automation.as_ref()).collect();
                    $crate::automation::insert_automation_works!(&mut *tx, work);
                    for (i, n) in &new {
                        if let Some(media) = &n.media {
                            $insert_media(&mut *tx, media).await?;
                        }
                        if let Some(k) = &n.consent {
                            record_keyword_consent(&mut *tx, k).await?;
                            outs[*i].consent_changes += 1;
                        }
                    }
                }
                for (w, out) in webhooks.iter().zip(outs.iter_mut()) {
                    for s in &w.statuses {
                        record_status(&mut *tx, &w.channel_id, s, w.now, seal, &mut usage, out).await?;
                    }
                }
                write_usage(&mut *tx, &usage).await?;
                tx.commit().await?;
                Ok(outs)
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
                    applied += apply_unmatched(&mut *tx, target, wamid, now, seal).await?;
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
