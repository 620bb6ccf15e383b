//! The current workspace's settings.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_core::NewAuditEvent;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::caller::require_recent_auth;
use crate::auth::permission::act;
use crate::auth::{Authorized, Caller};
use crate::state::{AppState, RequestOrigin};

#[derive(Serialize, ToSchema)]
pub struct WorkspaceView {
    pub id: String,
    pub name: String,
    /// Members without a second factor can only enrol one.
    pub require_mfa: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct WorkspaceSettings {
    pub require_mfa: bool,
}

async fn view(
    state: &AppState,
    auth_ws: waypost_core::WorkspaceId,
    caller: &Caller,
) -> Result<WorkspaceView, ApiError> {
    let ws = state.store.get_workspace(auth_ws).await?;
    let require_mfa = match caller {
        Caller::Session(s) => state
            .store
            .membership(&ws.id.to_string(), &s.user.id)
            .await?
            .is_some_and(|m| m.require_mfa),
        Caller::ApiKey(_) => false,
    };
    Ok(WorkspaceView {
        id: ws.id.to_string(),
        name: ws.name,
        require_mfa,
    })
}

/// The workspace the request acts in.
#[utoipa::path(get, path = "/v1/workspace", operation_id = "get_workspace", tag = "members",
    responses((status = 200, body = WorkspaceView)))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<act::MembersRead>,
) -> Result<Json<WorkspaceView>, ApiError> {
    Ok(Json(view(&state, auth.workspace_id, &auth.caller).await?))
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
    require_recent_auth(&state, &auth.caller)?;
    let user = &auth.caller.session()?.user;
    if req.require_mfa && !user.totp_enabled && state.store.count_passkeys(&user.id).await? == 0 {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "Conflict",
            "Enable a second factor on your own account before requiring one from everybody.",
        )
        .into());
    }
    let event = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "workspace.settings_changed",
    )
    .target("workspace", auth.workspace_id.to_string())
    .details(serde_json::json!({ "require_mfa": req.require_mfa }));
    state
        .store
        .set_require_mfa(
            &auth.workspace_id.to_string(),
            req.require_mfa,
            origin.stamp(event),
        )
        .await?;
    Ok(Json(view(&state, auth.workspace_id, &auth.caller).await?))
}
