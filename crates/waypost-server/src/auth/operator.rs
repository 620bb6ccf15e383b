//! Platform operators: the server's own administrators, authenticated by an
//! operator token (`Authorization: Bearer wpo_…`) on `/v1/operator` routes.
//! Operators are no workspace's members, and workspace credentials (API keys,
//! sessions) are refused here with 403; operator tokens in turn are not API
//! keys, so workspace routes refuse them.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use chrono::Duration;
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_crypto::operator_token::{OPERATOR_TOKEN_PREFIX, parse_operator_token};
use waypost_crypto::token::ct_eq;
use waypost_store::operators::OperatorTokenRecord;

use super::caller::AuthRejection;
use super::cookies;
use super::rate_limit::{RateLimitSlot, too_many_requests};
use crate::error::{ApiError, Problem};
use crate::state::{AppState, RequestOrigin};

/// An authenticated platform operator.
#[derive(Debug, Clone)]
pub struct Operator {
    pub token: OperatorTokenRecord,
}

impl Operator {
    pub fn actor(&self) -> Actor {
        Actor::Operator(self.token.id.clone())
    }
}

fn operator_required() -> ApiError {
    Problem::new(
        StatusCode::FORBIDDEN,
        "operator-token-required",
        "Operator token required",
        "Operator routes need a platform operator token (`Authorization: Bearer wpo_…`, from \
         `waypost admin operator-token create`); workspace API keys and sessions cannot use them.",
    )
    .into()
}

fn invalid() -> ApiError {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "invalid-operator-token",
        "Unauthorized",
        "The operator token is invalid or revoked.",
    )
    .into()
}

/// The live operator token `presented` names; unknown and revoked tokens are
/// audited and refused with 401. Shared by the API's bearer check and the
/// operator pages' sign-in.
pub async fn verify_operator_token(
    state: &AppState,
    origin: &RequestOrigin,
    presented: &str,
) -> Result<OperatorTokenRecord, ApiError> {
    let parsed = parse_operator_token(presented).map_err(|_| invalid())?;
    let hash = parsed.keyed_hash(&state.keys.current());
    let found = state
        .store
        .find_operator_token(&hash)
        .await?
        .filter(|t| ct_eq(&t.token_hash, &hash));
    match found {
        Some(t) if t.revoked_at.is_none() => Ok(t),
        other => {
            let reason = if other.is_some() {
                "revoked"
            } else {
                "unknown"
            };
            let mut event = NewAuditEvent::new(None, Actor::System, "operator_token.rejected")
                .details(
                    serde_json::json!({ "prefix": parsed.display_prefix(), "reason": reason }),
                );
            if let Some(t) = &other {
                event = event.target("operator_token", t.id.clone());
            }
            if let Err(e) = state.audit(origin.stamp(event)).await {
                tracing::error!(error = %e, "cannot audit a rejected operator token");
            }
            Err(invalid())
        }
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, AuthRejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let presented = match bearer {
            Some(t) if t.starts_with(OPERATOR_TOKEN_PREFIX) => t.to_owned(),
            Some(_) => return Err(operator_required().into()),
            None if cookies::session_token(&parts.headers).is_some() => {
                return Err(operator_required().into());
            }
            None => {
                return Err(ApiError::from(Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "authentication-required",
                    "Unauthorized",
                    "Send an operator token as `Authorization: Bearer wpo_…`.",
                ))
                .into());
            }
        };
        let origin = RequestOrigin::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        let token = verify_operator_token(state, &origin, &presented).await?;
        let slot = parts
            .extensions
            .get::<RateLimitSlot>()
            .cloned()
            .unwrap_or_default();
        // Token ids (`opt_…`) never collide with API key ids in the shared limiter.
        let info = state.limits.api_key.check(&token.id);
        slot.record(info);
        if info.retry_after_secs.is_some() {
            return Err(AuthRejection::Limited(too_many_requests(
                info,
                "This operator token sent too many requests.",
            )));
        }
        let now = state.clock.now();
        if token
            .last_used_at
            .is_none_or(|t| now - t > Duration::seconds(60))
        {
            state.store.touch_operator_token(&token.id, now).await?;
        }
        Ok(Operator { token })
    }
}
