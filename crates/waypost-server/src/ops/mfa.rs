//! A member's second factor: TOTP enrolment (a secret encrypted at rest,
//! pending until a code confirms it), recovery codes (keyed hashes, shown
//! once), and turning TOTP off. Changes need a recent re-authentication.

use axum::http::StatusCode;
use waypost_core::NewAuditEvent;
use waypost_crypto::{Aad, token, totp};

use super::sign_in::{check_totp, recovery_code_hash};
use crate::auth::Caller;
use crate::auth::caller::require_recent_auth;
use crate::error::{ApiError, Problem};
use crate::state::{AppState, RequestOrigin};

const RECOVERY_CODES: usize = 10;

/// A started enrolment: the secret as an `otpauth://` URI and as a QR code.
pub struct Enrollment {
    pub otpauth_uri: String,
    pub qr_svg: String,
}

fn conflict(detail: &str) -> ApiError {
    Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail).into()
}

/// Starts TOTP enrolment: a new secret, pending until confirmed.
pub async fn enroll(state: &AppState, caller: &Caller) -> Result<Enrollment, ApiError> {
    require_recent_auth(state, caller)?;
    let s = caller.session()?;
    if s.user.totp_enabled {
        return Err(conflict("TOTP is already enabled; disable it first."));
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
    Ok(Enrollment {
        qr_svg: totp::qr_svg(&uri),
        otpauth_uri: uri,
    })
}

/// Confirms enrolment with a current code; returns the recovery codes, shown once.
pub async fn confirm(
    state: &AppState,
    origin: &RequestOrigin,
    caller: &Caller,
    code: &str,
) -> Result<Vec<String>, ApiError> {
    let s = caller.session()?;
    let user = crate::emails::user(state, &s.user.id).await?;
    if user.totp_enabled || user.totp_secret.is_none() {
        return Err(conflict("Start enrolment with POST /v1/auth/mfa/totp."));
    }
    if !check_totp(state, &user, code, state.clock.now()).await? {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-code",
            "Invalid code",
            "The code does not match; check the device clock.",
        )
        .into());
    }
    let event = NewAuditEvent::new(None, caller.actor(), "mfa.totp_enabled")
        .target("user", user.id.clone())
        .mail(super::notices::mfa_added(
            state,
            &user.email,
            "an authenticator app (TOTP)",
        ));
    state
        .store
        .enable_totp(&user.id, origin.stamp(event))
        .await?;
    state
        .signals
        .credential_changed(state.clock.now(), &user.id);
    new_recovery_codes(state, origin, caller, "mfa.recovery_codes_generated").await
}

async fn new_recovery_codes(
    state: &AppState,
    origin: &RequestOrigin,
    caller: &Caller,
    action: &str,
) -> Result<Vec<String>, ApiError> {
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
    Ok(shown)
}

/// Replaces all recovery codes.
pub async fn regenerate(
    state: &AppState,
    origin: &RequestOrigin,
    caller: &Caller,
) -> Result<Vec<String>, ApiError> {
    require_recent_auth(state, caller)?;
    if !caller.session()?.user.totp_enabled {
        return Err(conflict("Enable TOTP first."));
    }
    new_recovery_codes(state, origin, caller, "mfa.recovery_codes_regenerated").await
}

/// Turns TOTP off and deletes the recovery codes.
pub async fn disable(
    state: &AppState,
    origin: &RequestOrigin,
    caller: &Caller,
) -> Result<(), ApiError> {
    require_recent_auth(state, caller)?;
    let s = caller.session()?;
    let event = NewAuditEvent::new(None, caller.actor(), "mfa.totp_disabled")
        .target("user", s.user.id.clone())
        .mail(super::notices::mfa_removed(
            state,
            &s.user.email,
            "an authenticator app (TOTP)",
        ));
    state
        .store
        .set_totp(&s.user.id, None, false, Some(origin.stamp(event)))
        .await?;
    Ok(())
}
