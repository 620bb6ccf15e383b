//! Accepting an invitation: the one-time token names a pending invitation;
//! a new person sets a password (the account is created with the membership),
//! an existing user accepts while signed in with the invited email.

use axum::http::StatusCode;
use secrecy::SecretString;
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_crypto::token;
use waypost_store::identity::NewUser;
use waypost_store::members::InvitationRecord;

use super::accounts::hash_new_password;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::state::{AppState, RequestOrigin};

fn invalid_invitation() -> ApiError {
    Problem::new(
        StatusCode::NOT_FOUND,
        "invitation-invalid",
        "Invitation invalid",
        "This invitation is unknown, used, revoked or expired.",
    )
    .into()
}

/// The usable invitation a token names.
pub async fn pending(state: &AppState, token: &str) -> Result<InvitationRecord, ApiError> {
    let inv = state
        .store
        .find_invitation(&token::hash_session_token(token.trim()))
        .await?
        .ok_or_else(invalid_invitation)?;
    let usable =
        inv.accepted_at.is_none() && inv.revoked_at.is_none() && inv.expires_at > state.clock.now();
    if usable {
        Ok(inv)
    } else {
        Err(invalid_invitation())
    }
}

pub fn workspace_of(inv: &InvitationRecord) -> Option<waypost_core::WorkspaceId> {
    waypost_core::WorkspaceId::parse(&inv.workspace_id).ok()
}

/// Creates the invited person's account with its membership.
pub async fn accept_as_new_user(
    state: &AppState,
    origin: &RequestOrigin,
    token: &str,
    password: &SecretString,
) -> Result<(), ApiError> {
    let inv = pending(state, token).await?;
    let hash = hash_new_password(state, password, &[&inv.email]).await?;
    let user = NewUser {
        id: format!("usr_{}", ulid::Ulid::new()),
        email: inv.email.clone(),
        password_hash: hash,
        now: state.clock.now(),
    };
    let event = NewAuditEvent::new(
        workspace_of(&inv),
        Actor::User(user.id.clone()),
        "member.joined",
    )
    .target("invitation", inv.id.clone())
    .details(serde_json::json!({ "role": inv.role }));
    state
        .store
        .accept_invitation_as_new_user(&inv, &user, origin.stamp(event))
        .await?;
    Ok(())
}

/// Joins with the signed-in account, whose email must be the invited one.
pub async fn accept_as_user(
    state: &AppState,
    origin: &RequestOrigin,
    caller: &Caller,
    token: &str,
) -> Result<(), ApiError> {
    let s = caller.session()?;
    let inv = pending(state, token).await?;
    if inv.email != s.user.email {
        return Err(invalid_invitation());
    }
    let event = NewAuditEvent::new(workspace_of(&inv), caller.actor(), "member.joined")
        .target("invitation", inv.id.clone())
        .details(serde_json::json!({ "role": inv.role }));
    state
        .store
        .accept_invitation_as_user(&inv, &s.user.id, state.clock.now(), origin.stamp(event))
        .await?;
    Ok(())
}
