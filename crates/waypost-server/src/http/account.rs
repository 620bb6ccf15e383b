//! The signed-in person's own account: export it, schedule or cancel its deletion.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Caller;
use crate::ops::account;
use crate::state::{AppState, RequestOrigin};

/// Everything kept about the caller's account, as JSON: profile, memberships,
/// sessions (revoked ones too) and the audit entries by or about them (step-up required).
#[utoipa::path(get, path = "/v1/account/export", tag = "auth",
    responses(
        (status = 200, description = "The export", body = serde_json::Value),
        (status = 403, description = "Re-authentication required", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn export(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
) -> Result<Json<account::AccountExport>, ApiError> {
    Ok(Json(account::export(&state, &origin, &caller).await?))
}

#[derive(Serialize, ToSchema)]
pub struct DeletionScheduled {
    /// When the account will be deleted unless the deletion is cancelled.
    pub due_at: DateTime<Utc>,
}

/// Schedules the caller's account for deletion after the grace period
/// (step-up required). Refused while they are a workspace's last owner.
#[utoipa::path(post, path = "/v1/account/deletion", tag = "auth",
    responses(
        (status = 202, description = "Scheduled", body = DeletionScheduled),
        (status = 403, description = "Re-authentication required", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The last owner of a workspace", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn request_deletion(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
) -> Result<(StatusCode, Json<DeletionScheduled>), ApiError> {
    let due_at = account::request_deletion(&state, &origin, &caller).await?;
    Ok((StatusCode::ACCEPTED, Json(DeletionScheduled { due_at })))
}

/// Cancels the pending deletion of the caller's account.
#[utoipa::path(delete, path = "/v1/account/deletion", tag = "auth",
    responses(
        (status = 204, description = "Cancelled"),
        (status = 404, description = "No deletion pending", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn cancel_deletion(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    account::cancel_deletion(&state, &origin, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mails the signed-in person a link confirming their current address.
#[utoipa::path(post, path = "/v1/account/email/verification", tag = "auth",
    responses(
        (status = 202, description = "A link is on its way to the account's address"),
        (status = 409, description = "Mail is not configured", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn request_verification(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    crate::ops::email_change::request_verification(&state, &origin, &caller).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
pub struct EmailChangeRequest {
    email: String,
}

/// Asks to change the account's address (step-up): it changes when the new
/// address confirms by its mailed link; the old address is told and can undo.
#[utoipa::path(post, path = "/v1/account/email", tag = "auth", request_body = EmailChangeRequest,
    responses(
        (status = 202, description = "A confirmation link is on its way to the new address"),
        (status = 403, description = "Re-authentication required", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Address in use, or mail not configured", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn request_change(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
    ApiJson(req): ApiJson<EmailChangeRequest>,
) -> Result<StatusCode, ApiError> {
    crate::ops::email_change::request_change(&state, &origin, &caller, &req.email).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
pub struct EmailLink {
    /// The token of the mailed link.
    token: String,
}

#[derive(Serialize, ToSchema)]
pub struct EmailLinkUsed {
    /// `verify`, `change` or `undo`.
    pub done: String,
}

/// Uses a mailed address link: confirms the address, applies a change, or
/// undoes one (which ends every session).
#[utoipa::path(post, path = "/v1/account/email/confirm", tag = "auth", request_body = EmailLink,
    responses(
        (status = 200, description = "Done", body = EmailLinkUsed),
        (status = 404, description = "Link unknown, used or expired", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another account took the address meanwhile", body = Problem, content_type = "application/problem+json"),
    ),
    security(()))]
pub async fn confirm_email(
    State(state): State<AppState>,
    origin: RequestOrigin,
    ApiJson(req): ApiJson<EmailLink>,
) -> Result<Json<EmailLinkUsed>, ApiError> {
    let done = crate::ops::email_change::confirm(&state, &origin, &req.token).await?;
    Ok(Json(EmailLinkUsed {
        done: done.as_str().to_owned(),
    }))
}
