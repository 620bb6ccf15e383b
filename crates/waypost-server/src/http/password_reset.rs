//! Password reset: ask for a link by mail, then use it with a new password.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::rate_limit::too_many_requests;
use crate::ops::password_reset;
use crate::ops::sign_in::SecondFactor;
use crate::state::{AppState, RequestOrigin};

#[derive(Deserialize, ToSchema)]
pub struct ResetRequest {
    email: String,
}

#[derive(Serialize, ToSchema)]
pub struct ResetRequested {
    pub detail: String,
}

/// Asks for a password reset link by mail. The answer (and the time it takes)
/// is the same whether or not the address has an account.
#[utoipa::path(post, path = "/v1/auth/password-reset", tag = "auth", request_body = ResetRequest,
    responses(
        (status = 202, description = "A link was mailed if the address has an account", body = ResetRequested),
        (status = 429, description = "Too many requests for this address or network", body = Problem, content_type = "application/problem+json"),
    ),
    security(()))]
pub async fn request(
    State(state): State<AppState>,
    origin: RequestOrigin,
    ApiJson(req): ApiJson<ResetRequest>,
) -> Result<Response, ApiError> {
    match password_reset::request(&state, &origin, &req.email).await? {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            Json(ResetRequested {
                detail: format!(
                    "If an account uses this address, a link valid {} minutes is on its way to it.",
                    password_reset::VALID_MINUTES
                ),
            }),
        )
            .into_response()),
        Err(info) => Ok(too_many_requests(
            info,
            "Too many password reset requests for this address or network; try again later.",
        )),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct ResetCompletion {
    /// The token of the mailed link.
    token: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    /// Required when the account has TOTP (or send `recovery_code`).
    totp_code: Option<String>,
    recovery_code: Option<String>,
}

/// Sets a new password with a reset link's token; every session ends.
#[utoipa::path(post, path = "/v1/auth/password-reset/complete", tag = "auth", request_body = ResetCompletion,
    responses(
        (status = 204, description = "Password set; every session was ended"),
        (status = 401, description = "The account's second factor is needed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Link unknown, used or expired", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Password refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(()))]
pub async fn complete(
    State(state): State<AppState>,
    origin: RequestOrigin,
    ApiJson(req): ApiJson<ResetCompletion>,
) -> Result<StatusCode, ApiError> {
    let factor = match (req.totp_code, req.recovery_code) {
        (Some(code), _) => SecondFactor::Totp(code),
        (None, Some(code)) => SecondFactor::Recovery(code),
        (None, None) => SecondFactor::None,
    };
    password_reset::complete(&state, &origin, &req.token, &req.password, &factor).await?;
    Ok(StatusCode::NO_CONTENT)
}
