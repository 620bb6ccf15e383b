//! Customer webhook endpoints (scope `webhooks:manage`): create (the secret is
//! shown once), list, read, update, delete, rotate the secret (the old one
//! keeps signing for 24 hours), send a test event, read the attempt log,
//! replay an endpoint from a point in time, and resend one event.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use waypost_store::webhooks::{WebhookAttemptRecord, WebhookEndpointRecord};

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::ops::Ctx;
use crate::ops::paging::page_limit;
use crate::ops::webhook_endpoints::{self as op, EndpointChange, NewEndpoint, Replay};
use crate::state::{AppState, RequestOrigin};

#[derive(Deserialize, ToSchema)]
pub struct CreateEndpoint {
    /// `https://…` (plain `http` only when the operator allows it).
    pub url: String,
    pub description: Option<String>,
    /// Event types to deliver, e.g. `["message.delivered"]`; absent or empty: all.
    pub event_types: Option<Vec<String>>,
    /// Default `true`.
    pub enabled: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateEndpoint {
    pub url: Option<String>,
    pub description: Option<String>,
    /// Empty: all types.
    pub event_types: Option<Vec<String>>,
    /// `true` re-enables a disabled endpoint and clears its failure record.
    pub enabled: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Empty: every type.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why Waypost disabled the endpoint, when it did.
    pub disabled_reason: Option<String>,
    /// Start of the current run of failed attempts.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the previous secret also signs deliveries.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<WebhookEndpointRecord> for EndpointView {
    fn from(e: WebhookEndpointRecord) -> Self {
        Self {
            id: e.id,
            url: e.url,
            description: e.description,
            event_types: e
                .event_types
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            failing_since: e.first_failure_at,
            previous_secret_expires_at: e.previous_secret_expires_at,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// The signing secret (`whsec_…`). Shown only in this answer.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct RotatedSecret {
    /// The new signing secret. Shown only in this answer.
    pub secret: String,
    /// Until then the previous secret signs too (both in `webhook-signature`).
    pub previous_secret_expires_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct QueuedEvent {
    pub event_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct Queued {
    /// Deliveries queued.
    pub queued: u64,
}

#[derive(Deserialize, ToSchema)]
pub struct ReplayRequest {
    /// Every event created at or after this time is delivered again, in order.
    pub since: DateTime<Utc>,
}

#[derive(Deserialize, IntoParams)]
pub struct AttemptQuery {
    /// The `next_cursor` of the previous page.
    pub before: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Deserialize, IntoParams)]
pub struct ResendQuery {
    /// Only this endpoint; default: every enabled endpoint that takes the event's type.
    pub endpoint_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    pub id: String,
    pub event_id: String,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    /// The first bytes of the response body.
    pub response_excerpt: Option<String>,
    /// `http_status`, `timeout`, `connect`, `tls`, `dns`, `ssrf_blocked`, `internal` or `other`.
    pub error_class: Option<String>,
    pub succeeded: bool,
}

impl From<WebhookAttemptRecord> for AttemptView {
    fn from(a: WebhookAttemptRecord) -> Self {
        Self {
            id: a.id,
            event_id: a.event_id,
            attempted_at: a.attempted_at,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            response_excerpt: a.response_excerpt,
            error_class: a.error_class,
            succeeded: a.succeeded,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AttemptPage {
    pub data: Vec<AttemptView>,
    pub next_cursor: Option<String>,
}

/// Creates a webhook endpoint. Its signing secret is shown once.
#[utoipa::path(operation_id = "create_webhook_endpoint", post, path = "/v1/webhook-endpoints", tag = "webhooks",
    request_body = CreateEndpoint,
    responses((status = 201, body = CreatedEndpoint), (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["webhooks:manage"]), ("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WebhooksManage>,
    ApiJson(req): ApiJson<CreateEndpoint>,
) -> Result<(StatusCode, Json<CreatedEndpoint>), ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let types = req.event_types.unwrap_or_default();
    let new = NewEndpoint {
        url: &req.url,
        description: req.description.as_deref().unwrap_or(""),
        event_types: &types,
        enabled: req.enabled.unwrap_or(true),
    };
    let (record, secret) = op::create(&state, &ctx, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpoint {
            endpoint: record.into(),
            secret: secret.expose_secret().to_owned(),
        }),
    ))
}

/// The workspace's webhook endpoints (never their secrets).
#[utoipa::path(operation_id = "list_webhook_endpoints", get, path = "/v1/webhook-endpoints", tag = "webhooks",
    responses((status = 200, body = Vec<EndpointView>)),
    security(("api_key" = ["webhooks:manage"]), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WebhooksManage>,
) -> Result<Json<Vec<EndpointView>>, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let all = op::list(&state, &ctx).await?;
    Ok(Json(all.into_iter().map(EndpointView::from).collect()))
}

/// One webhook endpoint.
#[utoipa::path(operation_id = "get_webhook_endpoint", get, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 200, body = EndpointView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["webhooks:manage"]), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WebhooksManage>,
    Path(id): Path<String>,
) -> Result<Json<EndpointView>, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    Ok(Json(op::get(&state, &ctx, &id).await?.into()))
}

/// Changes a webhook endpoint; `enabled: true` re-enables a disabled one.
#[utoipa::path(operation_id = "update_webhook_endpoint", patch, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path)), request_body = UpdateEndpoint,
    responses((status = 200, body = EndpointView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["webhooks:manage"]), ("session" = [])))]
pub async fn update(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WebhooksManage>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateEndpoint>,
) -> Result<Json<EndpointView>, ApiError> {
    let change = EndpointChange {
        url: req.url.as_deref(),
        description: req.description.as_deref(),
        event_types: req.event_types.as_deref(),
        enabled: req.enabled,
    };
    let updated = op::update(&state, &Ctx::of(&auth, origin), &id, change).await?;
    Ok(Json(updated.into()))
}

/// Deletes a webhook endpoint with its pending deliveries and attempt log.
#[utoipa::path(operation_id = "delete_webhook_endpoint", delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["webhooks:manage"]), ("session" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WebhooksManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    op::delete(&state, &Ctx::of(&auth, origin), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the signing secret; the old one keeps signing alongside for 24 hours.
#[utoipa::path(operation_id = "rotate_webhook_secret", post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 200, body = RotatedSecret), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["webhooks:manage"]), ("session" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WebhooksManage>,
    Path(id): Path<String>,
) -> Result<Json<RotatedSecret>, ApiError> {
    let (new, until) = op::rotate_secret(&state, &Ctx::of(&auth, origin), &id).await?;
    Ok(Json(RotatedSecret {
        secret: new.expose_secret().to_owned(),
        previous_secret_expires_at: until,
    }))
}

/// Sends a `webhook.test` event to this endpoint only.
#[utoipa::path(operation_id = "test_webhook_endpoint", post, path = "/v1/webhook-endpoints/{id}/test", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 202, body = QueuedEvent), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["webhooks:manage"]), ("session" = [])))]
pub async fn send_test(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WebhooksManage>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<QueuedEvent>), ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let event_id = op::send_test(&state, &ctx, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(QueuedEvent { event_id })))
}

/// The endpoint's delivery attempts, newest first.
#[utoipa::path(operation_id = "list_webhook_attempts", get, path = "/v1/webhook-endpoints/{id}/attempts", tag = "webhooks",
    params(("id" = String, Path), AttemptQuery),
    responses((status = 200, body = AttemptPage), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["webhooks:manage"]), ("session" = [])))]
pub async fn attempts(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WebhooksManage>,
    Path(id): Path<String>,
    Query(q): Query<AttemptQuery>,
) -> Result<Json<AttemptPage>, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let limit = page_limit(q.limit, 50, 200)?;
    let (data, next_cursor) = op::attempts(&state, &ctx, &id, q.before.as_deref(), limit).await?;
    Ok(Json(AttemptPage {
        data: data.into_iter().map(AttemptView::from).collect(),
        next_cursor,
    }))
}

/// Delivers every event since a time to this endpoint again, in order (at most
/// 10,000 per replay; one replay per endpoint per `webhook_replay_interval_secs`).
#[utoipa::path(operation_id = "replay_webhook_endpoint", post, path = "/v1/webhook-endpoints/{id}/replay", tag = "webhooks",
    params(("id" = String, Path)), request_body = ReplayRequest,
    responses((status = 202, body = Queued), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["webhooks:manage"]), ("session" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WebhooksManage>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReplayRequest>,
) -> Result<Response, ApiError> {
    match op::replay(&state, &Ctx::of(&auth, origin), &id, req.since).await? {
        Replay::Queued(queued) => {
            Ok((StatusCode::ACCEPTED, Json(Queued { queued })).into_response())
        }
        Replay::TooSoon { retry_after_secs } => {
            let mut res = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                format!(
                    "This endpoint was replayed less than {retry_after_secs} s ago; try again later."
                ),
            )
            .into_response();
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            Ok(res)
        }
    }
}

/// Delivers one event again to the workspace's endpoints that take its type (or one endpoint).
#[utoipa::path(operation_id = "resend_event", post, path = "/v1/events/{id}/resend", tag = "webhooks",
    params(("id" = String, Path), ResendQuery),
    responses((status = 202, body = Queued), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["webhooks:manage"]), ("session" = [])))]
pub async fn resend(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WebhooksManage>,
    Path(id): Path<String>,
    Query(q): Query<ResendQuery>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let queued = op::resend(&state, &ctx, &id, q.endpoint_id.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { queued })))
}
