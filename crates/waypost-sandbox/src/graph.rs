//! `POST /{phone-number-id}/messages` (send and mark-as-read) and
//! `GET /{id}` (phone number info, or media info). A send passes, in
//! order: auth, body validation, injected faults, throughput, recipient
//! checks, template checks, the 24 h window, the messaging tier and the
//! pair rate; only then is it recorded and its status webhooks scheduled.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use waypost_cloudapi::send::{SendAcceptance, SendContact, SendResponse, SentMessage};
use waypost_cloudapi::{OutboundContent, OutboundMessage, check_limits};

use crate::config::{ApiShape, NumberConfig};
use crate::error::GraphError;
use crate::rules::{self, Addressing, admit};
use crate::state::{Inner, SendRecord};
use crate::users::is_user_id;
use crate::{AppState, authorize_number, bearer, statuses, webhooks};

const KNOWN_TYPES: &[&str] = &[
    "text",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "template",
    "reaction",
];

/// What the fault dice decided for one request.
#[derive(Debug, Default, Clone, Copy)]
struct Faults {
    server_error: bool,
    timeout: bool,
    latency: Option<u64>,
    too_many: bool,
    response_lost: bool,
}

/// Rolls every fault, always in the same order and number, so outcomes
/// depend only on the seed and the request sequence.
fn roll_faults(inner: &mut Inner) -> Faults {
    let f = inner.faults.clone();
    let server_error = inner.roll(f.error_5xx);
    let timeout = inner.roll(f.timeout);
    let latency = inner.roll(f.latency);
    let burst = inner.roll(f.burst_429);
    let lost = inner.roll(f.response_lost);
    let latency_ms = if latency && f.latency_ms > 0 {
        use rand::Rng;
        Some(inner.rng.random_range(0..=f.latency_ms))
    } else {
        None
    };
    let too_many = if inner.burst_left > 0 {
        inner.burst_left -= 1;
        true
    } else if burst {
        inner.burst_left = f.burst_len.saturating_sub(1);
        true
    } else {
        false
    };
    Faults {
        server_error,
        timeout,
        latency: latency_ms,
        too_many,
        response_lost: lost,
    }
}

pub async fn messages(
    State(state): State<AppState>,
    Path(number_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let number = {
        let inner = state.lock();
        match authorize_number(&inner, bearer(&headers), &number_id) {
            Ok(n) => n,
            Err(e) => return e.into_response(),
        }
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return GraphError::param("body", &format!("not valid JSON: {e}")).into_response();
        }
    };
    if value.get("status").is_some() {
        return mark_read(&state, &number_id, &value).into_response();
    }
    let message = match parse_message(&value) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    send(state, number, message).await
}

/// Validation answered like Meta: 100 naming the field for shape errors,
/// 131051 for an unknown type, 131009 for a broken limit.
fn parse_message(value: &Value) -> Result<OutboundMessage, GraphError> {
    match value.get("messaging_product").and_then(Value::as_str) {
        Some("whatsapp") => {}
        _ => {
            return Err(GraphError::param(
                "messaging_product",
                "must be \"whatsapp\"",
            ));
        }
    }
    let addressed = |k: &str| value.get(k).is_some_and(Value::is_string);
    if !addressed("to") && !addressed("recipient") {
        return Err(GraphError::param(
            "to",
            "is required (or `recipient` with a business-scoped user id)",
        ));
    }
    let kind = value.get("type").and_then(Value::as_str).unwrap_or("text");
    if !KNOWN_TYPES.contains(&kind) {
        return Err(GraphError::new(
            400,
            131051,
            "Unsupported message type",
            format!("Message type {kind} is not supported."),
        ));
    }
    if value.get(kind).is_none() {
        return Err(GraphError::param(kind, "is required for this type"));
    }
    let message: OutboundMessage = serde_json::from_value(value.clone())
        .map_err(|e| GraphError::param(kind, &e.to_string()))?;
    check_limits(&message)
        .map_err(|v| GraphError::new(400, 131009, "Parameter value is not valid", v.to_string()))?;
    Ok(message)
}

fn mark_read(state: &AppState, number_id: &str, value: &Value) -> Result<Json<Value>, GraphError> {
    if value.get("status").and_then(Value::as_str) != Some("read") {
        return Err(GraphError::param("status", "must be \"read\""));
    }
    let id = value
        .get("message_id")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::param("message_id", "is required"))?;
    let mut inner = state.lock();
    if !inner
        .inbound_ids
        .contains(&(number_id.to_owned(), id.to_owned()))
    {
        return Err(GraphError::param(
            "message_id",
            "is not an inbound message of this number",
        ));
    }
    let typing = value
        .pointer("/typing_indicator/type")
        .and_then(Value::as_str)
        == Some("text");
    inner
        .reads
        .push((number_id.to_owned(), id.to_owned(), typing));
    Ok(Json(json!({"success": true})))
}

/// The normalised wa_id: digits only.
pub fn wa_id(to: &str) -> String {
    to.chars().filter(char::is_ascii_digit).collect()
}

/// The recipient's phone, however the send names them: `to` wins over
/// `recipient`; an unknown BSUID is refused.
fn recipient_phone(inner: &mut Inner, message: &OutboundMessage) -> Result<String, GraphError> {
    match (&message.to, &message.recipient) {
        (Some(to), _) => {
            let phone = wa_id(to);
            if phone.is_empty() {
                return Err(GraphError::param("to", "must contain digits"));
            }
            inner.user(&phone);
            Ok(phone)
        }
        (None, Some(r)) if is_user_id(r) => inner.resolve(r).ok_or_else(|| {
            GraphError::param(
                "recipient",
                "is not a business-scoped user id of this business",
            )
        }),
        (None, _) => Err(GraphError::param(
            "recipient",
            "must be a business-scoped user id such as US.13491208655302741918",
        )),
    }
}

async fn send(state: AppState, number: NumberConfig, message: OutboundMessage) -> Response {
    let now = Instant::now();
    let limits = &state.config.limits;
    let kind = message.content.kind().to_owned();
    let by_user_id = message.to.is_none();
    let mut record = SendRecord {
        seq: 0,
        phone_number_id: number.id.clone(),
        to: String::new(),
        recipient: message.recipient.clone().filter(|_| by_user_id),
        kind: kind.clone(),
        outcome: String::new(),
        code: None,
        wamid: None,
        biz_opaque_callback_data: message.biz_opaque_callback_data.clone(),
        media_id: rules::media_id(&message).map(str::to_owned),
        fails_with: None,
        received_at_ms: webhooks::now_millis(),
    };
    let addressing = Addressing {
        by_user_id,
        sync_errors: state.config.api.sync_errors,
    };
    let (faults, decision) = {
        let mut inner = state.lock();
        inner.counters.requests += 1;
        let faults = roll_faults(&mut inner);
        if faults.latency.is_some() {
            inner.counters.fault_latency += 1;
        }
        let decision = if faults.timeout {
            inner.counters.fault_timeout += 1;
            Err(None)
        } else if faults.server_error {
            inner.counters.fault_5xx += 1;
            Err(Some(GraphError::server()))
        } else if faults.too_many {
            inner.counters.fault_429 += 1;
            Err(Some(GraphError::throughput(429)))
        } else {
            recipient_phone(&mut inner, &message)
                .and_then(|to| {
                    record.to = to.clone();
                    admit(&mut inner, &number, &message, &to, addressing, now, limits)
                })
                .map_err(Some)
        };
        let to = record.to.clone();
        match &decision {
            Ok(admission) => {
                let wamid = inner.wamid(&to);
                inner
                    .rates
                    .entry(number.id.clone())
                    .or_default()
                    .record(now);
                inner.counters.accepted += 1;
                if faults.response_lost {
                    inner.counters.fault_response_lost += 1;
                }
                record.outcome = if faults.response_lost {
                    "response_lost"
                } else {
                    "accepted"
                }
                .into();
                record.wamid = Some(wamid.clone());
                record.fails_with = admission.fails_with.as_ref().map(GraphError::code);
                if !by_user_id {
                    // Sending to the phone lets webhooks show it for 30 days.
                    let user = inner.user(&to);
                    user.sent_to_phone.insert(number.id.clone(), now);
                }
                inner.record(record.clone(), limits.max_log);
                statuses::schedule(&state, &mut inner, &number, &record, &message, admission);
            }
            Err(e) => {
                record.outcome = match e {
                    None => "fault_timeout".into(),
                    Some(e) if faults.server_error => {
                        record.code = Some(e.code());
                        "fault_5xx".into()
                    }
                    Some(e) if faults.too_many => {
                        record.code = Some(e.code());
                        "fault_429".into()
                    }
                    Some(e) => {
                        inner.counters.rejected += 1;
                        record.code = Some(e.code());
                        "rejected".into()
                    }
                };
                inner.record(record.clone(), limits.max_log);
            }
        }
        (faults, decision)
    };
    if let Some(ms) = faults.latency {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    match decision {
        Err(None) => {
            // Accept, then never answer: the client's timeout must fire.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            GraphError::server().into_response()
        }
        Err(Some(e)) => e.into_response(),
        Ok(_) if faults.response_lost => lost_response(),
        Ok(_) => {
            let current = state.config.api.shape == ApiShape::Current;
            let user_id = by_user_id.then(|| message.recipient.clone()).flatten();
            Json(SendResponse {
                messaging_product: "whatsapp".into(),
                contacts: vec![SendContact {
                    input: message.addressee().unwrap_or_default().to_owned(),
                    wa_id: (!by_user_id).then(|| record.to.clone()),
                    user_id,
                }],
                messages: vec![SentMessage {
                    id: record.wamid.unwrap_or_default(),
                    // Template sends report whether they were accepted or held.
                    message_status: (current
                        && matches!(message.content, OutboundContent::Template(_)))
                    .then_some(SendAcceptance::Accepted),
                }],
            })
            .into_response()
        }
    }
}

/// A 200 whose body breaks off: hyper aborts the connection, so the
/// client sees a transport error although the message was recorded.
fn lost_response() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other("sandbox: response lost"))
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| GraphError::server().into_response())
}
