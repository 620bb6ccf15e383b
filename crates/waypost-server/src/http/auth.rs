//! Sign-in and sessions: login (with lockout, per-address throttling and a
//! second factor), logout, password change, step-up re-authentication, the
//! current user, and listing and revoking sessions.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_core::NewAuditEvent;
use waypost_crypto::token;
use waypost_store::identity::UserRecord;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::caller::require_recent_auth;
use crate::auth::rate_limit::too_many_requests;
use crate::auth::{Caller, cookies};
use crate::ops::accounts::hash_new_password;
use crate::ops::sign_in::{self, Refusal, SecondFactor};
pub use crate::ops::sign_in::{check_totp, recovery_code_hash, verify_password};
use crate::state::{AppState, RequestOrigin};

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    totp_code: Option<String>,
    recovery_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user_id: String,
    pub email: String,
    pub mfa: MfaStatus,
    pub memberships: Vec<MembershipView>,
    /// Send as `X-CSRF-Token` with cookie requests from clients without `Origin`.
    pub csrf_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct MfaStatus {
    pub totp: bool,
    pub recovery_codes_left: i64,
    /// Registered passkeys.
    pub passkeys: i64,
}

#[derive(Serialize, ToSchema)]
pub struct MembershipView {
    pub workspace_id: String,
    pub workspace_name: String,
    pub role: String,
}

pub(crate) fn invalid_credentials() -> ApiError {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "invalid-credentials",
        "Invalid credentials",
        "The email or password is wrong.",
    )
    .into()
}

pub(crate) fn locked(until: DateTime<Utc>, now: DateTime<Utc>) -> Response {
    let secs = (until - now).num_seconds().max(1);
    let mut res = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "account-locked",
        "Too many failed logins",
        "Sign-in is paused for this account after repeated failures; retry later.",
    )
    .into_response();
    res.headers_mut().insert(header::RETRY_AFTER, secs.into());
    res
}

/// Checks the per-address sign-in quota: `Some(429)` when it is spent; else
/// the check is what the response's `RateLimit-*` headers show.
pub(crate) fn login_throttled(state: &AppState, origin: &RequestOrigin) -> Option<Response> {
    let info = state.limits.login_ip.check(&origin.ip?);
    if info.retry_after_secs.is_some() {
        return Some(too_many_requests(
            info,
            "Too many sign-in attempts from this address.",
        ));
    }
    if let Some(slot) = &origin.rate_limit {
        slot.replace(info);
    }
    None
}

/// Signs in with email and password (and a TOTP or recovery code when MFA is on).
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = Me),
        (status = 401, description = "Wrong credentials or second factor missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Locked or throttled; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(()))]
pub async fn login(
    State(state): State<AppState>,
    origin: RequestOrigin,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let user = match sign_in::check_password(&state, &origin, &req.email, &req.password).await? {
        Ok(user) => user,
        Err(refusal) => return refused(refusal, now),
    };
    let factor = match (req.totp_code, req.recovery_code) {
        (Some(code), _) => SecondFactor::Totp(code),
        (None, Some(code)) => SecondFactor::Recovery(code),
        (None, None) => SecondFactor::None,
    };
    match sign_in::check_second_factor(&state, &user, &factor, now).await? {
        Ok(()) => {}
        Err("mfa_required") => return mfa_required(&state, &user, true).await,
        Err(reason) => return failed_login(&state, &user, &origin, reason, now).await,
    }
    let details = serde_json::json!({ "mfa": user.totp_enabled });
    complete_login(&state, &user, &origin, &headers, details).await
}

/// The answer to a refused sign-in: 429 with `Retry-After`, or 401.
pub(crate) fn refused(refusal: Refusal, now: DateTime<Utc>) -> Result<Response, ApiError> {
    match refusal {
        Refusal::Throttled(info) => Ok(too_many_requests(
            info,
            "Too many sign-in attempts from this address.",
        )),
        Refusal::Locked(until) => Ok(locked(until, now)),
        Refusal::InvalidCredentials => Err(invalid_credentials()),
    }
}

/// Answers 401 `mfa-required`, listing the user's second factors; with
/// passkeys it carries a passkey assertion challenge, to be answered at
/// `POST /v1/auth/login/passkey` (sign-in) or `POST /v1/auth/reauth` (step-up).
async fn mfa_required(
    state: &AppState,
    user: &UserRecord,
    signing_in: bool,
) -> Result<Response, ApiError> {
    let mut methods = Vec::new();
    let mut sentences = Vec::new();
    if user.totp_enabled && signing_in {
        methods.extend(["totp", "recovery_code"]);
        sentences.push("Send `totp_code` (or a `recovery_code`) with your email and password.");
    } else if user.totp_enabled {
        methods.push("totp");
        sentences.push("Send a current `totp_code` with your password.");
    }
    let passkey = crate::ops::passkeys::second_factor_challenge(state, user).await?;
    if passkey.is_some() {
        methods.push("passkey");
        sentences.push(if signing_in {
            "Answer `options` with a passkey and send it with `challenge_id` to POST /v1/auth/login/passkey."
        } else {
            "Answer `options` with a passkey and send `challenge_id` and `credential` with your password."
        });
    }
    let mut problem = Problem::new(
        StatusCode::UNAUTHORIZED,
        "mfa-required",
        "Second factor required",
        sentences.join(" "),
    );
    if let Some(started) = passkey {
        problem = problem
            .with("challenge_id", serde_json::json!(started.challenge_id))
            .with("options", started.options);
    }
    Err(problem.with("methods", serde_json::json!(methods)).into())
}

/// Clears failure counters, opens a session (audited `auth.login` with
/// `details`) and answers the session cookie and the user.
pub(crate) async fn complete_login(
    state: &AppState,
    user: &UserRecord,
    origin: &RequestOrigin,
    headers: &HeaderMap,
    details: serde_json::Value,
) -> Result<Response, ApiError> {
    let (token, session) = sign_in::open_session(state, user, origin, details).await?;
    let body = me_for(state, user, &session.token_hash).await?;
    let secure = cookies::is_secure(&state.config, headers);
    let cookie = cookies::set_session(
        token.expose_secret(),
        state.config.session_absolute_timeout_secs,
        secure,
    );
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Audits a failed attempt, counts it toward the lockout and answers it.
pub(crate) async fn failed_login(
    state: &AppState,
    user: &UserRecord,
    origin: &RequestOrigin,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Response, ApiError> {
    let refusal = sign_in::record_failure(state, user, origin, reason, now).await?;
    refused(refusal, now)
}

async fn me_for(state: &AppState, user: &UserRecord, token_hash: &[u8]) -> Result<Me, ApiError> {
    let memberships = state.store.memberships(&user.id).await?;
    let hash: [u8; 32] = token_hash
        .try_into()
        .map_err(|_| anyhow::anyhow!("session hash length"))?;
    Ok(Me {
        user_id: user.id.clone(),
        email: user.email.clone(),
        mfa: MfaStatus {
            totp: user.totp_enabled,
            recovery_codes_left: state.store.unused_recovery_codes(&user.id).await?,
            passkeys: state.store.count_passkeys(&user.id).await?,
        },
        memberships: memberships
            .into_iter()
            .map(|m| MembershipView {
                workspace_id: m.workspace_id,
                workspace_name: m.workspace_name,
                role: m.role,
            })
            .collect(),
        csrf_token: token::csrf_token(&hash, &state.keys.current()),
    })
}

/// The signed-in user, their workspaces and MFA state.
#[utoipa::path(get, path = "/v1/auth/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Me>, ApiError> {
    let s = caller.session()?;
    Ok(Json(me_for(&state, &s.user, &s.session.token_hash).await?))
}

/// Ends this session.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", responses((status = 204, description = "Signed out")),
    security(("session" = [])))]
pub async fn logout(
    State(state): State<AppState>,
    origin: RequestOrigin,
    headers: HeaderMap,
    caller: Caller,
) -> Result<Response, ApiError> {
    let s = caller.session()?;
    let event = NewAuditEvent::new(None, caller.actor(), "auth.logout")
        .target("session", s.session.id.clone());
    state
        .store
        .revoke_session(
            &s.user.id,
            &s.session.id,
            state.clock.now(),
            origin.stamp(event),
        )
        .await?;
    let cookie = cookies::clear_session(cookies::is_secure(&state.config, &headers));
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct ReauthRequest {
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    totp_code: Option<String>,
    /// With `credential`: the passkey challenge from a `mfa-required` answer.
    challenge_id: Option<String>,
    /// A passkey's answer (`PublicKeyCredential` JSON) to `challenge_id`.
    #[schema(value_type = Option<Object>)]
    credential: Option<webauthn_rs::prelude::PublicKeyCredential>,
}

/// Confirms the password (and a second factor when the user has one: TOTP or a
/// passkey) to unlock sensitive actions for 5 minutes.
#[utoipa::path(post, path = "/v1/auth/reauth", tag = "auth", request_body = ReauthRequest,
    responses((status = 204, description = "Re-authenticated"), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn reauth(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
    ApiJson(req): ApiJson<ReauthRequest>,
) -> Result<Response, ApiError> {
    let s = caller.session()?;
    let now = state.clock.now();
    if !verify_password(&state, &s.user, &req.password).await? {
        failed_login(&state, &s.user, &origin, "reauth_wrong_password", now).await?;
        return Err(invalid_credentials());
    }
    let passkeys = state.store.count_passkeys(&s.user.id).await? > 0;
    if s.user.totp_enabled || passkeys {
        let ok = match (&req.totp_code, &req.challenge_id, &req.credential) {
            (Some(code), _, _) if s.user.totp_enabled => {
                check_totp(&state, &s.user, code, now).await?
            }
            (_, Some(id), Some(credential)) if passkeys => {
                crate::ops::passkeys::check_step_up_assertion(&state, &s.user, id, credential)
                    .await?
            }
            _ => false,
        };
        if !ok {
            return mfa_required(&state, &s.user, false).await;
        }
    }
    sign_in::mark_reauthenticated(&state, &origin, &s.user, &s.session).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    #[schema(value_type = String, format = Password)]
    current_password: SecretString,
    #[schema(value_type = String, format = Password)]
    new_password: SecretString,
}

/// Changes the password (current one required) and ends every other session.
#[utoipa::path(post, path = "/v1/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204, description = "Changed"), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let s = caller.session()?;
    let now = state.clock.now();
    if !verify_password(&state, &s.user, &req.current_password).await? {
        failed_login(
            &state,
            &s.user,
            &origin,
            "password_change_wrong_password",
            now,
        )
        .await?;
        return Err(invalid_credentials());
    }
    let hash = hash_new_password(&state, &req.new_password, &[&s.user.email]).await?;
    let event = NewAuditEvent::new(None, caller.actor(), "auth.password_changed")
        .target("user", s.user.id.clone())
        .mail(crate::ops::notices::password_changed(&state, &s.user));
    state
        .store
        .change_password(&s.user.id, &hash, &s.session.id, now, origin.stamp(event))
        .await?;
    state.signals.credential_changed(now, &s.user.id);
    Ok(StatusCode::NO_CONTENT)
}

/// Used by step-up-protected handlers.
pub fn step_up(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    require_recent_auth(state, caller)
}
