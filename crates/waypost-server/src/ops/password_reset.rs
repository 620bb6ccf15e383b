//! Password reset by mail. Asking answers the same, in the same time, whether
//! or not the address has an account, and is limited per address and per
//! network. The link holds a one-time token (only its hash is stored) valid
//! 30 minutes; using it sets the new password, ends every session and, when
//! the account has TOTP, needs a current code or a recovery code.

use std::time::Duration as StdDuration;

use axum::http::StatusCode;
use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_core::auth::Email;
use waypost_core::mail::MailKind;
use waypost_crypto::token;
use waypost_store::mail::PasswordResetRecord;

use super::accounts::hash_new_password;
use super::sign_in::{self, SecondFactor};
use crate::auth::rate_limit::RateLimitInfo;
use crate::error::{ApiError, Problem};
use crate::mail::{self, letters};
use crate::state::{AppState, RequestOrigin};

/// How long a reset link works.
pub const VALID_MINUTES: i64 = 30;
/// Every request takes at least this long, so the time taken does not tell
/// whether the address has an account (the work is well under it).
pub const ANSWER_FLOOR: StdDuration = StdDuration::from_millis(500);

/// The link a reset token opens.
pub fn link(state: &AppState, token: &str) -> String {
    format!("{}/reset?token={token}", state.config.public_url())
}

/// Asks for a reset link for `email`. `Err` only for a throttled caller (the
/// quota that refused) or a failure; an unknown or malformed address answers
/// `Ok` like a known one.
pub async fn request(
    state: &AppState,
    origin: &RequestOrigin,
    email: &str,
) -> Result<Result<(), RateLimitInfo>, ApiError> {
    let started = tokio::time::Instant::now();
    let normalized = email.trim().to_lowercase();
    let address_key = state
        .keys
        .current()
        .blind_index("password_reset.email", normalized.as_bytes());
    let checks = [
        origin
            .ip
            .map(|ip| state.limits.reset_network.check(&network_of(ip))),
        Some(state.limits.reset_address.check(&address_key)),
    ];
    if let Some(info) = checks
        .into_iter()
        .flatten()
        .find(|i| i.retry_after_secs.is_some())
    {
        return Ok(Err(info));
    }
    let outcome = issue(state, origin, &normalized).await;
    tokio::time::sleep_until(started + ANSWER_FLOOR).await;
    outcome.map(|_| Ok(()))
}

/// Stores a reset link for the account at `email` and queues its mail;
/// returns the link (for `waypost admin user reset-link`), or `None` when
/// there is no such account.
pub async fn issue(
    state: &AppState,
    origin: &RequestOrigin,
    email: &str,
) -> Result<Option<String>, ApiError> {
    let user = match Email::parse(email) {
        Ok(email) => crate::emails::user_by_email(state, email.as_str()).await?,
        Err(_) => None,
    };
    let Some(user) = user else {
        let event = NewAuditEvent::new(None, Actor::System, "auth.password_reset_requested")
            .details(serde_json::json!({ "account": "unknown" }));
        state.audit(origin.stamp(event)).await?;
        return Ok(None);
    };
    let now = state.clock.now();
    let secret = token::generate_session_token();
    let reset = PasswordResetRecord {
        id: format!("pwr_{}", ulid::Ulid::new()),
        user_id: user.id.clone(),
        token_hash: token::hash_session_token(secret.expose_secret()).to_vec(),
        created_at: now,
        expires_at: now + Duration::minutes(VALID_MINUTES),
        used_at: None,
    };
    let url = link(state, secret.expose_secret());
    let letter = letters::password_reset(&user.email, &url);
    let event = NewAuditEvent::new(
        None,
        Actor::User(user.id.clone()),
        "auth.password_reset_requested",
    )
    .target("user", user.id.clone())
    .details(serde_json::json!({ "mailed": state.config.mail_enabled() }))
    .mail(mail::queue(state, MailKind::PasswordReset, &letter));
    state
        .store
        .create_password_reset(&reset, origin.stamp(event))
        .await?;
    Ok(Some(url))
}

/// IPv4 addresses count alone; IPv6 ones by their /64, which one client
/// usually holds whole.
fn network_of(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            std::net::IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

fn invalid_link() -> ApiError {
    Problem::new(
        StatusCode::NOT_FOUND,
        "reset-link-invalid",
        "Reset link invalid",
        "This password reset link is unknown, used or expired. Ask for a new one.",
    )
    .into()
}

/// The usable reset a token names.
pub async fn pending(state: &AppState, token: &str) -> Result<PasswordResetRecord, ApiError> {
    let reset = state
        .store
        .find_password_reset(&token::hash_session_token(token.trim()))
        .await?
        .ok_or_else(invalid_link)?;
    if reset.used_at.is_some() || reset.expires_at <= state.clock.now() {
        return Err(invalid_link());
    }
    Ok(reset)
}

/// Uses a reset link: checks the second factor when the account has one,
/// sets the password and ends every session. Returns the sessions ended.
pub async fn complete(
    state: &AppState,
    origin: &RequestOrigin,
    token: &str,
    password: &SecretString,
    factor: &SecondFactor,
) -> Result<u64, ApiError> {
    let reset = pending(state, token).await?;
    let user = crate::emails::user(state, &reset.user_id).await?;
    let now = state.clock.now();
    if !user.totp_enabled && sign_in::needs_second_factor(state, &user).await? {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "reset-needs-passkey",
            "Sign in with your passkey",
            "This account's second factor is a passkey only: sign in with the passkey and change the password on the Security page.",
        )
        .into());
    }
    match sign_in::check_second_factor(state, &user, factor, now).await? {
        Ok(()) => {}
        Err(reason) => {
            let detail = if reason == "mfa_required" {
                "This account has two-step verification: send `totp_code` (or a `recovery_code`) with the new password."
            } else {
                "The code is wrong or was already used."
            };
            if reason != "mfa_required" {
                sign_in::record_failure(state, &user, origin, reason, now).await?;
            }
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "mfa-required",
                "Second factor required",
                detail,
            )
            .with("methods", serde_json::json!(["totp", "recovery_code"]))
            .into());
        }
    }
    let hash = hash_new_password(state, password, &[&user.email]).await?;
    let event = NewAuditEvent::new(None, Actor::User(user.id.clone()), "auth.password_reset")
        .target("user", user.id.clone())
        .mail(super::notices::password_changed(state, &user));
    match state
        .store
        .complete_password_reset(&reset.id, &user.id, &hash, now, origin.stamp(event))
        .await
    {
        Err(waypost_store::StoreError::NotFound(_)) => Err(invalid_link()),
        other => {
            let done = other?;
            state.signals.credential_changed(now, &user.id);
            Ok(done)
        }
    }
}
