//! `inbound::record`: what a verified provider delivery means. Each `messages`
//! change is written atomically, group-committed with other webhooks' by
//! [`crate::messaging::ingest`] (inbound messages deduplicated by provider id,
//! statuses applied monotonically, opt-out/opt-in keywords applied to consent,
//! customer events); the shield scans inbound text after commit.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use waypost_cloudapi::webhook::MessagesValue;
use waypost_cloudapi::{Change, InboundContent, InboundMessage, WebhookPayload};
use waypost_core::events::EventType;
use waypost_core::redact::mask_phone;
use waypost_crypto::Aad;
use waypost_store::inbound::{IncomingStatus, KeywordConsent, NewInboundMessage, WebhookWrite};
use waypost_store::messaging::{ChannelRow, ConsentRow, ConsentState, ContactRow, MessageRow};

use crate::dispatch::outcome::sealed;
use crate::events::{HeldContent, seal_with_content};
use crate::messaging::content_key;
use crate::messaging::identity::contact_identity;
use crate::messaging::inbound_content::{
    KnownMessages, MessageReceivedData, Sender, normalise, referenced_wamids,
};
use crate::ops::inbound_identity::{contact_of, link_status_recipients, pricing_of};
use crate::state::AppState;

/// The inbound webhook routes, with their own body limit.
/// Records one verified delivery: each `messages` change in its own
/// transaction, template status changes through the templates module.
pub async fn record(
    state: &AppState,
    channel: &ChannelRow,
    payload: &WebhookPayload,
) -> anyhow::Result<()> {
    for change in payload.entry.iter().flat_map(|e| &e.changes) {
        match change {
            Change::Messages(value) => record_messages(state, channel, value).await?,
            Change::TemplateStatus(_) => {
                let value = serde_json::to_value(change).unwrap_or_default();
                route_template_status(state, channel, &value["value"]).await?
            }
            Change::Other { field, value } if field == "phone_number_quality_update" => {
                crate::ops::channel_quality::on_quality_webhook(state, channel, value).await?
            }
            Change::Other { field, .. } => {
                tracing::debug!(channel_id = %channel.id, field = %field, "inbound webhook field not handled");
            }
        }
    }
    Ok(())
}

/// Template status changes belong to the templates module.
pub async fn route_template_status(
    state: &AppState,
    channel: &ChannelRow,
    value: &serde_json::Value,
) -> anyhow::Result<()> {
    crate::templates::on_status_webhook(state, channel, value).await
}

/// One `messages` change: its inbound messages and statuses, committed together.
async fn record_messages(
    state: &AppState,
    channel: &ChannelRow,
    value: &MessagesValue,
) -> anyhow::Result<()> {
    if value.metadata.phone_number_id != channel.phone_number_id {
        tracing::warn!(channel_id = %channel.id, "inbound webhook for another phone number id ignored");
        return Ok(());
    }
    for e in &value.errors {
        tracing::warn!(channel_id = %channel.id, code = e.code, "provider reported an error in a webhook");
    }
    let now = state.clock.now();
    let mut messages = Vec::with_capacity(value.messages.len());
    // Texts to scan once the webhook is committed: (message id, text).
    let mut to_scan: Vec<(String, String)> = Vec::new();
    if !value.messages.is_empty() {
        let settings = state
            .lookups
            .messaging_settings(&channel.workspace_id)
            .await?;
        let retain_days = settings.content_retention.days();
        // Without a rule or the assistant, a work item would only be deleted unread.
        let automation = state
            .lookups
            .automation_active(&channel.workspace_id, &channel.id)
            .await?;
        let known = known_messages(state, channel, value).await?;
        let mut contacts: HashMap<String, ContactRow> = HashMap::new();
        for m in &value.messages {
            let Some(contact) = contact_of(state, channel, value, m, &mut contacts).await? else {
                tracing::warn!(channel_id = %channel.id, "inbound message without a usable phone number or user id skipped");
                continue;
            };
            let row = inbound_message(
                state,
                channel,
                &contact,
                m,
                &known,
                retain_days,
                automation,
                now,
            )?;
            if let InboundContent::Text(t) = &m.content {
                to_scan.push((row.message.id.clone(), t.body.clone()));
            }
            messages.push(row);
        }
    }
    let statuses: Vec<IncomingStatus> = value
        .statuses
        .iter()
        .filter(|s| matches!(s.status.as_str(), "sent" | "delivered" | "read" | "failed"))
        .map(|s| {
            let error = s.errors.first();
            IncomingStatus {
                wamid: s.id.clone(),
                callback_data: s.biz_opaque_callback_data.clone(),
                status: s.status.as_str().to_owned(),
                error_code: error.map(|e| e.code),
                error_title: error.map(|e| {
                    e.title
                        .clone()
                        .or_else(|| e.message.clone())
                        .unwrap_or_else(|| "provider error".into())
                }),
                occurred_at: unix_time(&s.timestamp).unwrap_or(now),
                pricing: s.pricing.as_ref().map(pricing_of),
            }
        })
        .collect();
    if messages.is_empty() && statuses.is_empty() {
        return Ok(());
    }
    let outcome = state
        .ingestor
        .record(WebhookWrite {
            channel_id: channel.id.clone(),
            messages,
            statuses,
            now,
        })
        .await?;
    // Open event streams see what this webhook committed without waiting for the next tick.
    if outcome.messages_recorded > 0 || outcome.statuses_applied > 0 {
        state.event_feed.wake();
    }
    if !to_scan.is_empty() {
        // After commit and off the request: the provider gets its 200 without waiting.
        tokio::spawn(scan_inbound(
            state.clone(),
            channel.workspace_id.clone(),
            to_scan,
        ));
    }
    link_status_recipients(state, channel, value).await?;
    metrics::counter!("waypost_inbound_messages_total").increment(outcome.messages_recorded as u64);
    metrics::counter!("waypost_inbound_duplicates_total")
        .increment(outcome.messages_duplicate as u64);
    metrics::counter!("waypost_inbound_statuses_unmatched_total")
        .increment(outcome.statuses_unmatched as u64);
    Ok(())
}

/// Scans newly received texts with the shield; a positive verdict marks the
/// message and emits `message.flagged`. Duplicates were never inserted, so
/// marking them changes nothing and emits nothing.
async fn scan_inbound(state: AppState, workspace_id: String, texts: Vec<(String, String)>) {
    let policy = match state.lookups.messaging_settings(&workspace_id).await {
        Ok(s) => s.shield_policy,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the shield policy; inbound scan skipped");
            return;
        }
    };
    if !policy.scans() {
        return;
    }
    let Ok(workspace) = waypost_core::WorkspaceId::parse(&workspace_id) else {
        return;
    };
    for (message_id, text) in texts {
        let verdict = state.shield.scan(&waypost_shield::ScanInput::text(text));
        metrics::counter!("waypost_shield_inbound_scans_total", "label" => verdict.label.as_str())
            .increment(1);
        if !verdict.label.is_positive() {
            continue;
        }
        let reasons: Vec<&str> = verdict.reasons.iter().map(|r| r.code).collect();
        let event = crate::events::seal(
            &state.keys.current(),
            workspace,
            waypost_core::events::EventType::MessageFlagged,
            Some(message_id.clone()),
            &serde_json::json!({
                "message_id": message_id,
                "direction": "inbound",
                "label": verdict.label.as_str(),
                "score": verdict.score,
                "reasons": reasons,
            }),
            state.clock.now(),
        );
        if let Err(e) = state
            .store
            .flag_message(&message_id, verdict.label.as_str(), &event)
            .await
        {
            tracing::warn!(error = %e, message_id = %message_id, "cannot record a shield verdict");
        }
    }
}

/// The Waypost ids of the messages this webhook's messages quote or react to.
async fn known_messages(
    state: &AppState,
    channel: &ChannelRow,
    value: &MessagesValue,
) -> anyhow::Result<KnownMessages> {
    let mut known = KnownMessages::new();
    for wamid in value.messages.iter().flat_map(referenced_wamids) {
        if known.contains_key(&wamid) {
            continue;
        }
        if let Some(m) = state
            .store
            .message_by_provider_id(&channel.id, &wamid)
            .await?
        {
            known.insert(wamid, m.id);
        }
    }
    Ok(known)
}

fn unix_time(secs: &str) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs.trim().parse().ok()?, 0)
}

/// The row, event and keyword consent change of one inbound message, and
/// its automation work item when the channel has automation.
#[allow(clippy::too_many_arguments)]
fn inbound_message(
    state: &AppState,
    channel: &ChannelRow,
    contact: &ContactRow,
    m: &InboundMessage,
    known: &KnownMessages,
    retain_days: Option<i64>,
    automation: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<NewInboundMessage> {
    let id = waypost_core::MessageId::new().to_string();
    let key = content_key(&state.keys, contact)?;
    // The file an image/video/audio/document/sticker carries, as a `med_…` row (its id: `media.media.id`).
    let media = crate::ops::media::inbound_media(state, channel, contact, &id, m, now);
    let media_id = media.as_ref().map(|n| n.media.id.as_str());
    let said = serde_json::to_value(normalise(m, media_id, known))?;
    let (content, content_expires_at) = match (retain_days, &key) {
        (Some(days), Some(key)) => (
            Some(key.encrypt(
                Aad::new("messages", "content", &id),
                &serde_json::to_vec(&said)?,
            )),
            Some(now + chrono::Duration::days(days)),
        ),
        _ => (None, None),
    };
    let message = MessageRow {
        id: id.clone(),
        workspace_id: channel.workspace_id.clone(),
        channel_id: channel.id.clone(),
        contact_id: contact.id.clone(),
        direction: "inbound".into(),
        message_type: m.content.kind().to_owned(),
        template_name: None,
        template_language: None,
        category: None,
        status: waypost_core::MessageStatus::Received.as_str().into(),
        provider_message_id: Some(m.id.clone()),
        error_code: None,
        error_title: None,
        content,
        content_expires_at,
        shield_label: None,
        provider_acceptance: None,
        created_at: now,
        updated_at: now,
        country: None,
    };
    let ring = state.keys.current();
    // The sender's identifiers: the BSUID, and the number masked as everywhere outside the contacts API.
    let who = contact_identity(&state.keys, contact)?;
    // Metadata only: the content is sealed separately, under the contact's key.
    let data = serde_json::to_value(MessageReceivedData {
        message_id: id.clone(),
        channel_id: channel.id.clone(),
        contact_id: contact.id.clone(),
        from: Sender {
            user_id: who.user_id.map(|u| u.to_string()),
            phone: who.phone.map(|p| mask_phone(p.as_str())),
        },
        kind: message.message_type.clone(),
        wamid: m.id.clone(),
        sent_at: unix_time(&m.timestamp)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        content: Default::default(),
        content_state: None,
    })?;
    // The content travels with the event, sealed by the contact's key, until delivered.
    let event = seal_with_content(
        &ring,
        &channel.workspace_id,
        EventType::MessageReceived,
        Some(id.clone()),
        &data,
        key.as_ref().map(|key| HeldContent {
            key,
            contact_id: &contact.id,
            content: &said,
        }),
        now,
    );
    if keyword_of(&state.config, m) == Some(false) {
        use waypost_core::trust::{ScopeKind, signal};
        let ws = channel.workspace_id.as_str();
        let scopes = [
            (ScopeKind::Workspace, ws),
            (ScopeKind::Channel, channel.id.as_str()),
        ];
        state
            .signals
            .add(now, Some(ws), &scopes, signal::OPT_OUT, 1);
    }
    let consent = keyword_of(&state.config, m).map(|opt_in| {
        let status = if opt_in { "opted_in" } else { "opted_out" };
        let consent_id = format!("cns_{}", ulid::Ulid::new());
        let evidence = serde_json::json!({"message_id": id, "wamid": m.id});
        let consent = ConsentRow {
            evidence: Some(ring.encrypt(
                Aad::new("contact_consents", "evidence", &consent_id),
                evidence.to_string().as_bytes(),
            )),
            id: consent_id,
            workspace_id: channel.workspace_id.clone(),
            contact_id: contact.id.clone(),
            status: status.into(),
            categories: "marketing,utility,authentication".into(),
            source: "inbound_keyword".into(),
            captured_at: now,
            recorded_at: now,
        };
        let all = Some(status.to_owned());
        let event_type = if opt_in {
            EventType::ContactOptedIn
        } else {
            EventType::ContactOptedOut
        };
        let data = serde_json::json!({
            "contact_id": contact.id,
            "status": status,
            "categories": ["marketing", "utility", "authentication"],
            "source": "inbound_keyword",
            "message_id": id,
        });
        KeywordConsent {
            event: sealed(
                &ring,
                &channel.workspace_id,
                event_type,
                Some(contact.id.clone()),
                &data,
                now,
            ),
            consent,
            state: ConsentState {
                marketing: all.clone(),
                utility: all.clone(),
                authentication: all,
            },
        }
    });
    // Keyword consent changes are answered by nothing else.
    let automation = match &consent {
        Some(_) => None,
        None if !automation => None,
        None => Some(crate::ops::automation::work_item(
            channel,
            contact,
            &id,
            m,
            key.as_ref(),
            unix_time(&m.timestamp).unwrap_or(now),
            now,
        )),
    };
    Ok(NewInboundMessage {
        message,
        event,
        consent,
        media,
        automation,
    })
}

/// `Some(false)` for an opt-out keyword, `Some(true)` for an opt-in one: the
/// whole text (or quick-reply button), ignoring case, spaces and end punctuation.
fn keyword_of(config: &crate::config::Config, m: &InboundMessage) -> Option<bool> {
    let text = match &m.content {
        InboundContent::Text(t) => t.body.as_str(),
        InboundContent::Button(b) => b.payload.as_deref().unwrap_or(&b.text),
        _ => return None,
    };
    let word = text
        .trim()
        .trim_end_matches(['.', '!', '?'])
        .trim()
        .to_uppercase();
    if word.is_empty() || word.len() > 32 {
        return None;
    }
    let matches = |list: &[String]| list.iter().any(|k| k.to_uppercase() == word);
    if matches(&config.opt_out_keywords) {
        Some(false)
    } else if matches(&config.opt_in_keywords) {
        Some(true)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(body: &str) -> InboundMessage {
        serde_json::from_value(serde_json::json!({
            "from": "15551234567", "id": "wamid.x", "timestamp": "1", "type": "text", "text": {"body": body}
        }))
        .unwrap()
    }

    #[test]
    fn keywords_match_whole_messages_in_any_case() {
        let c = crate::config::Config::default();
        assert_eq!(keyword_of(&c, &text("STOP")), Some(false));
        assert_eq!(keyword_of(&c, &text("  stop! ")), Some(false));
        assert_eq!(keyword_of(&c, &text("Baja")), Some(false));
        assert_eq!(keyword_of(&c, &text("arrêt")), Some(false));
        assert_eq!(keyword_of(&c, &text("start")), Some(true));
        assert_eq!(keyword_of(&c, &text("UNSTOP")), Some(true));
        assert_eq!(keyword_of(&c, &text("please stop sending")), None);
        assert_eq!(keyword_of(&c, &text("hello")), None);
    }
}
