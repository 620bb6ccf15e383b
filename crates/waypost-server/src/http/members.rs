//! Members of a workspace and their roles. The last owner cannot be demoted or
//! removed, and nobody grants a role above their own.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_core::NewAuditEvent;
use waypost_core::auth::Role;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::caller::require_recent_auth;
use crate::auth::permission::act;
use crate::state::{AppState, RequestOrigin};

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    /// The base role.
    pub role: String,
    /// A just-in-time role in force until `elevated_until`.
    pub elevated_role: Option<String>,
    pub elevated_until: Option<DateTime<Utc>>,
    pub joined_at: DateTime<Utc>,
}

/// Members of the workspace.
#[utoipa::path(operation_id = "list_members", get, path = "/v1/members", tag = "members", responses((status = 200, body = Vec<MemberView>)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<act::MembersRead>,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    let members = state
        .store
        .list_members(&auth.workspace_id.to_string())
        .await?;
    let now = state.clock.now();
    Ok(Json(
        members
            .into_iter()
            .map(|m| MemberView {
                user_id: m.user_id,
                email: m.email,
                role: m.role,
                elevated_role: m
                    .elevated_role
                    .filter(|_| m.elevated_until.is_some_and(|u| u > now)),
                elevated_until: m.elevated_until.filter(|u| *u > now),
                joined_at: m.created_at,
            })
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct RoleChange {
    #[schema(value_type = String, example = "developer")]
    pub role: Role,
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

/// Changes a member's role (step-up required).
#[utoipa::path(operation_id = "change_member_role", patch, path = "/v1/members/{user_id}", tag = "members", request_body = RoleChange, params(("user_id" = String, Path)),
    responses((status = 204, description = "Changed"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Would leave no owner", body = Problem, content_type = "application/problem+json")))]
pub async fn change_role(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MembersManage>,
    Path(user_id): Path<String>,
    ApiJson(req): ApiJson<RoleChange>,
) -> Result<StatusCode, ApiError> {
    require_recent_auth(&state, &auth.caller)?;
    let ws = auth.workspace_id.to_string();
    let current = state
        .store
        .membership_role(&ws, &user_id)
        .await?
        .ok_or(waypost_store::StoreError::NotFound("member"))?;
    let current: Role = current
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown role in memberships"))?;
    may_grant(auth.role, req.role)?;
    may_grant(auth.role, current)?;
    let event = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "member.role_changed",
    )
    .target("user", user_id.clone())
    .details(serde_json::json!({ "from": current.as_str(), "to": req.role.as_str() }));
    state
        .store
        .set_member_role(&ws, &user_id, req.role.as_str(), origin.stamp(event))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a member (step-up required); the last owner stays.
#[utoipa::path(operation_id = "remove_member", delete, path = "/v1/members/{user_id}", tag = "members", params(("user_id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Last owner", body = Problem, content_type = "application/problem+json")))]
pub async fn remove(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MembersManage>,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_recent_auth(&state, &auth.caller)?;
    let ws = auth.workspace_id.to_string();
    let current = state
        .store
        .membership_role(&ws, &user_id)
        .await?
        .ok_or(waypost_store::StoreError::NotFound("member"))?;
    let current: Role = current
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown role in memberships"))?;
    may_grant(auth.role, current)?;
    let event = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "member.removed",
    )
    .target("user", user_id.clone());
    state
        .store
        .remove_member(&ws, &user_id, origin.stamp(event))
        .await?;
    state.lookups.invalidate();
    Ok(StatusCode::NO_CONTENT)
}

/// The longest just-in-time elevation.
const MAX_ELEVATION_DAYS: i64 = 30;

#[derive(Deserialize, ToSchema)]
pub struct Elevation {
    #[schema(value_type = String, example = "admin")]
    pub role: Role,
    /// When the elevation lapses by itself (at most 30 days ahead).
    pub until: DateTime<Utc>,
}

/// Grants a member a higher role until a time (step-up required); it lapses by itself.
#[utoipa::path(post, path = "/v1/members/{user_id}/elevation", operation_id = "elevate_member", tag = "members",
    request_body = Elevation, params(("user_id" = String, Path)),
    responses((status = 204, description = "Granted"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn elevate(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ElevationGrant>,
    Path(user_id): Path<String>,
    ApiJson(req): ApiJson<Elevation>,
) -> Result<StatusCode, ApiError> {
    require_recent_auth(&state, &auth.caller)?;
    let now = state.clock.now();
    if req.until <= now || req.until > now + chrono::Duration::days(MAX_ELEVATION_DAYS) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid request",
            "`until` must be in the future and at most 30 days ahead",
        )
        .into());
    }
    let ws = auth.workspace_id.to_string();
    state
        .store
        .membership_role(&ws, &user_id)
        .await?
        .ok_or(waypost_store::StoreError::NotFound("member"))?;
    may_grant(auth.role, req.role)?;
    let by = match auth.caller.actor() {
        waypost_core::audit::Actor::User(id)
        | waypost_core::audit::Actor::ApiKey(id)
        | waypost_core::audit::Actor::Operator(id) => id,
        waypost_core::audit::Actor::System => "system".to_owned(),
    };
    let event = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "member.elevated",
    )
    .target("user", user_id.clone())
    .details(serde_json::json!({ "role": req.role.as_str(), "until": req.until }));
    state
        .store
        .elevate(
            &ws,
            &user_id,
            req.role.as_str(),
            req.until,
            &by,
            origin.stamp(event),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends an elevation early.
#[utoipa::path(delete, path = "/v1/members/{user_id}/elevation", operation_id = "end_member_elevation", tag = "members",
    params(("user_id" = String, Path)),
    responses((status = 204, description = "Ended"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn end_elevation(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ElevationGrant>,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let event = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "member.elevation_ended",
    )
    .target("user", user_id.clone());
    state
        .store
        .end_elevation(
            &auth.workspace_id.to_string(),
            &user_id,
            origin.stamp(event),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
