//! Sending messages and reading them back. Everything that can refuse a send
//! (recipient, consent, the 24-hour window, templates, payload limits, the
//! shield) is checked locally before the message is accepted; a `202` means
//! the message, its outbox row, idempotency record, audit event and customer
//! event are committed together.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use waypost_store::inbound::MessagePricing;
use waypost_store::messaging::{MessageFilter, MessageRow};

use super::idempotency::{Idempotent, replayed};
use super::{ApiError, Problem, unprocessable};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::ops::Ctx;
use crate::ops::message_content::{ContentState, Said, content_of};
use crate::ops::messages::{self, Accepted, Answer, SendMessage};
use crate::ops::paging::page_limit;
use crate::state::{AppState, RequestOrigin};

/// `POST /v1/messages` body: named here, described in `http::openapi::send`
/// (one shape per message `type`, which the derive cannot express).
pub struct SendMessageDoc;

impl utoipa::PartialSchema for SendMessageDoc {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new().into()
    }
}

impl ToSchema for SendMessageDoc {
    fn name() -> std::borrow::Cow<'static, str> {
        "SendMessage".into()
    }
}

/// Queues a message for sending. Policy checks run first; `202` means it is durable.
#[utoipa::path(operation_id = "send_message", post, path = "/v1/messages", tag = "messages",
    request_body = SendMessageDoc,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x21-\\x7E]+$",
        description = "Retries with the same key and body get the first answer")),
    responses((status = 202, body = Accepted),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json",
            description = "Refused by policy: recipient-opted-out, recipient-restricted, marketing-consent-required, outside-window, template-unknown, template-not-approved, template-parameters, payload-limit, shield-blocked, idempotency-key-reused, media-type-mismatch, media-channel-mismatch, media-expired, media-not-sendable")),
    security(("api_key" = ["messages:send"]), ("session" = [])))]
pub async fn send(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MessagesSend>,
    Idempotent { key, body }: Idempotent<SendMessage>,
) -> Result<Response, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    Ok(
        match messages::accept(&state, &ctx, body, key.as_ref()).await? {
            Answer::Accepted(accepted) => (StatusCode::ACCEPTED, Json(accepted)).into_response(),
            Answer::Replayed(stored) => replayed(stored),
        },
    )
}

#[derive(Serialize, ToSchema)]
pub struct StatusView {
    pub status: String,
    pub provider_code: Option<i64>,
    pub provider_title: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct MessageView {
    pub id: String,
    pub channel_id: String,
    pub contact_id: String,
    pub direction: String,
    pub r#type: String,
    pub template: Option<String>,
    pub category: Option<String>,
    pub status: String,
    /// The provider's id (`wamid…`) once sent or received.
    pub provider_message_id: Option<String>,
    /// The `message_status` of the provider's send answer (`accepted`,
    /// `held_for_quality_assessment`, `paused`), when it gave one (template sends).
    pub provider_acceptance: Option<String>,
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
    /// Set when the shield flagged the message (`spam` or `smishing`).
    pub shield_label: Option<String>,
    /// What the message said, when the workspace retains content (inbound:
    /// the normalised content of `message.received`; outbound: what was sent).
    #[schema(value_type = Option<Object>)]
    pub content: Option<serde_json::Value>,
    /// Why `content` is null: `not_retained`, `erased` or `expired`.
    pub content_state: Option<ContentState>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Status history, oldest first (only on `GET /v1/messages/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<StatusView>>,
    /// What the provider's latest status said the message costs, `null` until a
    /// status carried pricing (only on `GET /v1/messages/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<PricingView>)]
    pub pricing: Option<Option<PricingView>>,
}

/// A message's pricing in either of the provider's shapes: conversation-based
/// (`CBP`, no `type`) or per message (`PMP` with `type`).
#[derive(Serialize, ToSchema)]
pub struct PricingView {
    /// Whether the provider charges for it; older `CBP` statuses say `true` even for free service messages.
    pub billable: Option<bool>,
    /// `PMP` (per message) or `CBP` (conversation-based).
    pub pricing_model: Option<String>,
    /// `marketing`, `utility`, `authentication`, `service`, …
    pub category: Option<String>,
    /// `regular`, `free_customer_service` or `free_entry_point`; `PMP` only.
    pub r#type: Option<String>,
}

impl From<MessagePricing> for PricingView {
    fn from(p: MessagePricing) -> Self {
        Self {
            billable: p.billable,
            pricing_model: p.pricing_model,
            category: p.pricing_category,
            r#type: p.pricing_type,
        }
    }
}

pub(crate) fn message_view(m: MessageRow, said: Said) -> MessageView {
    MessageView {
        content: said.content,
        content_state: said.state,
        id: m.id,
        channel_id: m.channel_id,
        contact_id: m.contact_id,
        direction: m.direction,
        r#type: m.message_type,
        template: m.template_name,
        category: m.category,
        status: m.status,
        provider_message_id: m.provider_message_id,
        provider_acceptance: m.provider_acceptance,
        error_code: m.error_code,
        error_title: m.error_title,
        shield_label: m.shield_label,
        created_at: m.created_at,
        updated_at: m.updated_at,
        history: None,
        pricing: None,
    }
}

/// One message with its status history and provider codes.
#[utoipa::path(operation_id = "get_message", get, path = "/v1/messages/{id}", tag = "messages", params(("id" = String, Path)),
    responses((status = 200, body = MessageView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["messages:read"]), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<act::MessagesRead>,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    let row = state
        .store
        .get_message(&auth.workspace_id.to_string(), &id)
        .await?;
    let history = state.store.message_statuses(&row.id).await?;
    let pricing = state.store.message_pricing(&row.id).await?;
    let said = content_of(
        &state,
        &auth.workspace_id.to_string(),
        std::slice::from_ref(&row),
        state.clock.now(),
    )
    .await?;
    let mut view = message_view(row, said.into_iter().next().expect("one row, one content"));
    view.history = Some(
        history
            .into_iter()
            .map(|s| StatusView {
                status: s.status,
                provider_code: s.provider_code,
                provider_title: s.provider_title,
                occurred_at: s.occurred_at,
            })
            .collect(),
    );
    view.pricing = Some(pricing.map(PricingView::from));
    Ok(Json(view))
}

#[derive(Deserialize, IntoParams)]
pub struct MessageQuery {
    pub channel_id: Option<String>,
    pub contact_id: Option<String>,
    /// `queued`, `sending`, `sent`, `delivered`, `read`, `failed` or `received`.
    pub status: Option<String>,
    /// `outbound` or `inbound`.
    pub direction: Option<String>,
    /// Created at or after (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    pub data: Vec<MessageView>,
    pub next_cursor: Option<String>,
}

/// The workspace's messages, oldest first, filtered.
#[utoipa::path(operation_id = "list_messages", get, path = "/v1/messages", tag = "messages", params(MessageQuery),
    responses((status = 200, body = MessagePage), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["messages:read"]), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<act::MessagesRead>,
    Query(q): Query<MessageQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    if let Some(s) = &q.status
        && ![
            "queued",
            "sending",
            "sent",
            "delivered",
            "read",
            "failed",
            "received",
        ]
        .contains(&s.as_str())
    {
        return Err(unprocessable("unknown `status`"));
    }
    if let Some(d) = &q.direction
        && !["outbound", "inbound"].contains(&d.as_str())
    {
        return Err(unprocessable("`direction` must be `outbound` or `inbound`"));
    }
    let limit = page_limit(q.limit, 100, 500)?;
    let filter = MessageFilter {
        channel_id: q.channel_id,
        contact_id: q.contact_id,
        status: q.status,
        direction: q.direction,
        since: q.since,
        until: q.until,
        after: q.after,
    };
    let rows = state
        .store
        .list_messages(&auth.workspace_id.to_string(), &filter, limit)
        .await?;
    let next_cursor = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|m| m.id.clone()))
        .flatten();
    let said = content_of(
        &state,
        &auth.workspace_id.to_string(),
        &rows,
        state.clock.now(),
    )
    .await?;
    Ok(Json(MessagePage {
        data: rows
            .into_iter()
            .zip(said)
            .map(|(m, s)| message_view(m, s))
            .collect(),
        next_cursor,
    }))
}
