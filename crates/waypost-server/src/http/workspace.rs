//! The current workspace's settings.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::ops::{Ctx, workspace};
use crate::state::{AppState, RequestOrigin};

#[derive(Serialize, ToSchema)]
pub struct WorkspaceView {
    pub id: String,
    pub name: String,
    /// Members without a second factor can only enrol one.
    pub require_mfa: bool,
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
            content_retention: s.content_retention.to_string(),
            shield_policy: s.shield_policy.to_string(),
            conversation_visibility: s.conversation_visibility,
        }
    }
}

/// The workspace the request acts in.
#[utoipa::path(get, path = "/v1/workspace", operation_id = "get_workspace", tag = "members",
    responses((status = 200, body = WorkspaceView)))]
pub async fn get(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MembersRead>,
) -> Result<Json<WorkspaceView>, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    Ok(Json(
        workspace::settings(&state, &ctx, &auth.caller)
            .await?
            .into(),
    ))
}

/// Changes workspace settings (step-up required). Requiring MFA needs MFA on your own account first.
#[utoipa::path(patch, path = "/v1/workspace", operation_id = "update_workspace", tag = "members", request_body = WorkspaceSettings,
    responses((status = 200, body = WorkspaceView), (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WorkspaceManage>,
    ApiJson(req): ApiJson<WorkspaceSettings>,
) -> Result<Json<WorkspaceView>, ApiError> {
    let change = workspace::Change {
        require_mfa: req.require_mfa,
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
