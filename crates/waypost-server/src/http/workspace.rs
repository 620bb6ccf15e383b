//! The current workspace's settings.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_core::{NewAuditEvent, RetentionPolicy, ShieldPolicy};

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::caller::require_recent_auth;
use crate::auth::permission::act;
use crate::auth::{Authorized, Caller};
use crate::error::unprocessable as invalid;
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
    let settings = state.store.messaging_settings(&ws.id.to_string()).await?;
    Ok(WorkspaceView {
        id: ws.id.to_string(),
        name: ws.name,
        require_mfa,
        content_retention: settings.content_retention.to_string(),
        shield_policy: settings.shield_policy.to_string(),
        conversation_visibility: state
            .store
            .conversation_visibility(&ws.id.to_string())
            .await?,
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
    let ws = auth.workspace_id.to_string();
    let retention = req
        .content_retention
        .as_deref()
        .map(str::parse::<RetentionPolicy>)
        .transpose()
        .map_err(|e| invalid(format!("`content_retention` {e}")))?;
    let shield = req
        .shield_policy
        .as_deref()
        .map(str::parse::<ShieldPolicy>)
        .transpose()
        .map_err(|e| invalid(format!("`shield_policy` {e}")))?;
    let visibility = req
        .conversation_visibility
        .as_deref()
        .map(crate::ops::conversations::Visibility::parse)
        .transpose()?;
    if let Some(v) = visibility {
        let event = NewAuditEvent::new(
            Some(auth.workspace_id),
            auth.caller.actor(),
            "workspace.settings_changed",
        )
        .target("workspace", ws.clone())
        .details(serde_json::json!({"conversation_visibility": v.as_str()}));
        state
            .store
            .set_conversation_visibility(&ws, v.as_str(), origin.stamp(event))
            .await?;
    }
    if retention.is_some() || shield.is_some() {
        let current = state.store.messaging_settings(&ws).await?;
        let settings = waypost_store::messaging::MessagingSettings {
            content_retention: retention.unwrap_or(current.content_retention),
            shield_policy: shield.unwrap_or(current.shield_policy),
        };
        let event = NewAuditEvent::new(
            Some(auth.workspace_id),
            auth.caller.actor(),
            "workspace.settings_changed",
        )
        .target("workspace", ws.clone())
        .details(serde_json::json!({
            "content_retention": settings.content_retention.to_string(),
            "shield_policy": settings.shield_policy.as_str(),
        }));
        state
            .store
            .update_messaging_settings(&ws, &settings, origin.stamp(event))
            .await?;
        state.lookups.invalidate();
    }
    if let Some(require_mfa) = req.require_mfa {
        let user = &auth.caller.session()?.user;
        if require_mfa && !user.totp_enabled && state.store.count_passkeys(&user.id).await? == 0 {
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
        .target("workspace", ws.clone())
        .details(serde_json::json!({ "require_mfa": require_mfa }));
        state
            .store
            .set_require_mfa(&ws, require_mfa, origin.stamp(event))
            .await?;
    }
    Ok(Json(view(&state, auth.workspace_id, &auth.caller).await?))
}
