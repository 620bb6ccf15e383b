//! Signing in with a passkey: passwordless (email, then an assertion) and as
//! the second factor after a correct password. Failures are audited and count
//! toward the account lockout like wrong passwords; an unknown email gets
//! believable, deterministic fake credential ids so it cannot be told apart.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_core::auth::Email;
use waypost_store::identity::UserRecord;
use waypost_store::passkeys::ChallengeKind;
use webauthn_rs::fake::{FakePasskeyDistribution, WebauthnFakeCredentialGenerator};
use webauthn_rs::prelude::{Passkey, PasskeyAuthentication, PublicKeyCredential};

use super::auth::{complete_login, failed_login, invalid_credentials, locked, login_throttled};
use super::json::ApiJson;
use super::passkeys::Ceremony;
use super::{ApiError, Problem};
use crate::ops::passkeys::{
    invalid_challenge, save_challenge, take_challenge, user_passkeys, verify_assertion,
};
use crate::state::{AppState, RequestOrigin};

#[derive(Deserialize, ToSchema)]
pub struct PasskeyLoginStart {
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
pub struct PasskeyAssertion {
    pub challenge_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, as JSON.
    #[schema(value_type = Object)]
    pub credential: PublicKeyCredential,
}

/// Starts a passwordless sign-in: answers assertion options for the account's passkeys.
#[utoipa::path(operation_id = "start_passkey_login", post, path = "/v1/auth/passkeys/login/start", tag = "auth", request_body = PasskeyLoginStart,
    responses((status = 200, body = Ceremony)),
    security(()))]
pub async fn login_start(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PasskeyLoginStart>,
) -> Result<Response, ApiError> {
    let normalized = req.email.trim().to_lowercase();
    let user = match Email::parse(&req.email) {
        Ok(email) => crate::emails::user_by_email(&state, email.as_str()).await?,
        Err(_) => None,
    };
    let passkeys: Vec<Passkey> = match &user {
        Some(u) => user_passkeys(&state, &u.id)
            .await?
            .into_iter()
            .map(|(_, p)| p)
            .collect(),
        None => Vec::new(),
    };
    let (options, ceremony) = if passkeys.is_empty() {
        fake_options(&state, &normalized)?
    } else {
        let (options, ceremony) = state
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| anyhow::anyhow!("cannot start passkey authentication: {e}"))?;
        (
            serde_json::to_value(options).map_err(anyhow::Error::from)?,
            ceremony,
        )
    };
    // Without passkeys the ceremony cannot succeed; it keeps no user, so finishing
    // it fails like an unknown account.
    let owner = user
        .as_ref()
        .filter(|_| !passkeys.is_empty())
        .map(|u| u.id.as_str());
    let challenge_id = save_challenge(&state, ChallengeKind::Login, owner, &ceremony).await?;
    Ok(axum::Json(Ceremony {
        challenge_id,
        options,
    })
    .into_response())
}

/// Options that look like a real account's: a real challenge and fake
/// credential ids derived from the email, the same on every request.
fn fake_options(
    state: &AppState,
    email: &str,
) -> Result<(serde_json::Value, PasskeyAuthentication), ApiError> {
    let (options, ceremony) = state
        .webauthn
        .start_passkey_authentication(&[])
        .map_err(|e| anyhow::anyhow!("cannot start passkey authentication: {e}"))?;
    let key = state
        .keys
        .current()
        .blind_index("passkey.fake_credentials", b"hmac key");
    let generator = WebauthnFakeCredentialGenerator::<FakePasskeyDistribution>::new(&key)
        .map_err(|e| anyhow::anyhow!("cannot generate fake credentials: {e}"))?;
    // The distribution sometimes picks none, which no account with passkeys
    // shows; draw again (deterministically) until there is one.
    let mut ids = Vec::new();
    for round in 0..32u8 {
        let seed = [email.as_bytes(), &[0, round]].concat();
        ids = generator
            .generate(if round == 0 { email.as_bytes() } else { &seed })
            .map_err(|e| anyhow::anyhow!("cannot generate fake credentials: {e}"))?;
        if !ids.is_empty() {
            break;
        }
    }
    let mut options = serde_json::to_value(options).map_err(anyhow::Error::from)?;
    options["publicKey"]["allowCredentials"] = ids
        .into_iter()
        .map(|id| serde_json::json!({ "type": "public-key", "id": id }))
        .collect();
    Ok((options, ceremony))
}

/// Finishes a passwordless sign-in; answers like `POST /v1/auth/login`.
#[utoipa::path(operation_id = "finish_passkey_login", post, path = "/v1/auth/passkeys/login/finish", tag = "auth", request_body = PasskeyAssertion,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = super::auth::Me),
        (status = 401, description = "The assertion was refused", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown or expired challenge", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Locked or throttled; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(()))]
pub async fn login_finish(
    State(state): State<AppState>,
    origin: RequestOrigin,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PasskeyAssertion>,
) -> Result<Response, ApiError> {
    finish(&state, &origin, &headers, &req, ChallengeKind::Login).await
}

/// Finishes a password sign-in with a passkey as the second factor, answering
/// the challenge from the `mfa-required` problem of `POST /v1/auth/login`.
#[utoipa::path(operation_id = "finish_login_with_passkey", post, path = "/v1/auth/login/passkey", tag = "auth", request_body = PasskeyAssertion,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = super::auth::Me),
        (status = 401, description = "The assertion was refused", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown or expired challenge", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Locked or throttled; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(()))]
pub async fn second_factor_finish(
    State(state): State<AppState>,
    origin: RequestOrigin,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PasskeyAssertion>,
) -> Result<Response, ApiError> {
    finish(&state, &origin, &headers, &req, ChallengeKind::Authenticate).await
}

async fn finish(
    state: &AppState,
    origin: &RequestOrigin,
    headers: &HeaderMap,
    req: &PasskeyAssertion,
    kind: ChallengeKind,
) -> Result<Response, ApiError> {
    if let Some(res) = login_throttled(state, origin) {
        return Ok(res);
    }
    let now = state.clock.now();
    let taken: Option<(_, PasskeyAuthentication)> =
        take_challenge(state, &req.challenge_id, kind, None).await?;
    let (user_id, ceremony) = match taken {
        Some((Some(user_id), ceremony)) => (user_id, ceremony),
        Some((None, _)) => {
            audit_anonymous_failure(state, origin, "unknown_account").await?;
            return Err(invalid_credentials());
        }
        None => {
            audit_anonymous_failure(state, origin, "unknown_challenge").await?;
            return Err(invalid_challenge());
        }
    };
    let user: UserRecord = crate::emails::user(state, &user_id).await?;
    if let Some(until) = user.locked_until.filter(|u| *u > now) {
        return Ok(locked(until, now));
    }
    match verify_assertion(state, &user, &ceremony, &req.credential).await? {
        Ok(passkey) => {
            let details = match kind {
                ChallengeKind::Login => {
                    serde_json::json!({ "method": "passkey", "passkey_id": passkey.id })
                }
                _ => {
                    serde_json::json!({ "mfa": true, "method": "password", "second_factor": "passkey", "passkey_id": passkey.id })
                }
            };
            complete_login(state, &user, origin, headers, details).await
        }
        Err(reason) => failed_login(state, &user, origin, reason, now).await,
    }
}

/// A failed passkey sign-in that names no account (unknown email or challenge).
async fn audit_anonymous_failure(
    state: &AppState,
    origin: &RequestOrigin,
    reason: &str,
) -> Result<(), ApiError> {
    let event = NewAuditEvent::new(None, Actor::System, "auth.login_failed")
        .details(serde_json::json!({ "reason": reason, "method": "passkey" }));
    state.audit(origin.stamp(event)).await?;
    Ok(())
}
