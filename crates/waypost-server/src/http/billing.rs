//! Stripe billing: an owner's Checkout and Billing Portal links
//! (`/v1/billing/…`, action `billing:manage`) and Stripe's webhook
//! (`POST /stripe/webhook`, verified by `Stripe-Signature`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::permission::{Authorized, act};
use crate::ops::Ctx;
use crate::ops::billing;
use crate::state::{AppState, RequestOrigin};

#[derive(Deserialize, ToSchema)]
pub struct CheckoutRequest {
    /// The plan to subscribe to; it must have a `stripe_price_id`.
    pub plan_id: String,
    /// Where Stripe sends the owner after paying.
    pub success_url: String,
    /// Where the back button on Stripe's page leads.
    pub cancel_url: String,
}

#[derive(Deserialize, ToSchema)]
pub struct PortalRequest {
    /// Where the portal's back link leads.
    pub return_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct LinkView {
    /// The Checkout session id (checkout only).
    pub id: Option<String>,
    /// Open this in the browser; it expires soon.
    pub url: String,
}

/// A Stripe Checkout link subscribing the workspace to a plan (owners only).
#[utoipa::path(operation_id = "create_checkout", post, path = "/v1/billing/checkout", tag = "usage",
    request_body = CheckoutRequest,
    responses((status = 200, body = LinkView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 502, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn checkout(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::BillingManage>,
    ApiJson(req): ApiJson<CheckoutRequest>,
) -> Result<Json<LinkView>, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let link = billing::checkout(
        &state,
        &ctx,
        &req.plan_id,
        &req.success_url,
        &req.cancel_url,
    )
    .await?;
    Ok(Json(LinkView {
        id: link.id,
        url: link.url,
    }))
}

/// A Stripe Billing Portal link to manage the subscription (owners only).
#[utoipa::path(operation_id = "create_billing_portal", post, path = "/v1/billing/portal", tag = "usage",
    request_body = PortalRequest,
    responses((status = 200, body = LinkView), (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn portal(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::BillingManage>,
    ApiJson(req): ApiJson<PortalRequest>,
) -> Result<Json<LinkView>, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let link = billing::portal(&state, &ctx, &req.return_url).await?;
    Ok(Json(LinkView {
        id: link.id,
        url: link.url,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct WebhookAnswer {
    pub event_id: String,
    /// `false` when the event was applied before (a redelivery).
    pub applied: bool,
}

/// Stripe's webhook: the raw body is checked against `Stripe-Signature`
/// (timestamp at most 300 s old), then applied once per event id.
#[utoipa::path(operation_id = "stripe_webhook", post, path = "/stripe/webhook", tag = "usage",
    request_body(content = String, content_type = "application/json"),
    responses((status = 200, body = WebhookAnswer), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "billing-disabled: Stripe is not configured on this server")),
    security(()))]
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAnswer>, ApiError> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let out = billing::handle_webhook(&state, signature, &body).await?;
    Ok(Json(WebhookAnswer {
        event_id: out.event_id,
        applied: out.applied,
    }))
}
