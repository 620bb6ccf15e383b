//! Sending messages and reading them back. Everything that can refuse a send
//! (recipient, consent, the 24-hour window, templates, payload limits, the
//! shield) is checked locally before the message is accepted; a `202` means
//! the message, its outbox row, idempotency record, audit event and customer
//! event are committed together.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use waypost_cloudapi::send::OutboundContext;
use waypost_cloudapi::{OutboundContent, OutboundMessage, check_limits};
use waypost_core::events::EventType;
use waypost_core::policy::{self, Category, Consent, Recipient, Refusal, SendKind};
use waypost_core::{MessageId, NewAuditEvent};
use waypost_crypto::Aad;
use waypost_store::messaging::{
    AcceptOutcome, ContactRow, MessageFilter, MessageRow, NewIdempotencyRecord, NewOutboundMessage,
    OutboxRow,
};

use super::contacts::parse_phone;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::messaging::{content_key, find_or_create_contact, phone_index};
use crate::state::{AppState, RequestOrigin};

/// How long an idempotency key is remembered.
const IDEMPOTENCY_TTL: Duration = Duration::hours(24);
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The request: a recipient and a Cloud API message payload (`type` plus the
/// object of that name).
#[derive(Deserialize)]
pub struct SendMessage {
    pub channel_id: String,
    pub to: Option<String>,
    pub contact_id: Option<String>,
    pub context: Option<SendContext>,
    #[serde(flatten)]
    pub content: OutboundContent,
}

#[derive(Deserialize, Serialize, ToSchema)]
pub struct SendContext {
    /// The message replied to: a Waypost `msg_…` id or the provider's `wamid`.
    pub message_id: String,
}

/// `POST /v1/messages` body (documentation shape).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SendMessageDoc {
    channel_id: String,
    /// E.164 number; give this or `contact_id`.
    to: Option<String>,
    contact_id: Option<String>,
    /// `text`, `template`, `image`, `document`, `audio`, `video`, `interactive`, `reaction`, `location`, …
    r#type: String,
    /// The payload for `type`, as in the WhatsApp Cloud API (e.g. `{"body": "Hi"}`).
    #[schema(value_type = Option<Object>)]
    text: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    template: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    image: Option<serde_json::Value>,
    context: Option<SendContext>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    pub id: String,
    pub status: String,
}

fn refuse(slug: &str, title: &str, detail: impl Into<String>) -> ApiError {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, slug, title, detail).into()
}

fn refusal_problem(r: Refusal) -> ApiError {
    let (slug, title) = match r {
        Refusal::Restricted => ("recipient-restricted", "Recipient restricted"),
        Refusal::OptedOut(_) => ("recipient-opted-out", "Recipient opted out"),
        Refusal::MarketingConsentRequired => {
            ("marketing-consent-required", "Marketing consent required")
        }
        Refusal::OutsideWindow => ("outside-window", "Outside the 24-hour window"),
    };
    refuse(slug, title, r.to_string())
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
        .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::from(Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-idempotency-key",
                "Invalid Idempotency-Key",
                format!(
                    "`Idempotency-Key` must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
                ),
            ))
        })?;
    Ok(Some(key.to_owned()))
}

fn fingerprint(body: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"POST /v1/messages\n");
    h.update(body);
    h.finalize().to_vec()
}

fn idempotency_mismatch() -> ApiError {
    refuse(
        "idempotency-key-reused",
        "Idempotency-Key reused",
        "This Idempotency-Key was used with a different request body.",
    )
}

/// The stored answer for a key, if an identical request already finished.
async fn replay(
    state: &AppState,
    workspace: &str,
    key: &str,
    hash: &[u8],
) -> Result<Option<Response>, ApiError> {
    let Some(record) = state.store.find_idempotency(workspace, key).await? else {
        return Ok(None);
    };
    if record.expires_at <= state.clock.now() {
        return Ok(None);
    }
    if record.request_hash != hash {
        return Err(idempotency_mismatch());
    }
    let (Some(status), Some(body)) = (record.response_status, record.response_body) else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "idempotency-in-progress",
            "Request in progress",
            "A request with this Idempotency-Key is still running; retry shortly.",
        )
        .into());
    };
    let plain = state
        .keys
        .decrypt(
            state.store.as_ref(),
            Aad::new("idempotency_records", "response_body", &record.id),
            &body,
        )
        .await
        .map_err(ApiError::Internal)?;
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::ACCEPTED);
    let mut response = (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        plain.to_vec(),
    )
        .into_response();
    response.headers_mut().insert(
        "idempotent-replayed",
        "true".parse().expect("static header"),
    );
    Ok(Some(response))
}

fn content_type(content: &OutboundContent) -> &'static str {
    match content {
        OutboundContent::Text(_) => "text",
        OutboundContent::Image(_) => "image",
        OutboundContent::Document(_) => "document",
        OutboundContent::Audio(_) => "audio",
        OutboundContent::Video(_) => "video",
        OutboundContent::Sticker(_) => "sticker",
        OutboundContent::Location(_) => "location",
        OutboundContent::Contacts(_) => "contacts",
        OutboundContent::Interactive(_) => "interactive",
        OutboundContent::Template(_) => "template",
        OutboundContent::Reaction(_) => "reaction",
        OutboundContent::Unsupported(_) => "unsupported",
    }
}

fn check_template_parameters(
    definition: &serde_json::Value,
    sent: &waypost_cloudapi::template::TemplateMessage,
) -> Result<(), ApiError> {
    use waypost_cloudapi::template::ComponentKind;
    let expected = waypost_core::template::parameter_counts(definition);
    let (header, body) = (expected.header, expected.body);
    let count = |kind: ComponentKind| -> usize {
        sent.components
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.parameters.len())
            .sum()
    };
    let mismatch = |part: &str, want: usize, got: usize| {
        refuse(
            "template-parameters",
            "Wrong template parameters",
            format!("the template's {part} takes {want} parameter(s), the request gives {got}"),
        )
    };
    let (got_header, got_body) = (count(ComponentKind::Header), count(ComponentKind::Body));
    if got_header != header {
        return Err(mismatch("header", header, got_header));
    }
    if got_body != body {
        return Err(mismatch("body", body, got_body));
    }
    for button in expected.buttons {
        let (index, want) = (button.index, button.count);
        let got: usize = sent
            .components
            .iter()
            .filter(|c| {
                c.kind == ComponentKind::Button
                    && c.index.as_ref().and_then(|i| i.position()) == Some(index as u32)
            })
            .map(|c| c.parameters.len())
            .sum();
        if got != want {
            return Err(mismatch(&format!("button {index}"), want, got));
        }
    }
    Ok(())
}

fn recipient_of(c: &ContactRow) -> Recipient {
    Recipient {
        restricted: c.restricted,
        marketing: Consent::parse(c.consent_marketing.as_deref()),
        utility: Consent::parse(c.consent_utility.as_deref()),
        authentication: Consent::parse(c.consent_authentication.as_deref()),
        last_inbound_at: c.last_inbound_at,
    }
}

fn text_of(content: &OutboundContent) -> Option<String> {
    match content {
        OutboundContent::Text(t) => Some(t.body.clone()),
        OutboundContent::Image(m) | OutboundContent::Video(m) | OutboundContent::Document(m) => {
            m.caption.clone()
        }
        _ => None,
    }
}

/// Queues a message for sending. Policy checks run first; `202` means it is durable.
#[utoipa::path(operation_id = "send_message", post, path = "/v1/messages", tag = "messages",
    request_body = SendMessageDoc,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body get the first answer")),
    responses((status = 202, body = Accepted),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json",
            description = "Refused by policy: recipient-opted-out, recipient-restricted, marketing-consent-required, outside-window, template-unknown, template-not-approved, template-parameters, payload-limit, shield-blocked, idempotency-key-reused")))]
pub async fn send(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MessagesSend>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !super::json::is_json(headers.get(axum::http::header::CONTENT_TYPE)) {
        return Err(Problem::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE).into());
    }
    let workspace = auth.workspace_id.to_string();
    let key = idempotency_key(&headers)?;
    let hash = fingerprint(&body);
    if let Some(key) = &key
        && let Some(answer) = replay(&state, &workspace, key, &hash).await?
    {
        return Ok(answer);
    }
    let req: SendMessage = super::json::parse(&body)?;
    let now = state.clock.now();

    let channel = state.store.get_channel(&workspace, &req.channel_id).await?;
    let contact = match (&req.contact_id, &req.to) {
        (Some(id), None) => state.store.get_contact(&workspace, id).await?,
        (None, Some(to)) => {
            let phone = parse_phone("to", to)?;
            match state
                .store
                .contact_by_phone_index(&workspace, &phone_index(&state.keys, &workspace, &phone))
                .await?
            {
                Some(c) => c,
                None => find_or_create_contact(&state, &workspace, &phone)
                    .await
                    .map_err(ApiError::Internal)?,
            }
        }
        _ => {
            return Err(refuse(
                "validation",
                "Invalid request",
                "give exactly one of `to` and `contact_id`",
            ));
        }
    };
    let phone =
        crate::messaging::contact_phone(&state.keys, &contact).map_err(ApiError::Internal)?;

    if let OutboundContent::Unsupported(u) = &req.content {
        return Err(refuse(
            "unsupported-type",
            "Unsupported message type",
            format!("`type` {:?} cannot be sent", u.kind),
        ));
    }
    let recipient = recipient_of(&contact);
    policy::check_recipient(&recipient).map_err(refusal_problem)?;
    let mut template_fields = None;
    let kind = match &req.content {
        OutboundContent::Template(t) => {
            let found = state
                .store
                .find_template(&workspace, &t.name, &t.language.code)
                .await?
                .ok_or_else(|| {
                    refuse(
                        "template-unknown",
                        "Unknown template",
                        format!(
                            "no template `{}` in language `{}` in this workspace",
                            t.name.chars().take(100).collect::<String>(),
                            t.language.code.chars().take(20).collect::<String>()
                        ),
                    )
                })?;
            if found.status != "APPROVED" {
                return Err(refuse(
                    "template-not-approved",
                    "Template not approved",
                    format!("the template's status is {}", found.status),
                ));
            }
            let definition: serde_json::Value =
                serde_json::from_str(&found.components).unwrap_or_default();
            check_template_parameters(&definition, t)?;
            let category = Category::parse(&found.category).unwrap_or(Category::Marketing);
            template_fields = Some((t.name.clone(), t.language.code.clone(), category));
            SendKind::Template(category)
        }
        _ => SendKind::Session,
    };
    policy::check_send(&recipient, kind, now).map_err(refusal_problem)?;

    let id = MessageId::new().to_string();
    let context = match &req.context {
        None => None,
        Some(c) if c.message_id.starts_with("msg_") => {
            let replied = state.store.get_message(&workspace, &c.message_id).await?;
            let wamid = replied.provider_message_id.ok_or_else(|| {
                refuse(
                    "context-unknown",
                    "Reply target not sent",
                    "the message replied to has no provider id yet",
                )
            })?;
            Some(OutboundContext { message_id: wamid })
        }
        Some(c) => Some(OutboundContext {
            message_id: c.message_id.clone(),
        }),
    };
    let mut outbound = OutboundMessage::new(phone.wa_id(), req.content);
    outbound.context = context;
    outbound.biz_opaque_callback_data = Some(id.clone());
    check_limits(&outbound).map_err(|v| refuse("payload-limit", "Payload limit", v.to_string()))?;

    let settings = state.store.messaging_settings(&workspace).await?;
    let text = text_of(&outbound.content);
    let mut shield_label = None;
    if settings.shield_policy != "off"
        && let Some(text) = &text
    {
        let verdict = state
            .shield
            .scan(&waypost_shield::ScanInput::text(text.clone()));
        if verdict.label.is_positive() {
            if settings.shield_policy == "block" && verdict.label == waypost_shield::Label::Smishing
            {
                metrics::counter!("waypost_shield_blocked_total", "direction" => "outbound")
                    .increment(1);
                // Reason codes only: their details may quote the message.
                let reasons: Vec<&str> = verdict.reasons.iter().map(|r| r.code).collect();
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "shield-blocked",
                    "Blocked by the shield",
                    format!(
                        "the shield classified the message as {} (score {:.2}); the workspace blocks such messages",
                        verdict.label.as_str(),
                        verdict.score
                    ),
                )
                .with("reasons", reasons.into())
                .into());
            }
            shield_label = Some(verdict.label.as_str().to_owned());
        }
    }

    let ring = state.keys.current();
    let payload_json = serde_json::to_vec(&outbound).expect("messages serialise");
    let (content, content_expires_at) =
        match crate::messaging::retention_days(&settings.content_retention) {
            Some(days) => match content_key(&state.keys, &contact).map_err(ApiError::Internal)? {
                Some(k) => (
                    Some(k.encrypt(Aad::new("messages", "content", &id), &payload_json)),
                    Some(now + Duration::days(days)),
                ),
                None => (None, None),
            },
            None => (None, None),
        };
    let type_name = content_type(&outbound.content).to_owned();
    let (template_name, template_language, category) = match template_fields {
        Some((n, l, c)) => (Some(n), Some(l), Some(c.as_str().to_owned())),
        None => (None, None, None),
    };
    let message = MessageRow {
        id: id.clone(),
        workspace_id: workspace.clone(),
        channel_id: channel.id.clone(),
        contact_id: contact.id.clone(),
        direction: "outbound".into(),
        message_type: type_name.clone(),
        template_name: template_name.clone(),
        template_language,
        category: category.clone(),
        status: "queued".into(),
        provider_message_id: None,
        error_code: None,
        error_title: None,
        content,
        content_expires_at,
        shield_label: shield_label.clone(),
        created_at: now,
        updated_at: now,
    };
    let outbox = OutboxRow {
        message_id: id.clone(),
        workspace_id: workspace.clone(),
        channel_id: channel.id.clone(),
        contact_id: contact.id.clone(),
        payload: ring.encrypt(Aad::new("outbox", "payload", &id), &payload_json),
        attempts: 0,
        next_attempt_at: now,
        deadline_at: now + Duration::seconds(state.config.message_deadline_secs as i64),
        lease_owner: None,
        lease_until: None,
        attempt_started_at: None,
        last_error_code: None,
        last_error_title: None,
    };
    let answer = Accepted {
        id: id.clone(),
        status: "queued".into(),
    };
    let answer_json = serde_json::to_vec(&answer).expect("answers serialise");
    let idempotency = key.map(|key| {
        let record_id = waypost_core::id::IdempotencyRecordId::new().to_string();
        NewIdempotencyRecord {
            response_body: ring.encrypt(
                Aad::new("idempotency_records", "response_body", &record_id),
                &answer_json,
            ),
            id: record_id,
            key,
            request_hash: hash.clone(),
            response_status: 202,
            created_at: now,
            expires_at: now + IDEMPOTENCY_TTL,
        }
    });
    let idempotent = idempotency.is_some();
    let metadata = serde_json::json!({
        "message_id": id,
        "channel_id": channel.id,
        "contact_id": contact.id,
        "direction": "outbound",
        "type": type_name,
        "template": template_name,
        "category": category,
        "status": "queued",
    });
    let mut events = vec![crate::events::seal(
        &ring,
        auth.workspace_id,
        EventType::MessageQueued,
        Some(id.clone()),
        &metadata,
        now,
    )];
    if let Some(label) = &shield_label {
        events.push(crate::events::seal(
            &ring,
            auth.workspace_id,
            EventType::MessageFlagged,
            Some(id.clone()),
            &serde_json::json!({
                "message_id": id,
                "direction": "outbound",
                "label": label,
            }),
            now,
        ));
    }
    let audit = origin.stamp(
        NewAuditEvent::new(
            Some(auth.workspace_id),
            auth.caller.actor(),
            "message.accepted",
        )
        .target("message", id.clone())
        .details(serde_json::json!({
            "channel_id": channel.id,
            "contact_id": contact.id,
            "type": metadata["type"],
        })),
    );
    let outcome = state
        .acceptor
        .accept(NewOutboundMessage {
            message,
            outbox,
            idempotency,
            audit,
            events,
        })
        .await?;
    metrics::counter!("waypost_messages_accepted_total").increment(1);
    match outcome {
        AcceptOutcome::Accepted => Ok((StatusCode::ACCEPTED, Json(answer)).into_response()),
        // A concurrent request with the same key committed first: answer as it did.
        AcceptOutcome::DuplicateKey if idempotent => {
            let key = idempotency_key(&headers)?.expect("checked above");
            replay(&state, &workspace, &key, &hash)
                .await?
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("idempotency record vanished")))
        }
        AcceptOutcome::DuplicateKey => Err(ApiError::Internal(anyhow::anyhow!(
            "duplicate key without an idempotency key"
        ))),
    }
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
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
    /// Set when the shield flagged the message (`spam` or `smishing`).
    pub shield_label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Status history, oldest first (only on `GET /v1/messages/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<StatusView>>,
}

fn message_view(m: MessageRow) -> MessageView {
    MessageView {
        id: m.id,
        channel_id: m.channel_id,
        contact_id: m.contact_id,
        direction: m.direction,
        r#type: m.message_type,
        template: m.template_name,
        category: m.category,
        status: m.status,
        provider_message_id: m.provider_message_id,
        error_code: m.error_code,
        error_title: m.error_title,
        shield_label: m.shield_label,
        created_at: m.created_at,
        updated_at: m.updated_at,
        history: None,
    }
}

/// One message with its status history and provider codes.
#[utoipa::path(operation_id = "get_message", get, path = "/v1/messages/{id}", tag = "messages", params(("id" = String, Path)),
    responses((status = 200, body = MessageView), (status = 404, body = Problem, content_type = "application/problem+json")))]
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
    let mut view = message_view(row);
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
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    pub data: Vec<MessageView>,
    pub next_cursor: Option<String>,
}

/// The workspace's messages, oldest first, filtered.
#[utoipa::path(operation_id = "list_messages", get, path = "/v1/messages", tag = "messages", params(MessageQuery),
    responses((status = 200, body = MessagePage), (status = 422, body = Problem, content_type = "application/problem+json")))]
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
        return Err(refuse("validation", "Invalid request", "unknown `status`"));
    }
    if let Some(d) = &q.direction
        && !["outbound", "inbound"].contains(&d.as_str())
    {
        return Err(refuse(
            "validation",
            "Invalid request",
            "`direction` must be `outbound` or `inbound`",
        ));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
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
    Ok(Json(MessagePage {
        data: rows.into_iter().map(message_view).collect(),
        next_cursor,
    }))
}
