//! TOTP enrolment and recovery codes. Secrets are encrypted at rest; recovery
//! codes are stored as keyed hashes and shown once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_core::NewAuditEvent;
use waypost_crypto::{Aad, token, totp};

use super::auth::{check_totp, recovery_code_hash};
use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Caller;
use crate::auth::caller::require_recent_auth;
use crate::state::{AppState, RequestOrigin};

const RECOVERY_CODES: usize = 10;

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
    responses((status = 200, body = TotpEnrollment), (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TotpEnrollment>, ApiError> {
    require_recent_auth(&state, &caller)?;
    let s = caller.session()?;
    if s.user.totp_enabled {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "Conflict",
            "TOTP is already enabled; disable it first.",
        )
        .into());
    }
    let secret = totp::TotpSecret::generate();
    let encrypted = state.keys.current().encrypt(
        Aad::new("users", "totp_secret", &s.user.id),
        secret.expose_bytes(),
    );
    state
        .store
        .set_totp(&s.user.id, Some(&encrypted), false, None)
        .await?;
    let uri = totp::otpauth_uri(&secret, "Waypost", &s.user.email);
    Ok(Json(TotpEnrollment {
        qr_svg: totp::qr_svg(&uri),
        otpauth_uri: uri,
    }))
}

/// Confirms enrolment with a current code; answers the recovery codes once.
#[utoipa::path(operation_id = "confirm_totp", post, path = "/v1/auth/mfa/totp/confirm", tag = "auth", request_body = TotpConfirm,
    responses((status = 200, body = RecoveryCodes), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn confirm(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
    ApiJson(req): ApiJson<TotpConfirm>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let s = caller.session()?;
    let user = state.store.get_user(&s.user.id).await?;
    if user.totp_enabled || user.totp_secret.is_none() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "Conflict",
            "Start enrolment with POST /v1/auth/mfa/totp.",
        )
        .into());
    }
    if !check_totp(&state, &user, &req.code, state.clock.now()).await? {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-code",
            "Invalid code",
            "The code does not match; check the device clock.",
        )
        .into());
    }
    let event = NewAuditEvent::new(None, caller.actor(), "mfa.totp_enabled")
        .target("user", user.id.clone());
    state
        .store
        .enable_totp(&user.id, origin.stamp(event))
        .await?;
    Ok(Json(
        new_recovery_codes(&state, &origin, &caller, "mfa.recovery_codes_generated").await?,
    ))
}

async fn new_recovery_codes(
    state: &AppState,
    origin: &RequestOrigin,
    caller: &Caller,
    action: &str,
) -> Result<RecoveryCodes, ApiError> {
    let s = caller.session()?;
    let codes = token::generate_recovery_codes(RECOVERY_CODES);
    let mut shown = Vec::with_capacity(codes.len());
    let mut hashes = Vec::with_capacity(codes.len());
    for code in &codes {
        let text = secrecy::ExposeSecret::expose_secret(code).to_owned();
        let normalized = token::normalize_recovery_code(&text)
            .ok_or_else(|| anyhow::anyhow!("generated an invalid recovery code"))?;
        hashes.push(recovery_code_hash(state, &s.user.id, &normalized));
        shown.push(text);
    }
    let event = NewAuditEvent::new(None, caller.actor(), action).target("user", s.user.id.clone());
    state
        .store
        .replace_recovery_codes(&s.user.id, &hashes, origin.stamp(event))
        .await?;
    Ok(RecoveryCodes {
        recovery_codes: shown,
    })
}

/// Replaces all recovery codes (step-up required).
#[utoipa::path(operation_id = "regenerate_recovery_codes", post, path = "/v1/auth/mfa/recovery-codes", tag = "auth", responses((status = 200, body = RecoveryCodes)))]
pub async fn regenerate(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
) -> Result<Json<RecoveryCodes>, ApiError> {
    require_recent_auth(&state, &caller)?;
    if !caller.session()?.user.totp_enabled {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "Conflict",
            "Enable TOTP first.",
        )
        .into());
    }
    Ok(Json(
        new_recovery_codes(&state, &origin, &caller, "mfa.recovery_codes_regenerated").await?,
    ))
}

/// Turns TOTP off and deletes the recovery codes (step-up required).
#[utoipa::path(operation_id = "disable_totp", delete, path = "/v1/auth/mfa/totp", tag = "auth", responses((status = 204, description = "Disabled")))]
pub async fn disable(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    require_recent_auth(&state, &caller)?;
    let s = caller.session()?;
    let event = NewAuditEvent::new(None, caller.actor(), "mfa.totp_disabled")
        .target("user", s.user.id.clone());
    state
        .store
        .set_totp(&s.user.id, None, false, Some(origin.stamp(event)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
