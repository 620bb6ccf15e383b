//! The control API under `/_sandbox/`, guarded by its own bearer token:
//! inject inbound messages (which open the 24 h window) and the media they
//! carry, set user behaviour, change a user's number or BSUID (system
//! messages), set faults, set a template's status, read the log, reset.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use waypost_cloudapi::InboundMessage;
use waypost_cloudapi::webhook::{MessagesValue, Profile, WebhookContact};

use crate::config::{ApiShape, FaultConfig, NumberConfig, UserConfig};
use crate::error::GraphError;
use crate::graph::wa_id;
use crate::state::{Inner, UserState};
use crate::{AppState, bearer, media, templates, webhooks};

/// Proof that the request carries the control token.
pub struct ControlAuth;

impl FromRequestParts<AppState> for ControlAuth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let ok = bearer(&parts.headers).is_some_and(|t| {
            let expected = state.config.control_token.as_bytes();
            // Not secret-grade, but avoid an early exit on the first byte.
            t.len() == expected.len()
                && t.bytes()
                    .zip(expected)
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if ok {
            Ok(Self)
        } else {
            Err(GraphError::auth().into_response())
        }
    }
}

/// Delivers an inbound message from `from` (a phone or a known BSUID) to
/// `number` as a webhook and opens the service window. Returns the
/// message's wamid.
pub fn inject(
    state: &AppState,
    number: &NumberConfig,
    from: &str,
    name: Option<String>,
    mut message: Value,
) -> Result<String, GraphError> {
    let Some(obj) = message.as_object_mut() else {
        return Err(GraphError::param("message", "must be an object"));
    };
    if !obj.get("type").is_some_and(Value::is_string) {
        return Err(GraphError::param("message.type", "is required"));
    }
    let mut inner = state.lock();
    let from = inner.resolve(from).ok_or_else(|| {
        GraphError::param(
            "from",
            "must be a phone number or a known business-scoped user id",
        )
    })?;
    let id = inner.wamid(&from);
    obj.insert("id".into(), json!(id));
    obj.insert("timestamp".into(), json!(webhooks::now_secs().to_string()));
    let now = Instant::now();
    let shape = state.config.api.shape;
    let user = inner.user(&from);
    user.last_inbound.insert(number.id.clone(), now);
    let mut contact = match shape {
        ApiShape::Legacy => {
            obj.insert("from".into(), json!(from));
            WebhookContact {
                profile: Some(Profile {
                    name: user.display_name(),
                    username: None,
                }),
                wa_id: Some(from.clone()),
                user_id: None,
                parent_user_id: None,
            }
        }
        ApiShape::Current => {
            let visible = user.phone_visible(&number.id, now);
            if visible {
                obj.insert("from".into(), json!(from));
            }
            obj.insert("from_user_id".into(), json!(user.user_id));
            if let Some(p) = &user.parent_user_id {
                obj.insert("from_parent_user_id".into(), json!(p));
            }
            user.contact(&from, visible, true)
        }
    };
    if let (Some(name), Some(profile)) = (name, contact.profile.as_mut()) {
        profile.name = name;
    }
    let parsed: InboundMessage = serde_json::from_value(message)
        .map_err(|e| GraphError::param("message", &e.to_string()))?;
    remember_inbound(&mut inner, state, number, &id);
    let value = MessagesValue {
        messaging_product: "whatsapp".into(),
        metadata: webhooks::metadata(number),
        contacts: vec![contact],
        messages: vec![parsed],
        statuses: vec![],
        errors: vec![],
    };
    let payload = webhooks::messages_payload(number, value);
    if let Some(d) = webhooks::delivery(&state.config, number, &payload) {
        state.webhooks.enqueue(&mut inner, d);
    }
    Ok(id)
}

fn remember_inbound(inner: &mut Inner, state: &AppState, number: &NumberConfig, id: &str) {
    if inner.inbound_ids.len() >= state.config.limits.max_log {
        // Bounded: forget old ids rather than grow without limit.
        inner.inbound_ids.clear();
    }
    inner.inbound_ids.insert((number.id.clone(), id.to_owned()));
    inner.counters.inbound_injected += 1;
}

#[derive(Debug, Deserialize)]
pub struct InjectBody {
    /// Defaults to the first configured number.
    pub phone_number_id: Option<String>,
    pub from: String,
    pub name: Option<String>,
    /// An inbound message object without `from`/`id`/`timestamp`, e.g.
    /// `{"type":"text","text":{"body":"hi"}}`.
    pub message: Value,
}

pub async fn inject_inbound(
    _: ControlAuth,
    State(state): State<AppState>,
    Json(body): Json<InjectBody>,
) -> Result<Json<Value>, GraphError> {
    let number = pick_number(&state, body.phone_number_id.as_deref())?;
    let id = inject(&state, &number, &body.from, body.name, body.message)?;
    Ok(Json(json!({ "id": id })))
}

#[derive(Debug, Deserialize)]
pub struct InboundMediaBody {
    /// Defaults to the first configured number.
    pub phone_number_id: Option<String>,
    pub mime_type: String,
    /// The file, base64.
    pub data: String,
}

/// Stores a file a user sends, so an injected inbound media message can name
/// its id; answers the id and its sha256 as hex (retrieval) and base64 (webhooks).
pub async fn create_inbound_media(
    _: ControlAuth,
    State(state): State<AppState>,
    Json(body): Json<InboundMediaBody>,
) -> Result<Json<Value>, GraphError> {
    use base64::Engine as _;
    let number = pick_number(&state, body.phone_number_id.as_deref())?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body.data.as_bytes())
        .map_err(|_| GraphError::param("data", "must be base64"))?;
    let size = bytes.len();
    let (id, sha256) = media::create_inbound(&state, &number.id, &body.mime_type, bytes)?;
    let raw = hex::decode(&sha256).unwrap_or_default();
    Ok(Json(json!({
        "id": id,
        "sha256": sha256,
        "sha256_base64": base64::engine::general_purpose::STANDARD.encode(raw),
        "file_size": size,
    })))
}

pub async fn set_user(
    _: ControlAuth,
    State(state): State<AppState>,
    Path(user): Path<String>,
    Json(config): Json<UserConfig>,
) -> Result<Json<Value>, GraphError> {
    let phone = wa_id(&user);
    if phone.is_empty() {
        return Err(GraphError::param("wa_id", "must contain digits"));
    }
    let mut inner = state.lock();
    inner.configure_user(&phone, config);
    let u = inner.user(&phone);
    Ok(Json(json!({
        "success": true,
        "user_id": u.user_id,
        "parent_user_id": u.parent_user_id,
    })))
}

#[derive(Debug, Deserialize)]
pub struct ChangeNumberBody {
    pub new_wa_id: String,
    pub phone_number_id: Option<String>,
}

/// The user moves to a new phone and gets a new BSUID; the number gets a
/// `user_changed_number` system message when the new phone may be shared,
/// else `user_changed_user_id`. Legacy shape: `user_changed_number` only.
pub async fn change_number(
    _: ControlAuth,
    State(state): State<AppState>,
    Path(user): Path<String>,
    Json(body): Json<ChangeNumberBody>,
) -> Result<Json<Value>, GraphError> {
    let number = pick_number(&state, body.phone_number_id.as_deref())?;
    let (old_phone, new_phone) = (wa_id(&user), wa_id(&body.new_wa_id));
    if new_phone.is_empty() {
        return Err(GraphError::param("new_wa_id", "must contain digits"));
    }
    let (old, new) = state
        .lock()
        .change_number(&old_phone, &new_phone)
        .ok_or_else(|| GraphError::param("wa_id", "unknown user, or the new number is taken"))?;
    let legacy = state.config.api.shape == ApiShape::Legacy;
    let visible = legacy || new.phone_visible(&number.id, Instant::now());
    let name = new.display_name();
    let mut system = if visible {
        json!({"type": "user_changed_number", "wa_id": new_phone,
               "body": format!("User {name} changed from {old_phone} to {new_phone}")})
    } else {
        json!({"type": "user_changed_user_id",
               "body": format!("User {name} changed from {} to {}", old.user_id, new.user_id)})
    };
    if !legacy {
        ids_of_change(&mut system, &old, &new);
    }
    let from = visible.then_some(old_phone.as_str());
    let id = inject_system(&state, &number, from, &new_phone, system)?;
    Ok(Json(
        json!({"id": id, "user_id": new.user_id, "parent_user_id": new.parent_user_id}),
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct ChangeUserIdBody {
    pub phone_number_id: Option<String>,
}

/// The user's BSUID (and parent) changes without a number change: a
/// `user_changed_user_id` system message with no phone in it.
pub async fn change_user_id(
    _: ControlAuth,
    State(state): State<AppState>,
    Path(user): Path<String>,
    Json(body): Json<ChangeUserIdBody>,
) -> Result<Json<Value>, GraphError> {
    let number = pick_number(&state, body.phone_number_id.as_deref())?;
    if state.config.api.shape == ApiShape::Legacy {
        return Err(GraphError::param(
            "api.shape",
            "legacy webhooks have no user ids",
        ));
    }
    let phone = wa_id(&user);
    let (old, new) = state
        .lock()
        .change_user_id(&phone)
        .ok_or_else(|| GraphError::param("wa_id", "unknown user"))?;
    let mut system = json!({"type": "user_changed_user_id",
        "body": format!("User {} changed from {} to {}", new.display_name(), old.user_id, new.user_id)});
    ids_of_change(&mut system, &old, &new);
    let id = inject_system(&state, &number, None, &phone, system)?;
    Ok(Json(
        json!({"id": id, "user_id": new.user_id, "parent_user_id": new.parent_user_id}),
    ))
}

fn ids_of_change(system: &mut Value, old: &UserState, new: &UserState) {
    system["user_id"] = json!(new.user_id);
    system["previous_user_id"] = json!(old.user_id);
    if let (Some(p), Some(prev)) = (&new.parent_user_id, &old.parent_user_id) {
        system["parent_user_id"] = json!(p);
        system["previous_parent_user_id"] = json!(prev);
    }
}

/// Sends one system message: no contacts array, `from` only when given.
fn inject_system(
    state: &AppState,
    number: &NumberConfig,
    from: Option<&str>,
    phone: &str,
    system: Value,
) -> Result<String, GraphError> {
    let mut inner = state.lock();
    let id = inner.wamid(phone);
    let mut message = json!({"id": id, "timestamp": webhooks::now_secs().to_string(),
        "type": "system", "system": system});
    if let Some(f) = from {
        message["from"] = json!(f);
    }
    let parsed: InboundMessage =
        serde_json::from_value(message).map_err(|e| GraphError::param("system", &e.to_string()))?;
    remember_inbound(&mut inner, state, number, &id);
    let value = MessagesValue {
        messaging_product: "whatsapp".into(),
        metadata: webhooks::metadata(number),
        contacts: vec![],
        messages: vec![parsed],
        statuses: vec![],
        errors: vec![],
    };
    let payload = webhooks::messages_payload(number, value);
    if let Some(d) = webhooks::delivery(&state.config, number, &payload) {
        state.webhooks.enqueue(&mut inner, d);
    }
    Ok(id)
}

fn pick_number(state: &AppState, id: Option<&str>) -> Result<NumberConfig, GraphError> {
    match id {
        Some(id) => state.config.numbers.iter().find(|n| n.id == id),
        None => state.config.numbers.first(),
    }
    .cloned()
    .ok_or_else(|| GraphError::param("phone_number_id", "unknown number"))
}

pub async fn set_faults(
    _: ControlAuth,
    State(state): State<AppState>,
    Json(faults): Json<FaultConfig>,
) -> Result<Json<Value>, GraphError> {
    faults
        .validate()
        .map_err(|e| GraphError::param("faults", &e.to_string()))?;
    let mut inner = state.lock();
    inner.faults = faults;
    inner.burst_left = 0;
    Ok(Json(json!({ "success": true })))
}

pub async fn get_faults(_: ControlAuth, State(state): State<AppState>) -> Json<FaultConfig> {
    Json(state.lock().faults.clone())
}

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    /// Newest sends to return (default 1000, at most 100 000).
    pub limit: Option<usize>,
}

/// Everything received: sends (newest last) with their
/// `biz_opaque_callback_data`, counts per recipient, the highest rate seen
/// per number in any one-second window, and counters.
pub async fn log(
    _: ControlAuth,
    State(state): State<AppState>,
    Query(q): Query<LogQuery>,
) -> Json<Value> {
    let inner = state.lock();
    let limit = q.limit.unwrap_or(1000).min(100_000);
    let skip = inner.log.len().saturating_sub(limit);
    let sends: Vec<_> = inner.log.iter().skip(skip).collect();
    let max_rate: BTreeMap<&str, usize> = inner
        .rates
        .iter()
        .map(|(id, w)| (id.as_str(), w.max_per_second))
        .collect();
    Json(json!({
        "total_sends": inner.seq,
        "sends": sends,
        "per_recipient": inner.per_recipient,
        "max_rate_per_second": max_rate,
        "counters": inner.counters,
        "reads": inner.reads.iter().map(|(number, wamid, typing)| json!({
            "phone_number_id": number, "message_id": wamid, "typing_indicator": typing,
        })).collect::<Vec<_>>(),
    }))
}

pub async fn reset(_: ControlAuth, State(state): State<AppState>) -> Json<Value> {
    *state.lock() = Inner::new(&state.config);
    Json(json!({ "success": true }))
}

#[derive(Debug, Deserialize)]
pub struct TemplateStatusBody {
    pub status: String,
    pub reason: Option<String>,
}

/// Moves a template to any status (e.g. PAUSED) and sends the status webhook.
pub async fn set_template_status(
    _: ControlAuth,
    State(state): State<AppState>,
    Path(id): Path<u64>,
    Json(body): Json<TemplateStatusBody>,
) -> Result<Json<Value>, GraphError> {
    let status = body.status.to_ascii_uppercase();
    templates::change_status(
        &state,
        id,
        &status,
        body.reason.as_deref().unwrap_or("NONE"),
    )
    .ok_or_else(|| GraphError::unknown_object(&id.to_string()))?;
    Ok(Json(json!({ "success": true })))
}

#[derive(Debug, Deserialize)]
pub struct QualityBody {
    /// `GREEN`, `YELLOW` or `RED`.
    pub rating: String,
}

/// Sets a number's quality rating (what `GET /{phone-number-id}` answers) and
/// sends the `phone_number_quality_update` webhook Meta sends when it
/// changes: `FLAGGED` when it drops to red, `UNFLAGGED` when it recovers.
pub async fn set_quality(
    _: ControlAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<QualityBody>,
) -> Result<Json<Value>, GraphError> {
    use waypost_cloudapi::manage::QualityRating;
    let rating = match body.rating.to_ascii_uppercase().as_str() {
        "GREEN" => QualityRating::Green,
        "YELLOW" => QualityRating::Yellow,
        "RED" => QualityRating::Red,
        _ => return Err(GraphError::param("rating", "must be GREEN, YELLOW or RED")),
    };
    let mut inner = state.lock();
    let number = inner
        .number(&id)
        .cloned()
        .ok_or_else(|| GraphError::unknown_object(&id))?;
    let was_red = inner.quality.get(&id) == Some(&QualityRating::Red);
    let now_red = rating == QualityRating::Red;
    inner.quality.insert(id, rating);
    if was_red != now_red {
        let event = if now_red { "FLAGGED" } else { "UNFLAGGED" };
        let payload = webhooks::quality_update(&number, event);
        if let Some(d) = webhooks::delivery(&state.config, &number, &payload) {
            state.webhooks.enqueue(&mut inner, d);
        }
    }
    Ok(Json(json!({ "success": true })))
}
