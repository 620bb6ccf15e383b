//! Members of a workspace and their roles: change a role, remove a member,
//! grant and end a just-in-time elevation. Each needs a recent sign-in (except
//! ending an elevation); nobody grants or touches a role above their own, and
//! the store keeps the last owner (409).

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_core::auth::Role;
use waypost_store::identity::Member as MemberRecord;

use super::Ctx;
use crate::auth::Caller;
use crate::auth::caller::require_recent_auth;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// The longest just-in-time elevation.
const MAX_ELEVATION_DAYS: i64 = 30;

/// A member as listed, with an elevation only while it is in force.
pub struct Member {
    pub record: MemberRecord,
    pub elevated_role: Option<String>,
    pub elevated_until: Option<DateTime<Utc>>,
}

fn may_grant(own: Option<Role>, role: Role) -> Result<(), ApiError> {
    match own {
        Some(own) if role.rank() <= own.rank() => Ok(()),
        _ => Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            "You cannot grant a role above your own.",
        )
        .into()),
    }
}

/// The member's current base role (404 when not a member).
async fn role_of(state: &AppState, ctx: &Ctx, user_id: &str) -> Result<Role, ApiError> {
    let current = state
        .store
        .membership_role(&ctx.workspace, user_id)
        .await?
        .ok_or(waypost_store::StoreError::NotFound("member"))?;
    Ok(current
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown role in memberships"))?)
}

pub async fn list(state: &AppState, ctx: &Ctx) -> Result<Vec<Member>, ApiError> {
    let now = state.clock.now();
    Ok(crate::emails::members(state, &ctx.workspace)
        .await?
        .into_iter()
        .map(|m| {
            let in_force = m.elevated_until.is_some_and(|u| u > now);
            Member {
                elevated_role: m.elevated_role.clone().filter(|_| in_force),
                elevated_until: m.elevated_until.filter(|_| in_force),
                record: m,
            }
        })
        .collect())
}

/// Changes a member's base role; `own` is the acting member's role.
pub async fn change_role(
    state: &AppState,
    ctx: &Ctx,
    caller: &Caller,
    own: Option<Role>,
    user_id: &str,
    role: Role,
) -> Result<(), ApiError> {
    require_recent_auth(state, caller)?;
    let current = role_of(state, ctx, user_id).await?;
    may_grant(own, role)?;
    may_grant(own, current)?;
    let event = NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "member.role_changed",
    )
    .target("user", user_id.to_owned())
    .details(serde_json::json!({ "from": current.as_str(), "to": role.as_str() }));
    state
        .store
        .set_member_role(
            &ctx.workspace,
            user_id,
            role.as_str(),
            ctx.origin.stamp(event),
        )
        .await?;
    Ok(())
}

/// Removes a member; the last owner stays (409).
pub async fn remove(
    state: &AppState,
    ctx: &Ctx,
    caller: &Caller,
    own: Option<Role>,
    user_id: &str,
) -> Result<(), ApiError> {
    require_recent_auth(state, caller)?;
    let current = role_of(state, ctx, user_id).await?;
    may_grant(own, current)?;
    let event = NewAuditEvent::new(Some(ctx.workspace_id), ctx.actor.clone(), "member.removed")
        .target("user", user_id.to_owned());
    state
        .store
        .remove_member(&ctx.workspace, user_id, ctx.origin.stamp(event))
        .await?;
    state.lookups.invalidate();
    Ok(())
}

/// Grants `role` until `until` (at most 30 days ahead); it lapses by itself.
pub async fn elevate(
    state: &AppState,
    ctx: &Ctx,
    caller: &Caller,
    own: Option<Role>,
    user_id: &str,
    role: Role,
    until: DateTime<Utc>,
) -> Result<(), ApiError> {
    require_recent_auth(state, caller)?;
    let now = state.clock.now();
    if until <= now || until > now + chrono::Duration::days(MAX_ELEVATION_DAYS) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid request",
            "`until` must be in the future and at most 30 days ahead",
        )
        .into());
    }
    role_of(state, ctx, user_id).await?;
    may_grant(own, role)?;
    let by = match &ctx.actor {
        Actor::User(id) | Actor::ApiKey(id) | Actor::Operator(id) => id.clone(),
        Actor::System => "system".to_owned(),
    };
    let event = NewAuditEvent::new(Some(ctx.workspace_id), ctx.actor.clone(), "member.elevated")
        .target("user", user_id.to_owned())
        .details(serde_json::json!({ "role": role.as_str(), "until": until }));
    state
        .store
        .elevate(
            &ctx.workspace,
            user_id,
            role.as_str(),
            until,
            &by,
            ctx.origin.stamp(event),
        )
        .await?;
    Ok(())
}

/// Ends an elevation early.
pub async fn end_elevation(state: &AppState, ctx: &Ctx, user_id: &str) -> Result<(), ApiError> {
    let event = NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "member.elevation_ended",
    )
    .target("user", user_id.to_owned());
    state
        .store
        .end_elevation(&ctx.workspace, user_id, ctx.origin.stamp(event))
        .await?;
    Ok(())
}
