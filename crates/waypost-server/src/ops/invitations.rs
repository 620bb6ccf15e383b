//! Accepting an invitation: the one-time token names a pending invitation;
//! a new person sets a password (the account is created with the membership),
//! an existing user accepts while signed in with the invited email.

use axum::http::StatusCode;
use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_core::auth::{Email, Role};
use waypost_crypto::token;
use waypost_store::identity::NewUser;
use waypost_store::members::InvitationRecord;

use super::Ctx;
use super::accounts::hash_new_password;
use crate::auth::Caller;
use crate::auth::caller::require_recent_auth;
use crate::error::{ApiError, Problem, unprocessable};
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
    let inv = crate::emails::invitation(state, &token::hash_session_token(token.trim()))
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
    let id = format!("usr_{}", ulid::Ulid::new());
    let user = NewUser {
        email: crate::emails::seal(&state.keys, "users", &id, &inv.email),
        id,
        password_hash: hash,
        now: state.clock.now(),
        // The link reached this address only if it was mailed.
        email_verified: state.config.mail_enabled(),
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

/// How long an invitation link works.
pub const VALID_DAYS: i64 = 7;

/// Invites `email` with `role` (step-up required; never above the inviter's own
/// role); returns the record and the one-time token, shown only now.
pub async fn create(
    state: &AppState,
    ctx: &Ctx,
    caller: &Caller,
    own: Option<Role>,
    email: &str,
    role: Role,
) -> Result<(InvitationRecord, String), ApiError> {
    require_recent_auth(state, caller)?;
    // A billed workspace's members count against its plan when inviting more.
    if state.quotas.billing(&ctx.workspace).is_some() {
        let held = state.store.list_members_sealed(&ctx.workspace).await?.len();
        state.quotas.check_held(
            &ctx.workspace,
            waypost_core::plan::Quota::Members,
            held as i64,
        )?;
    }
    let email = Email::parse(email).map_err(|e| unprocessable(format!("`email`: {e}")))?;
    if !own.is_some_and(|own| own.may_grant(role)) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            "You cannot grant a role above your own.",
        )
        .into());
    }
    let ws = ctx.workspace.clone();
    if let Some(user) = crate::emails::user_by_email(state, email.as_str()).await?
        && state.store.membership_role(&ws, &user.id).await?.is_some()
    {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "Conflict",
            "This person is already a member.",
        )
        .into());
    }
    let now = state.clock.now();
    let secret = token::generate_session_token();
    let id = format!("inv_{}", ulid::Ulid::new());
    let record = InvitationRecord {
        sealed_email: crate::emails::seal(&state.keys, "invitations", &id, email.as_str()).sealed,
        id,
        workspace_id: ws,
        email: email.as_str().to_owned(),
        role: role.as_str().to_owned(),
        token_hash: token::hash_session_token(secret.expose_secret()).to_vec(),
        invited_by: ctx.actor.id().map(str::to_owned),
        created_at: now,
        expires_at: now + Duration::days(VALID_DAYS),
        accepted_at: None,
        revoked_at: None,
    };
    let workspace = state.store.get_workspace(ctx.workspace_id).await?;
    let letter = crate::mail::letters::invitation(
        &record.email,
        &workspace.name,
        &record.role,
        &link(state, secret.expose_secret()),
    );
    let mailed = crate::mail::queue(state, waypost_core::mail::MailKind::Invitation, &letter);
    let event = NewAuditEvent::new(Some(ctx.workspace_id), ctx.actor.clone(), "member.invited")
        .target("invitation", record.id.clone())
        .details(serde_json::json!({ "role": record.role, "mailed": mailed.is_some() }))
        .mail(mailed);
    state
        .store
        .create_invitation(&record, ctx.origin.stamp(event))
        .await?;
    Ok((record, secret.expose_secret().to_owned()))
}

/// The link an invitation's token opens.
pub fn link(state: &AppState, token: &str) -> String {
    format!(
        "{}/invitations/accept?token={token}",
        state.config.public_url()
    )
}

/// Revokes a pending invitation.
pub async fn revoke(state: &AppState, ctx: &Ctx, id: &str) -> Result<(), ApiError> {
    let event = NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "member.invitation_revoked",
    )
    .target("invitation", id.to_owned());
    state
        .store
        .revoke_invitation(
            &ctx.workspace,
            id,
            state.clock.now(),
            ctx.origin.stamp(event),
        )
        .await?;
    Ok(())
}
