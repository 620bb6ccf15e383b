//! Customer webhook endpoints: create (the secret is returned once), change,
//! delete, rotate the secret (the old one keeps signing for 24 hours), send a
//! test event, read the attempt log, replay from a point in time, resend one
//! event. Every change is audited; the target URL passes the address policy.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use waypost_core::events::EventType;
use waypost_core::{NewAuditEvent, WebhookEndpointId};
use waypost_crypto::webhook::generate_webhook_secret;
use waypost_store::webhooks::{WebhookAttemptRecord, WebhookEndpointPatch, WebhookEndpointRecord};

use super::Ctx;
use crate::error::{ApiError, Problem, unprocessable};
use crate::state::AppState;
use crate::webhooks::{self, PREVIOUS_SECRET, SECRET, ssrf};

/// How long a rotated-out secret keeps signing.
const ROTATION_OVERLAP_HOURS: i64 = 24;
/// Events one replay queues at most.
pub const REPLAY_LIMIT: u32 = 10_000;

/// A new endpoint as asked for; checked by [`create`].
pub struct NewEndpoint<'a> {
    pub url: &'a str,
    pub description: &'a str,
    /// Empty: every type.
    pub event_types: &'a [String],
    pub enabled: bool,
}

/// What to change; `None` keeps the current value.
#[derive(Default)]
pub struct EndpointChange<'a> {
    pub url: Option<&'a str>,
    pub description: Option<&'a str>,
    pub event_types: Option<&'a [String]>,
    /// `true` re-enables a disabled endpoint and clears its failure record.
    pub enabled: Option<bool>,
}

/// What a replay did.
pub enum Replay {
    Queued(u64),
    /// The endpoint was replayed less than the operator's interval ago.
    TooSoon {
        retry_after_secs: u64,
    },
}

/// Checks the target URL against the operator's address policy; the normalised URL.
async fn checked_url(state: &AppState, raw: &str) -> Result<String, ApiError> {
    ssrf::check_target(raw, webhooks::policy(&state.config), &ssrf::system_lookup())
        .await
        .map(|u| u.to_string())
        .map_err(|r| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "webhook-target-refused",
                "Webhook target refused",
                format!("`url`: {r}"),
            )
            .into()
        })
}

/// Space-separated, deduplicated event type names.
fn event_types(types: &[String]) -> Result<String, ApiError> {
    let mut parsed: Vec<&'static str> = Vec::new();
    for t in types {
        let ty: EventType = t
            .parse()
            .map_err(|e| unprocessable(format!("`event_types`: {e}")))?;
        if !parsed.contains(&ty.as_str()) {
            parsed.push(ty.as_str());
        }
    }
    Ok(parsed.join(" "))
}

fn description(d: &str) -> Result<String, ApiError> {
    let d = d.trim();
    if d.chars().count() > 200 {
        return Err(unprocessable("`description` is at most 200 characters"));
    }
    Ok(d.to_owned())
}

fn audit(ctx: &Ctx, action: &str, id: &str) -> NewAuditEvent {
    NewAuditEvent::new(Some(ctx.workspace_id), ctx.actor.clone(), action)
        .target("webhook_endpoint", id.to_owned())
}

pub async fn create(
    state: &AppState,
    ctx: &Ctx,
    new: NewEndpoint<'_>,
) -> Result<(WebhookEndpointRecord, SecretString), ApiError> {
    let url = checked_url(state, new.url).await?;
    let id = WebhookEndpointId::new().to_string();
    let secret = generate_webhook_secret();
    let now = state.clock.now();
    let sealed = webhooks::seal_secret(&state.keys.current(), &id, SECRET, &secret);
    let record = WebhookEndpointRecord {
        description: description(new.description)?,
        event_types: event_types(new.event_types)?,
        enabled: new.enabled,
        ..WebhookEndpointRecord::new(id.clone(), ctx.workspace.clone(), url, sealed, now)
    };
    let event = audit(ctx, "webhook_endpoint.created", &id)
        .details(serde_json::json!({ "url": record.url, "event_types": record.event_types }));
    state
        .store
        .create_webhook_endpoint(&record, ctx.origin.stamp(event))
        .await?;
    Ok((record, secret))
}

pub async fn list(state: &AppState, ctx: &Ctx) -> Result<Vec<WebhookEndpointRecord>, ApiError> {
    Ok(state.store.list_webhook_endpoints(&ctx.workspace).await?)
}

pub async fn get(state: &AppState, ctx: &Ctx, id: &str) -> Result<WebhookEndpointRecord, ApiError> {
    Ok(state.store.get_webhook_endpoint(&ctx.workspace, id).await?)
}

pub async fn update(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    change: EndpointChange<'_>,
) -> Result<WebhookEndpointRecord, ApiError> {
    let patch = WebhookEndpointPatch {
        url: match change.url {
            Some(u) => Some(checked_url(state, u).await?),
            None => None,
        },
        description: change.description.map(description).transpose()?,
        event_types: change.event_types.map(event_types).transpose()?,
        enabled: change.enabled,
    };
    let event = audit(ctx, "webhook_endpoint.updated", id).details(serde_json::json!({
        "url": patch.url, "event_types": patch.event_types, "enabled": patch.enabled,
    }));
    let now = state.clock.now();
    Ok(state
        .store
        .update_webhook_endpoint(&ctx.workspace, id, &patch, now, ctx.origin.stamp(event))
        .await?)
}

/// Deletes the endpoint with its pending deliveries and attempt log.
pub async fn delete(state: &AppState, ctx: &Ctx, id: &str) -> Result<(), ApiError> {
    let event = audit(ctx, "webhook_endpoint.deleted", id);
    state
        .store
        .delete_webhook_endpoint(&ctx.workspace, id, ctx.origin.stamp(event))
        .await?;
    Ok(())
}

/// A new signing secret; the old one signs alongside until the returned time.
pub async fn rotate_secret(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
) -> Result<(SecretString, DateTime<Utc>), ApiError> {
    let endpoint = state.store.get_webhook_endpoint(&ctx.workspace, id).await?;
    let old: SecretString = webhooks::open_secret(
        &state.keys,
        state.store.as_ref(),
        id,
        SECRET,
        &endpoint.secret,
    )
    .await?;
    let ring = state.keys.current();
    let new = generate_webhook_secret();
    let now = state.clock.now();
    let until = now + chrono::Duration::hours(ROTATION_OVERLAP_HOURS);
    let event = audit(ctx, "webhook_endpoint.secret_rotated", id);
    state
        .store
        .rotate_webhook_secret(
            &ctx.workspace,
            id,
            &endpoint.secret,
            &webhooks::seal_secret(&ring, id, SECRET, &new),
            &webhooks::seal_secret(&ring, id, PREVIOUS_SECRET, &old),
            until,
            now,
            ctx.origin.stamp(event),
        )
        .await?;
    Ok((new, until))
}

/// Queues a `webhook.test` event for this endpoint only; its id.
pub async fn send_test(state: &AppState, ctx: &Ctx, id: &str) -> Result<String, ApiError> {
    let now = state.clock.now();
    let event = crate::events::seal(
        &state.keys.current(),
        ctx.workspace_id,
        EventType::WebhookTest,
        None,
        &serde_json::json!({ "endpoint_id": id, "message": "This is a test event from Waypost." }),
        now,
    );
    state.store.queue_webhook_test(&event, id, now).await?;
    Ok(event.id)
}

/// A page of the endpoint's delivery attempts, newest first, and the cursor
/// of the next page.
pub async fn attempts(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    before: Option<&str>,
    limit: u32,
) -> Result<(Vec<WebhookAttemptRecord>, Option<String>), ApiError> {
    state.store.get_webhook_endpoint(&ctx.workspace, id).await?;
    let limit = limit.clamp(1, 200);
    let data = state
        .store
        .list_webhook_attempts(&ctx.workspace, id, before, limit)
        .await?;
    let next = (data.len() == limit as usize)
        .then(|| data.last().map(|a| a.id.clone()))
        .flatten();
    Ok((data, next))
}

/// Delivers every event since `since` to this endpoint again, in order (at
/// most [`REPLAY_LIMIT`]; one replay per endpoint per `webhook_replay_interval_secs`).
pub async fn replay(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    since: DateTime<Utc>,
) -> Result<Replay, ApiError> {
    let now = state.clock.now();
    let interval = state.config.webhook_replay_interval_secs;
    let event =
        audit(ctx, "webhook_endpoint.replayed", id).details(serde_json::json!({ "since": since }));
    let not_after = now - chrono::Duration::seconds(interval as i64);
    let queued = state
        .store
        .replay_webhook_endpoint(
            &ctx.workspace,
            id,
            since,
            not_after,
            now,
            REPLAY_LIMIT,
            ctx.origin.stamp(event),
        )
        .await?;
    Ok(match queued {
        Some(n) => Replay::Queued(n),
        None => Replay::TooSoon {
            retry_after_secs: interval.max(1),
        },
    })
}

/// Delivers one event again to the endpoints that take its type (or to one).
pub async fn resend(
    state: &AppState,
    ctx: &Ctx,
    event_id: &str,
    endpoint_id: Option<&str>,
) -> Result<u64, ApiError> {
    if let Some(endpoint) = endpoint_id {
        state
            .store
            .get_webhook_endpoint(&ctx.workspace, endpoint)
            .await?;
    }
    Ok(state
        .store
        .resend_customer_event(&ctx.workspace, event_id, endpoint_id, state.clock.now())
        .await?)
}
