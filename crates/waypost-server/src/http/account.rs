//! The signed-in person's own account: export it, schedule or cancel its deletion.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

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
    ))]
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
    ))]
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
    ))]
pub async fn cancel_deletion(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    account::cancel_deletion(&state, &origin, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}
