//! The control API under `/_sandbox/`, guarded by its own bearer token:
//! inject inbound messages (which open the 24 h window), set user
//! behaviour, set faults, set a template's status, read the log, reset.

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

use crate::config::{FaultConfig, NumberConfig, UserConfig};
use crate::error::GraphError;
use crate::graph::wa_id;
use crate::state::Inner;
use crate::{AppState, bearer, templates, webhooks};

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

/// Delivers an inbound message from `from` to `number` as a webhook and
/// opens the service window. Returns the message's wamid.
pub fn inject(
    state: &AppState,
    number: &NumberConfig,
    from: &str,
    name: Option<String>,
    mut message: Value,
) -> Result<String, GraphError> {
    let from = wa_id(from);
    if from.is_empty() {
        return Err(GraphError::param("from", "must contain digits"));
    }
    let Some(obj) = message.as_object_mut() else {
        return Err(GraphError::param("message", "must be an object"));
    };
    if !obj.get("type").is_some_and(Value::is_string) {
        return Err(GraphError::param("message.type", "is required"));
    }
    let mut inner = state.lock();
    let id = inner.wamid(&from);
    obj.insert("from".into(), json!(from));
    obj.insert("id".into(), json!(id));
    obj.insert("timestamp".into(), json!(webhooks::now_secs().to_string()));
    let parsed: InboundMessage = serde_json::from_value(message)
        .map_err(|e| GraphError::param("message", &e.to_string()))?;
    let user = inner.user(&from);
    user.last_inbound.insert(number.id.clone(), Instant::now());
    let name = name
        .or_else(|| user.config.name.clone())
        .unwrap_or_else(|| "Sandbox User".into());
    if inner.inbound_ids.len() >= state.config.limits.max_log {
        // Bounded: forget old ids rather than grow without limit.
        inner.inbound_ids.clear();
    }
    inner.inbound_ids.insert((number.id.clone(), id.clone()));
    inner.counters.inbound_injected += 1;
    let value = MessagesValue {
        messaging_product: "whatsapp".into(),
        metadata: webhooks::metadata(number),
        contacts: vec![WebhookContact {
            profile: Some(Profile { name }),
            wa_id: Some(from.clone()),
            user_id: None,
            parent_user_id: None,
        }],
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
    let number = match &body.phone_number_id {
        Some(id) => state.config.numbers.iter().find(|n| &n.id == id),
        None => state.config.numbers.first(),
    }
    .cloned()
    .ok_or_else(|| GraphError::param("phone_number_id", "unknown number"))?;
    let id = inject(&state, &number, &body.from, body.name, body.message)?;
    Ok(Json(json!({ "id": id })))
}

pub async fn set_user(
    _: ControlAuth,
    State(state): State<AppState>,
    Path(user): Path<String>,
    Json(config): Json<UserConfig>,
) -> Json<Value> {
    state.lock().user(&wa_id(&user)).config = config;
    Json(json!({ "success": true }))
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
