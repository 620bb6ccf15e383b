//! Operator actions on one account, for `waypost admin user …`: lift a
//! lockout, remove every second factor (the holder is told by mail), and
//! issue a password reset link when no mail can carry it. Each is audited
//! with the system as actor.

use axum::http::StatusCode;
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_core::auth::Email;
use waypost_store::identity::UserRecord;

use crate::error::{ApiError, Problem, unprocessable};
use crate::state::{AppState, RequestOrigin};

async fn user_by_email(state: &AppState, email: &str) -> Result<UserRecord, ApiError> {
    let email = Email::parse(email).map_err(|e| unprocessable(format!("--email: {e}")))?;
    crate::emails::user_by_email(state, email.as_str())
        .await?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                "No account uses this address.",
            )
            .into()
        })
}

/// Clears the account's failed sign-ins and lockout.
pub async fn unlock(state: &AppState, email: &str) -> Result<UserRecord, ApiError> {
    let user = user_by_email(state, email).await?;
    let event = NewAuditEvent::new(None, Actor::System, "auth.unlocked_by_operator")
        .target("user", user.id.clone())
        .details(serde_json::json!({ "via": "cli" }));
    state.store.unlock_user(&user.id, event).await?;
    Ok(user)
}

/// Removes TOTP, recovery codes and passkeys; returns (TOTP was on, passkeys removed).
pub async fn reset_mfa(state: &AppState, email: &str) -> Result<(bool, u64), ApiError> {
    let user = user_by_email(state, email).await?;
    let event = NewAuditEvent::new(None, Actor::System, "mfa.reset_by_operator")
        .target("user", user.id.clone())
        .mail(super::notices::mfa_removed(
            state,
            &user.email,
            "every second factor (by an operator)",
        ));
    Ok(state.store.reset_mfa(&user.id, event).await?)
}

/// A password reset link for the account (also mailed when mail is on).
pub async fn reset_link(state: &AppState, email: &str) -> Result<String, ApiError> {
    let user = user_by_email(state, email).await?;
    let origin = RequestOrigin {
        ip: None,
        user_agent: Some("waypost admin".into()),
        rate_limit: None,
    };
    super::password_reset::issue(state, &origin, &user.email)
        .await?
        .ok_or_else(|| unprocessable("the account disappeared meanwhile"))
}
