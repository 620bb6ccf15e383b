//! Provider webhooks at `/webhooks/whatsapp/{channel_id}`: the verify
//! handshake (`GET`) and deliveries (`POST`). A delivery is trusted only when
//! `X-Hub-Signature-256` matches the raw body under the channel's app secret;
//! otherwise, and for a channel that does not exist, it is answered alike
//! (401 `invalid-signature`) and nothing is stored. A trusted delivery is
//! parsed and written in one transaction (inbound messages deduplicated by
//! provider id, statuses applied monotonically, opt-out/opt-in keywords
//! applied to consent), then answered 200. Meta calls these routes, so they
//! sit outside the per-address rate limit and the OpenAPI document.

//! What a trusted delivery means is recorded by [`crate::ops::inbound::record`].

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::ExposeSecret;
use waypost_cloudapi::{SIGNATURE_HEADER, WebhookPayload};
use waypost_store::StoreError;

use crate::error::Problem;
use crate::messaging::{ChannelSecret, open_secret};
use crate::state::AppState;

pub fn routes(body_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/webhooks/whatsapp/{channel_id}", get(verify).post(receive))
        .layer(DefaultBodyLimit::max(body_limit))
}

/// Longest `hub.challenge` echoed.
const MAX_CHALLENGE: usize = 256;

/// `GET`: echo `hub.challenge` when `hub.verify_token` is the channel's; 403 otherwise
/// (also for unknown channels, so ids cannot be probed).
pub async fn verify(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let forbidden = || {
        Problem::new(
            StatusCode::FORBIDDEN,
            "verification-failed",
            "Verification failed",
            "`hub.mode`, `hub.verify_token` or `hub.challenge` is missing or does not match this channel.",
        )
        .into_response()
    };
    let (Some(mode), Some(token), Some(challenge)) = (
        q.get("hub.mode"),
        q.get("hub.verify_token"),
        q.get("hub.challenge"),
    ) else {
        return forbidden();
    };
    if mode != "subscribe" || challenge.is_empty() || challenge.len() > MAX_CHALLENGE {
        return forbidden();
    }
    let Ok(channel) = state.store.channel_by_id(&channel_id).await else {
        return forbidden();
    };
    let Ok(expected) = open_secret(&state.keys, &channel, ChannelSecret::VerifyToken) else {
        return forbidden();
    };
    if !constant_time_eq(expected.expose_secret().as_bytes(), token.as_bytes()) {
        metrics::counter!("waypost_inbound_verify_failures_total").increment(1);
        return forbidden();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        challenge.clone(),
    )
        .into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST`: a signed delivery of messages, statuses or other account changes.
pub async fn receive(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let channel = match state.lookups.channel_by_id(&channel_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound(_)) => {
            // Answered like a known channel with a bad signature (the same work,
            // the same document), so ids cannot be probed.
            let _ = waypost_cloudapi::verify_signature(UNKNOWN_CHANNEL_SECRET, &body, signature);
            metrics::counter!("waypost_inbound_signature_failures_total").increment(1);
            return bad_signature();
        }
        Err(e) => return internal(&e.into()),
    };
    let secret = match open_secret(&state.keys, &channel, ChannelSecret::AppSecret) {
        Ok(s) => s,
        Err(e) => return internal(&e),
    };
    if !waypost_cloudapi::verify_signature(secret.expose_secret().as_bytes(), &body, signature) {
        metrics::counter!("waypost_inbound_signature_failures_total").increment(1);
        tracing::warn!(channel_id = %channel.id, "inbound webhook with a bad signature refused");
        return bad_signature();
    }
    let payload: WebhookPayload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(_) => return Problem::for_status(StatusCode::BAD_REQUEST).into_response(),
    };
    if let Err(e) = crate::ops::inbound::record(&state, &channel, &payload).await {
        // Not 200: the provider retries, and deduplication makes the retry safe.
        return internal(&e);
    }
    metrics::counter!("waypost_inbound_webhooks_total").increment(1);
    StatusCode::OK.into_response()
}

/// The key unknown channels' deliveries are checked against (never matches a
/// real signature that matters: nothing is stored for an unknown channel).
const UNKNOWN_CHANNEL_SECRET: &[u8] = b"waypost-unknown-channel";

/// The answer to a delivery whose signature does not verify, or whose channel does not exist.
fn bad_signature() -> Response {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "invalid-signature",
        "Invalid signature",
        "`X-Hub-Signature-256` is missing or does not match the body under this channel's app secret.",
    )
    .into_response()
}

fn internal(e: &anyhow::Error) -> Response {
    tracing::error!(error = %e, "inbound webhook failed");
    Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
}
