//! Members of a workspace and their roles. The last owner cannot be demoted or
//! removed, and nobody grants a role above their own.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_core::auth::Role;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::ops::{Ctx, members};
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
    /// For an access review; only shown to members who may manage members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessReview>,
}

#[derive(Serialize, ToSchema)]
pub struct AccessReview {
    /// TOTP or at least one passkey.
    pub mfa_enabled: bool,
    /// `null` when they never signed in.
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

/// Members of the workspace.
#[utoipa::path(operation_id = "list_members", get, path = "/v1/members", tag = "members", responses((status = 200, body = Vec<MemberView>)),
    security(("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MembersRead>,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    let members = members::list(&state, &Ctx::of(&auth, origin)).await?;
    let reviewer = auth
        .role
        .is_some_and(|r| waypost_core::auth::role_allows(r, waypost_core::Action::MembersManage));
    Ok(Json(
        members
            .into_iter()
            .map(|m| MemberView {
                user_id: m.record.user_id,
                email: m.record.email,
                role: m.record.role,
                elevated_role: m.elevated_role,
                elevated_until: m.elevated_until,
                joined_at: m.record.created_at,
                access: reviewer.then_some(AccessReview {
                    mfa_enabled: m.record.mfa_enabled,
                    last_sign_in_at: m.record.last_sign_in_at,
                }),
            })
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct RoleChange {
    #[schema(value_type = String, example = "developer")]
    pub role: Role,
}

/// Changes a member's role (step-up required).
#[utoipa::path(operation_id = "change_member_role", patch, path = "/v1/members/{user_id}", tag = "members", request_body = RoleChange, params(("user_id" = String, Path)),
    responses((status = 204, description = "Changed"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Would leave no owner", body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn change_role(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MembersManage>,
    Path(user_id): Path<String>,
    ApiJson(req): ApiJson<RoleChange>,
) -> Result<StatusCode, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    members::change_role(&state, &ctx, &auth.caller, auth.role, &user_id, req.role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a member (step-up required); the last owner stays.
#[utoipa::path(operation_id = "remove_member", delete, path = "/v1/members/{user_id}", tag = "members", params(("user_id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Last owner", body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MembersManage>,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    members::remove(&state, &ctx, &auth.caller, auth.role, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

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
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn elevate(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ElevationGrant>,
    Path(user_id): Path<String>,
    ApiJson(req): ApiJson<Elevation>,
) -> Result<StatusCode, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let (role, until) = (req.role, req.until);
    members::elevate(&state, &ctx, &auth.caller, auth.role, &user_id, role, until).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends an elevation early.
#[utoipa::path(delete, path = "/v1/members/{user_id}/elevation", operation_id = "end_member_elevation", tag = "members",
    params(("user_id" = String, Path)),
    responses((status = 204, description = "Ended"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn end_elevation(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ElevationGrant>,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    members::end_elevation(&state, &Ctx::of(&auth, origin), &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
