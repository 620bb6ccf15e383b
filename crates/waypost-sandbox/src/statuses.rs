//! The status webhooks of an accepted send, in the shape the configured API
//! generation uses. Current (2026): `contacts[]` with the BSUID on sent,
//! delivered and read (the username not on `sent`), `recipient_id` only when
//! the phone may be shown, `recipient_user_id` always except on the `failed`
//! status of a send to a phone, PMP `pricing` with `type` on `sent` and the
//! first of delivered/read, no `conversation` (before v24: a per-message
//! one on those statuses), and `failed` with no contacts
//! or pricing and a relative `href`. Legacy: phones only, CBP pricing and a
//! conversation on every status.

use std::time::{Duration, Instant};

use waypost_cloudapi::error::{ErrorData, WebhookError};
use waypost_cloudapi::send::{MediaSource, OutboundContent, OutboundMessage};
use waypost_cloudapi::status::{
    Conversation, ConversationOrigin, Pricing, PricingCategory, PricingModel,
};
use waypost_cloudapi::webhook::MessagesValue;
use waypost_cloudapi::{Status, StatusKind};

use crate::config::{ApiShape, Behaviour, NumberConfig};
use crate::error::GraphError;
use crate::rules::{Admission, media_error};
use crate::state::{Inner, SendRecord};
use crate::{AppState, control, webhooks};

/// How long a media link may take to fetch before the send fails (131053).
const LINK_TIMEOUT: Duration = Duration::from_secs(5);

/// Schedules the status webhooks of an accepted send: the recipient's
/// behaviour, or a lone `failed` when the admission or the media link fails.
pub fn schedule(
    state: &AppState,
    inner: &mut Inner,
    number: &NumberConfig,
    record: &SendRecord,
    message: &OutboundMessage,
    admission: &Admission,
) {
    if !state.config.webhooks.enabled || number.webhook_url.is_none() {
        return;
    }
    let behaviour = inner.user(&record.to).config.behaviour;
    let conversation_id = inner.conversation_id(&number.id, &record.to);
    let link = match &message.content {
        OutboundContent::Image(m)
        | OutboundContent::Video(m)
        | OutboundContent::Audio(m)
        | OutboundContent::Document(m)
        | OutboundContent::Sticker(m) => match &m.source {
            MediaSource::Link(l) if !state.config.api.sync_errors => Some(l.clone()),
            _ => None,
        },
        _ => None,
    };
    let state = state.clone();
    let number = number.clone();
    let record = record.clone();
    let admission = admission.clone();
    let step = Duration::from_millis(state.config.webhooks.status_step_ms);
    tokio::spawn(async move {
        let mut failure = admission.fails_with.clone();
        if let (None, Some(link)) = (&failure, link) {
            failure = fetch_failure(&link).await;
            if let Some(e) = &failure {
                let mut inner = state.lock();
                let logged = inner.log.iter_mut().rev().find(|r| r.wamid == record.wamid);
                if let Some(r) = logged {
                    r.fails_with = Some(e.code);
                }
            }
        }
        let steps: &[StatusKind] = match (&failure, behaviour) {
            (Some(_), _) => &[StatusKind::Failed],
            (None, Behaviour::Reads | Behaviour::Replies) => {
                &[StatusKind::Sent, StatusKind::Delivered, StatusKind::Read]
            }
            (None, Behaviour::DeliversOnly) => &[StatusKind::Sent, StatusKind::Delivered],
            (None, Behaviour::Unreachable) => &[StatusKind::Sent, StatusKind::Failed],
        };
        let error = failure.as_ref().map_or_else(undeliverable, webhook_error);
        for (i, kind) in steps.iter().enumerate() {
            tokio::time::sleep(step).await;
            let billed = matches!(kind, StatusKind::Sent)
                || (i == 1 && matches!(kind, StatusKind::Delivered | StatusKind::Read));
            let mut inner = state.lock();
            let value = status_value(
                &state,
                &mut inner,
                &number,
                &record,
                &admission,
                StatusParts {
                    kind: kind.clone(),
                    billed,
                    conversation_id: &conversation_id,
                    error: &error,
                },
            );
            let payload = webhooks::messages_payload(&number, value);
            if let Some(d) = webhooks::delivery(&state.config, &number, &payload) {
                state.webhooks.enqueue(&mut inner, d);
            }
        }
        if failure.is_none() && behaviour == Behaviour::Replies {
            tokio::time::sleep(step).await;
            let reply_text = format!("Reply to {}", record.wamid.as_deref().unwrap_or(""));
            let message = serde_json::json!({"type": "text", "text": {"body": reply_text}});
            let _ = control::inject(&state, &number, &record.to, None, message);
        }
    });
}

/// 131053 unless the link answers 2xx in time.
async fn fetch_failure(link: &str) -> Option<GraphError> {
    let client = reqwest::Client::builder()
        .timeout(LINK_TIMEOUT)
        .build()
        .ok()?;
    match client.get(link).send().await {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => Some(media_error(&format!(
            "Downloading media from the link failed with HTTP status {}.",
            r.status().as_u16()
        ))),
        Err(_) => Some(media_error("The media link could not be fetched.")),
    }
}

struct StatusParts<'a> {
    kind: StatusKind,
    /// Carries `pricing` in the current shape.
    billed: bool,
    conversation_id: &'a str,
    error: &'a WebhookError,
}

fn status_value(
    state: &AppState,
    inner: &mut Inner,
    number: &NumberConfig,
    record: &SendRecord,
    admission: &Admission,
    parts: StatusParts<'_>,
) -> MessagesValue {
    let now = webhooks::now_secs();
    let failed = parts.kind == StatusKind::Failed;
    let category = PricingCategory::from(admission.category.as_str());
    let by_phone = record.recipient.is_none();
    let mut status = Status {
        id: record.wamid.clone().unwrap_or_default(),
        status: parts.kind.clone(),
        timestamp: now.to_string(),
        recipient_id: Some(record.to.clone()),
        recipient_user_id: None,
        recipient_parent_user_id: None,
        biz_opaque_callback_data: record.biz_opaque_callback_data.clone(),
        conversation: None,
        pricing: None,
        errors: if failed {
            vec![parts.error.clone()]
        } else {
            vec![]
        },
        recipient_type: None,
        recipient_participant_id: None,
        recipient_participant_user_id: None,
    };
    let mut contacts = vec![];
    match state.config.api.shape {
        ApiShape::Legacy => {
            status.conversation = (!failed).then(|| Conversation {
                id: parts.conversation_id.to_owned(),
                expiration_timestamp: (parts.kind == StatusKind::Sent)
                    .then(|| (now + 24 * 3600).to_string()),
                origin: Some(ConversationOrigin {
                    kind: category.clone(),
                }),
            });
            status.pricing = (!failed).then_some(Pricing {
                billable: Some(true),
                pricing_model: PricingModel::Cbp,
                category,
                kind: None,
            });
        }
        ApiShape::Current => {
            let user = inner.user(&record.to);
            let visible = user.phone_visible(&number.id, Instant::now());
            if !(by_phone || visible) {
                status.recipient_id = None;
            }
            if !(failed && by_phone) {
                status.recipient_user_id = Some(user.user_id.clone());
                status.recipient_parent_user_id = user.parent_user_id.clone();
            }
            if !failed {
                let with_username = parts.kind != StatusKind::Sent;
                contacts.push(user.contact(&record.to, visible, with_username));
            }
            // v23 and older: a conversation per message, on the statuses that carry pricing.
            if state.config.api.webhook_version < 24 && !failed && parts.billed {
                status.conversation = Some(Conversation {
                    id: per_message_conversation(&status.id),
                    expiration_timestamp: (parts.kind == StatusKind::Sent)
                        .then(|| (now + 24 * 3600).to_string()),
                    origin: Some(ConversationOrigin {
                        kind: category.clone(),
                    }),
                });
            }
            status.pricing = (!failed && parts.billed).then(|| Pricing {
                billable: Some(admission.pricing_type == "regular"),
                pricing_model: PricingModel::Pmp,
                category,
                kind: Some(admission.pricing_type.to_owned()),
            });
            if failed {
                status.errors = status.errors.into_iter().map(current_error).collect();
            }
        }
    }
    MessagesValue {
        messaging_product: "whatsapp".into(),
        metadata: webhooks::metadata(number),
        contacts,
        messages: vec![],
        statuses: vec![status],
        errors: vec![],
    }
}

/// A conversation id unique to one message, as v23 webhooks have had since PMP.
fn per_message_conversation(wamid: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(wamid.as_bytes())[..16])
}

/// A `failed` status's error as Meta sends it today: `message == title`,
/// relative `href`.
fn current_error(mut e: WebhookError) -> WebhookError {
    e.message = e.title.clone();
    e.href = Some("/documentation/business-messaging/whatsapp/support/error-codes".into());
    e
}

fn webhook_error(e: &GraphError) -> WebhookError {
    WebhookError {
        code: e.code,
        title: Some(e.title.clone()),
        message: Some(e.title.clone()),
        error_data: Some(ErrorData {
            messaging_product: None,
            details: Some(e.details.clone()),
        }),
        href: Some(
            "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/".into(),
        ),
    }
}

fn undeliverable() -> WebhookError {
    WebhookError {
        code: 131026,
        title: Some("Message undeliverable".into()),
        message: Some("Message undeliverable".into()),
        error_data: Some(ErrorData {
            messaging_product: None,
            details: Some("Message Undeliverable: the recipient could not be reached.".into()),
        }),
        href: Some(
            "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/".into(),
        ),
    }
}
