//! The current workspace's settings.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::ops::{Ctx, workspace, workspace_deletion};
use crate::state::{AppState, RequestOrigin};

#[derive(Serialize, ToSchema)]
pub struct WorkspaceView {
    pub id: String,
    pub name: String,
    /// Every member needs a second factor (members without one can only enrol one).
    pub require_mfa: bool,
    /// Owners and admins need a second factor once their grace period
    /// (`WAYPOST_ADMIN_MFA_GRACE_DAYS`, 7) is over; on unless relaxed.
    pub require_mfa_for_admins: bool,
    /// When the workspace will be deleted, if an owner asked for it.
    pub deletion_due_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `none` (message content is sent and not kept) or `days:N`.
    pub content_retention: String,
    /// What the shield does with suspicious messages: `off`, `flag` or `block`.
    pub shield_policy: String,
    /// Which conversations agents see: `all`, or only those `assigned` to them.
    pub conversation_visibility: String,
}

/// Settings to change; absent ones stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceSettings {
    pub require_mfa: Option<bool>,
    pub require_mfa_for_admins: Option<bool>,
    /// `none` or `days:N` (1 to 3650).
    pub content_retention: Option<String>,
    /// `off`, `flag` (default) or `block`.
    pub shield_policy: Option<String>,
    /// `all` (default) or `assigned`.
    pub conversation_visibility: Option<String>,
}

impl From<workspace::Settings> for WorkspaceView {
    fn from(s: workspace::Settings) -> Self {
        Self {
            id: s.id.to_string(),
            name: s.name,
            require_mfa: s.require_mfa,
            require_mfa_for_admins: s.require_mfa_for_admins,
            deletion_due_at: s.deletion_due_at,
            content_retention: s.content_retention.to_string(),
            shield_policy: s.shield_policy.to_string(),
            conversation_visibility: s.conversation_visibility,
        }
    }
}

/// The workspace the request acts in.
#[utoipa::path(get, path = "/v1/workspace", operation_id = "get_workspace", tag = "members",
    responses((status = 200, body = WorkspaceView)),
    security(("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MembersRead>,
) -> Result<Json<WorkspaceView>, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    Ok(Json(workspace::settings(&state, &ctx).await?.into()))
}

/// Changes workspace settings (step-up required). Requiring MFA needs MFA on your own account first.
#[utoipa::path(patch, path = "/v1/workspace", operation_id = "update_workspace", tag = "members", request_body = WorkspaceSettings,
    responses((status = 200, body = WorkspaceView), (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn update(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WorkspaceManage>,
    ApiJson(req): ApiJson<WorkspaceSettings>,
) -> Result<Json<WorkspaceView>, ApiError> {
    let change = workspace::Change {
        require_mfa: req.require_mfa,
        require_mfa_for_admins: req.require_mfa_for_admins,
        content_retention: req.content_retention.as_deref(),
        shield_policy: req.shield_policy.as_deref(),
        conversation_visibility: req.conversation_visibility.as_deref(),
    };
    let ctx = Ctx::of(&auth, origin);
    Ok(Json(
        workspace::update(&state, &ctx, &auth.caller, change)
            .await?
            .into(),
    ))
}

/// The typed confirmation of a workspace deletion.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteWorkspace {
    /// The workspace's name, exactly as it is written.
    pub confirm: String,
}

#[derive(Serialize, ToSchema)]
pub struct WorkspaceDeletionScheduled {
    /// When the workspace, its content and its keys will be removed unless an owner cancels.
    pub due_at: chrono::DateTime<chrono::Utc>,
}

/// Schedules the deletion of the workspace after the grace period
/// (`WAYPOST_WORKSPACE_DELETION_GRACE_DAYS`, 14); owners only, step-up
/// required, every owner is mailed. Export what you need first
/// (`GET /v1/workspace/export`, `GET /v1/audit/export`).
#[utoipa::path(post, path = "/v1/workspace/deletion", tag = "members", request_body = DeleteWorkspace,
    responses(
        (status = 202, description = "Scheduled", body = WorkspaceDeletionScheduled),
        (status = 403, description = "Not an owner, or re-authentication required", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The confirmation is not the workspace's name", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn request_workspace_deletion(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WorkspaceDelete>,
    ApiJson(req): ApiJson<DeleteWorkspace>,
) -> Result<(StatusCode, Json<WorkspaceDeletionScheduled>), ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let due_at = workspace_deletion::request(&state, &ctx, &auth.caller, &req.confirm).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(WorkspaceDeletionScheduled { due_at }),
    ))
}

/// Cancels the pending deletion of the workspace (owners only).
#[utoipa::path(delete, path = "/v1/workspace/deletion", tag = "members",
    responses(
        (status = 204, description = "Cancelled"),
        (status = 404, description = "No deletion pending", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn cancel_workspace_deletion(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WorkspaceDelete>,
) -> Result<StatusCode, ApiError> {
    workspace_deletion::cancel(&state, &Ctx::of(&auth, origin)).await?;
    Ok(StatusCode::NO_CONTENT)
}
