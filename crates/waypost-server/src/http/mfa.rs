//! TOTP enrolment and recovery codes. Secrets are encrypted at rest; recovery
//! codes are stored as keyed hashes and shown once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Caller;
use crate::ops::mfa;
use crate::state::{AppState, RequestOrigin};

#[derive(Serialize, ToSchema)]
pub struct TotpEnrollment {
    /// Scan with an authenticator app, or paste.
    pub otpauth_uri: String,
    /// The same URI as a QR code (SVG).
    pub qr_svg: String,
}

#[derive(Deserialize, ToSchema)]
pub struct TotpConfirm {
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Single-use codes for when the authenticator is lost. Shown only now.
    pub recovery_codes: Vec<String>,
}

/// Starts TOTP enrolment (step-up required): a new secret, pending until confirmed.
#[utoipa::path(operation_id = "enroll_totp", post, path = "/v1/auth/mfa/totp", tag = "auth",
    responses((status = 200, body = TotpEnrollment), (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TotpEnrollment>, ApiError> {
    let e = mfa::enroll(&state, &caller).await?;
    Ok(Json(TotpEnrollment {
        otpauth_uri: e.otpauth_uri,
        qr_svg: e.qr_svg,
    }))
}

/// Confirms enrolment with a current code; answers the recovery codes once.
#[utoipa::path(operation_id = "confirm_totp", post, path = "/v1/auth/mfa/totp/confirm", tag = "auth", request_body = TotpConfirm,
    responses((status = 200, body = RecoveryCodes), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn confirm(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
    ApiJson(req): ApiJson<TotpConfirm>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let recovery_codes = mfa::confirm(&state, &origin, &caller, &req.code).await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

/// Replaces all recovery codes (step-up required).
#[utoipa::path(operation_id = "regenerate_recovery_codes", post, path = "/v1/auth/mfa/recovery-codes", tag = "auth", responses((status = 200, body = RecoveryCodes)),
    security(("session" = [])))]
pub async fn regenerate(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let recovery_codes = mfa::regenerate(&state, &origin, &caller).await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

/// Turns TOTP off and deletes the recovery codes (step-up required).
#[utoipa::path(operation_id = "disable_totp", delete, path = "/v1/auth/mfa/totp", tag = "auth", responses((status = 204, description = "Disabled")),
    security(("session" = [])))]
pub async fn disable(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    mfa::disable(&state, &origin, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}
