//! `messages::accept`: everything that can refuse a send (recipient, consent,
//! the 24-hour window, templates, payload limits, the shield) is checked here
//! before the message is accepted; acceptance means the message, its outbox
//! row, idempotency record, audit event and customer events are committed together.

use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_cloudapi::send::OutboundContext;
use waypost_cloudapi::{OutboundContent, OutboundMessage, check_limits};
use waypost_core::events::EventType;
use waypost_core::policy::{self, Category, Consent, Recipient, Refusal, SendKind};
use waypost_core::{MessageId, MessageStatus, NewAuditEvent, ShieldPolicy};
use waypost_crypto::Aad;
use waypost_store::messaging::{
    AcceptOutcome, ContactRow, MessageRow, NewOutboundMessage, OutboxRow,
};

use super::Ctx;
use super::idempotency::{IdempotencyKey, StoredAnswer};
use crate::error::{ApiError, Problem};
use crate::messaging::content_key;
use crate::messaging::identity::Identity;
use crate::state::AppState;

/// The request: a recipient and a Cloud API message payload (`type` plus the
/// object of that name). A media payload may name an upload by its Waypost
/// id (`{"media_id": "med_…"}`) instead of a provider `id` or a `link`.
#[derive(Deserialize)]
#[serde(try_from = "SendMessageWire")]
pub struct SendMessage {
    pub channel_id: String,
    pub to: Option<String>,
    /// A business-scoped user id (or parent BSUID), for customers without a known phone.
    pub user_id: Option<String>,
    pub contact_id: Option<String>,
    pub context: Option<SendContext>,
    pub content: OutboundContent,
    /// The `med_…` upload the media payload names; replaced by the provider's id on acceptance.
    pub media_id: Option<String>,
}

#[derive(Deserialize)]
struct SendMessageWire {
    channel_id: String,
    to: Option<String>,
    user_id: Option<String>,
    contact_id: Option<String>,
    context: Option<SendContext>,
    #[serde(flatten)]
    payload: serde_json::Map<String, serde_json::Value>,
}

impl TryFrom<SendMessageWire> for SendMessage {
    type Error = String;

    fn try_from(mut w: SendMessageWire) -> Result<Self, String> {
        let media_id = super::media::take_media_id(&mut w.payload)?;
        let content = serde_json::from_value(serde_json::Value::Object(w.payload))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            channel_id: w.channel_id,
            to: w.to,
            user_id: w.user_id,
            contact_id: w.contact_id,
            context: w.context,
            content,
            media_id,
        })
    }
}

#[derive(Deserialize, Serialize, ToSchema)]
pub struct SendContext {
    /// The message replied to: a Waypost `msg_…` id or the provider's `wamid`.
    pub message_id: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    pub id: String,
    pub status: String,
}

/// What `accept` answers: a new acceptance, or the answer an identical earlier
/// request with the same idempotency key got.
#[derive(Debug)]
pub enum Answer {
    Accepted(Accepted),
    Replayed(StoredAnswer),
}

fn refuse(slug: &str, title: &str, detail: impl Into<String>) -> ApiError {
    Problem::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        slug,
        title,
        detail,
    )
    .into()
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

/// The contact a send names: by id, by phone or by BSUID (exactly one);
/// an unknown phone or BSUID becomes a new contact.
async fn recipient_contact(
    state: &AppState,
    ctx: &Ctx,
    req: &SendMessage,
) -> Result<ContactRow, ApiError> {
    let who = match (&req.contact_id, &req.to, &req.user_id) {
        (Some(id), None, None) => return Ok(state.store.get_contact(&ctx.workspace, id).await?),
        (None, Some(to), None) => Identity {
            phone: Some(super::contacts::parse_phone("to", to)?),
            ..Identity::default()
        },
        (None, None, Some(id)) => {
            let id = super::contacts::parse_user_id("user_id", id)?;
            if id.is_parent() {
                Identity {
                    parent_user_id: Some(id),
                    ..Identity::default()
                }
            } else {
                Identity {
                    user_id: Some(id),
                    ..Identity::default()
                }
            }
        }
        _ => {
            return Err(refuse(
                "validation",
                "Invalid request",
                "give exactly one of `to`, `user_id` and `contact_id`",
            ));
        }
    };
    super::contacts::resolve_contact(state, &ctx.workspace, &who)
        .await
        .map_err(ApiError::Internal)?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no contact for a send")))
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

/// Accepts one outbound message for sending, or refuses it with the reason.
/// With `key`, an identical earlier request's answer is given again instead.
/// The key is claimed in the batch that writes the message, so a first request
/// costs no extra lookup; a refusal checks for an earlier answer, so a retry of
/// an accepted request is answered as then even if it would now be refused.
pub async fn accept(
    state: &AppState,
    ctx: &Ctx,
    req: SendMessage,
    key: Option<&IdempotencyKey>,
) -> Result<Answer, ApiError> {
    match accept_new(state, ctx, req, key).await {
        Err(refused) => match key {
            Some(key) => match super::idempotency::replay(state, &ctx.workspace, key).await? {
                Some(stored) => Ok(Answer::Replayed(stored)),
                None => Err(refused),
            },
            None => Err(refused),
        },
        answer => answer,
    }
}

/// What a template send must satisfy: known, approved, the right parameters.
/// Returns the template's name, language and category.
async fn check_template(
    state: &AppState,
    ctx: &Ctx,
    t: &waypost_cloudapi::template::TemplateMessage,
) -> Result<(String, String, Category), ApiError> {
    let found = state
        .lookups
        .template(&ctx.workspace, &t.name, &t.language.code)
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
    let definition: serde_json::Value = serde_json::from_str(&found.components).unwrap_or_default();
    check_template_parameters(&definition, t)?;
    let category = Category::parse(&found.category).unwrap_or(Category::Marketing);
    Ok((t.name.clone(), t.language.code.clone(), category))
}

/// The provider id of the message replied to.
async fn reply_context(
    state: &AppState,
    ctx: &Ctx,
    context: Option<&SendContext>,
) -> Result<Option<OutboundContext>, ApiError> {
    match context {
        None => Ok(None),
        Some(c) if c.message_id.starts_with("msg_") => {
            let replied = state
                .store
                .get_message(&ctx.workspace, &c.message_id)
                .await?;
            let wamid = replied.provider_message_id.ok_or_else(|| {
                refuse(
                    "context-unknown",
                    "Reply target not sent",
                    "the message replied to has no provider id yet",
                )
            })?;
            Ok(Some(OutboundContext { message_id: wamid }))
        }
        Some(c) => Ok(Some(OutboundContext {
            message_id: c.message_id.clone(),
        })),
    }
}

/// The shield's label for a flagged text, or the refusal when the workspace blocks it.
fn scan_outbound(
    state: &AppState,
    policy: ShieldPolicy,
    text: Option<String>,
) -> Result<Option<String>, ApiError> {
    let Some(text) = text.filter(|_| policy.scans()) else {
        return Ok(None);
    };
    let verdict = state.shield.scan(&waypost_shield::ScanInput::text(text));
    if !verdict.label.is_positive() {
        return Ok(None);
    }
    if policy == ShieldPolicy::Block && verdict.label == waypost_shield::Label::Smishing {
        metrics::counter!("waypost_shield_blocked_total", "direction" => "outbound").increment(1);
        // Reason codes only: their details may quote the message.
        let reasons: Vec<&str> = verdict.reasons.iter().map(|r| r.code).collect();
        return Err(Problem::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
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
    Ok(Some(verdict.label.as_str().to_owned()))
}

async fn accept_new(
    state: &AppState,
    ctx: &Ctx,
    req: SendMessage,
    key: Option<&IdempotencyKey>,
) -> Result<Answer, ApiError> {
    let now = state.clock.now();
    let channel = state
        .lookups
        .channel(&ctx.workspace, &req.channel_id)
        .await?;
    if state.lookups.suspended(&[("channel", &channel.id)]).await? {
        return Err(crate::error::suspended());
    }
    let contact = recipient_contact(state, ctx, &req).await?;
    let who = crate::messaging::identity::contact_identity(&state.keys, &contact)
        .map_err(ApiError::Internal)?;

    if let OutboundContent::Unsupported(u) = &req.content {
        return Err(refuse(
            "unsupported-type",
            "Unsupported message type",
            format!("`type` {:?} cannot be sent", u.kind),
        ));
    }
    let recipient = recipient_of(&contact);
    policy::check_recipient(&recipient).map_err(refusal_problem)?;
    let template_fields = match &req.content {
        OutboundContent::Template(t) => Some(check_template(state, ctx, t).await?),
        _ => None,
    };
    let kind = match &template_fields {
        Some((_, _, category)) => SendKind::Template(*category),
        None => SendKind::Session,
    };
    policy::check_send(&recipient, kind, now).map_err(refusal_problem)?;

    let mut content = req.content;
    if let Some(media_id) = &req.media_id {
        super::media::use_upload(state, ctx, &channel.id, media_id, &mut content).await?;
    }
    let id = MessageId::new().to_string();
    let context = reply_context(state, ctx, req.context.as_ref()).await?;
    // A phone when known (Meta's advice), else the BSUID: `recipient` alone.
    let mut outbound = match (
        &who.phone,
        who.user_id.as_ref().or(who.parent_user_id.as_ref()),
    ) {
        (Some(phone), _) => OutboundMessage::new(phone.wa_id(), content),
        (None, Some(id)) => {
            if matches!(kind, SendKind::Template(Category::Authentication)) {
                return Err(refuse(
                    "phone-required",
                    "Phone number required",
                    "authentication templates cannot be sent to a business-scoped user id; this contact has no known phone number",
                ));
            }
            OutboundMessage::to_user_id(id.as_str(), content)
        }
        (None, None) => {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "contact {} has no identifier",
                contact.id
            )));
        }
    };
    outbound.context = context;
    outbound.biz_opaque_callback_data = Some(id.clone());
    check_limits(&outbound).map_err(|v| refuse("payload-limit", "Payload limit", v.to_string()))?;

    let settings = state.lookups.messaging_settings(&ctx.workspace).await?;
    let shield_label = scan_outbound(state, settings.shield_policy, text_of(&outbound.content))?;

    let ring = state.keys.current();
    let payload_json = serde_json::to_vec(&outbound).expect("messages serialise");
    let (content, content_expires_at) = match settings.content_retention.days() {
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
        workspace_id: ctx.workspace.clone(),
        channel_id: channel.id.clone(),
        contact_id: contact.id.clone(),
        direction: "outbound".into(),
        message_type: type_name.clone(),
        template_name: template_name.clone(),
        template_language,
        category: category.clone(),
        status: MessageStatus::Queued.as_str().into(),
        provider_message_id: None,
        error_code: None,
        error_title: None,
        content,
        content_expires_at,
        shield_label: shield_label.clone(),
        provider_acceptance: None,
        created_at: now,
        updated_at: now,
        // Per-country prices; sent by BSUID alone, the country is unknown.
        country: who.phone.as_ref().and_then(|p| p.country()),
    };
    let outbox = OutboxRow {
        message_id: id.clone(),
        workspace_id: ctx.workspace.clone(),
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
        status: MessageStatus::Queued.as_str().into(),
    };
    let answer_json = serde_json::to_vec(&answer).expect("answers serialise");
    let idempotency = key.map(|k| k.record(&ring, 202, &answer_json, now));
    let metadata = serde_json::json!({
        "message_id": id,
        "channel_id": channel.id,
        "contact_id": contact.id,
        "direction": "outbound",
        "type": type_name,
        "template": template_name,
        "category": category,
        "status": MessageStatus::Queued.as_str(),
    });
    let mut events = vec![crate::events::seal(
        &ring,
        ctx.workspace_id,
        EventType::MessageQueued,
        Some(id.clone()),
        &metadata,
        now,
    )];
    if let Some(label) = &shield_label {
        events.push(crate::events::seal(
            &ring,
            ctx.workspace_id,
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
    let audit = ctx.origin.stamp(
        NewAuditEvent::new(
            Some(ctx.workspace_id),
            ctx.actor.clone(),
            "message.accepted",
        )
        .target("message", id.clone())
        .details(serde_json::json!({
            "channel_id": channel.id,
            "contact_id": contact.id,
            "type": metadata["type"],
        })),
    );
    // The plan's monthly quota for the category sent in, from memory.
    let usage_metric = waypost_core::usage::accepted_metric(category.as_deref());
    state.quotas.check(&ctx.workspace, &usage_metric, 1, now)?;
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
    count_send(state, ctx, &channel.id, shield_label.is_some(), now);
    match outcome {
        AcceptOutcome::Accepted => {
            super::plans::record_use(state, &ctx.workspace, &usage_metric, 1).await;
            Ok(Answer::Accepted(answer))
        }
        // A concurrent request with the same key committed first: answer as it did.
        AcceptOutcome::DuplicateKey => {
            let key = key.ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("duplicate key without an idempotency key"))
            })?;
            let stored = super::idempotency::replay(state, &ctx.workspace, key)
                .await?
                .ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("idempotency record vanished"))
                })?;
            Ok(Answer::Replayed(stored))
        }
    }
}

/// Counts an accepted send (and a shield flag) for the detectors, in memory.
fn count_send(
    state: &AppState,
    ctx: &Ctx,
    channel_id: &str,
    flagged: bool,
    now: chrono::DateTime<chrono::Utc>,
) {
    use waypost_core::trust::{ScopeKind, signal};
    if !state.signals.enabled() {
        return;
    }
    let mut scopes = vec![
        (ScopeKind::Workspace, ctx.workspace.as_str()),
        (ScopeKind::Channel, channel_id),
    ];
    match &ctx.actor {
        waypost_core::audit::Actor::ApiKey(id) => scopes.push((ScopeKind::ApiKey, id)),
        waypost_core::audit::Actor::User(id) => scopes.push((ScopeKind::User, id)),
        _ => {}
    }
    state
        .signals
        .add(now, Some(&ctx.workspace), &scopes, signal::SEND, 1);
    if flagged {
        state.signals.add(
            now,
            Some(&ctx.workspace),
            &scopes[..2],
            signal::SHIELD_FLAGGED,
            1,
        );
    }
}
