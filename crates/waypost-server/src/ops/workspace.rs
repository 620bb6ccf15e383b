//! The current workspace's policies: whether every member needs a second
//! factor, how long message content is kept, what the shield does with
//! suspicious messages, and which conversations agents see. Every change
//! needs a recent sign-in and is audited; all input is checked before
//! anything is written, so a refused change leaves the others untouched.

use axum::http::StatusCode;
use waypost_core::{NewAuditEvent, RetentionPolicy, ShieldPolicy, WorkspaceId};

use super::Ctx;
use super::conversations::Visibility;
use crate::auth::Caller;
use crate::auth::caller::require_recent_auth;
use crate::error::{ApiError, Problem, unprocessable as invalid};
use crate::state::AppState;

/// The policies as they stand.
pub struct Settings {
    pub id: WorkspaceId,
    pub name: String,
    /// Whether every member needs a second factor.
    pub require_mfa: bool,
    /// Whether owners and admins need one (after a grace period); on by default.
    pub require_mfa_for_admins: bool,
    /// When the workspace will be deleted, if an owner asked for it.
    pub deletion_due_at: Option<chrono::DateTime<chrono::Utc>>,
    pub content_retention: RetentionPolicy,
    pub shield_policy: ShieldPolicy,
    pub conversation_visibility: String,
}

/// What to change, as given; absent ones stay as they are.
#[derive(Default)]
pub struct Change<'a> {
    pub require_mfa: Option<bool>,
    pub require_mfa_for_admins: Option<bool>,
    /// `none` or `days:N`.
    pub content_retention: Option<&'a str>,
    /// `off`, `flag` or `block`.
    pub shield_policy: Option<&'a str>,
    /// `all` or `assigned`.
    pub conversation_visibility: Option<&'a str>,
}

pub async fn settings(state: &AppState, ctx: &Ctx) -> Result<Settings, ApiError> {
    let ws = state.store.get_workspace(ctx.workspace_id).await?;
    let (require_mfa, require_mfa_for_admins) = state.store.mfa_policy(&ctx.workspace).await?;
    let messaging = state.store.messaging_settings(&ctx.workspace).await?;
    Ok(Settings {
        id: ws.id,
        name: ws.name,
        require_mfa,
        require_mfa_for_admins,
        deletion_due_at: state.store.workspace_deletion_due(&ctx.workspace).await?,
        content_retention: messaging.content_retention,
        shield_policy: messaging.shield_policy,
        conversation_visibility: state.store.conversation_visibility(&ctx.workspace).await?,
    })
}

fn changed(ctx: &Ctx, details: serde_json::Value) -> NewAuditEvent {
    NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "workspace.settings_changed",
    )
    .target("workspace", ctx.workspace.clone())
    .details(details)
}

pub async fn update(
    state: &AppState,
    ctx: &Ctx,
    caller: &Caller,
    change: Change<'_>,
) -> Result<Settings, ApiError> {
    require_recent_auth(state, caller)?;
    let retention = change
        .content_retention
        .map(str::parse::<RetentionPolicy>)
        .transpose()
        .map_err(|e| invalid(format!("`content_retention` {e}")))?;
    let shield = change
        .shield_policy
        .map(str::parse::<ShieldPolicy>)
        .transpose()
        .map_err(|e| invalid(format!("`shield_policy` {e}")))?;
    let visibility = change
        .conversation_visibility
        .map(Visibility::parse)
        .transpose()?;
    if change.require_mfa == Some(true) {
        let user = &caller.session()?.user;
        if !user.totp_enabled && state.store.count_passkeys(&user.id).await? == 0 {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "conflict",
                "Conflict",
                "Enable a second factor on your own account before requiring one from everybody.",
            )
            .into());
        }
    }
    if let Some(v) = visibility {
        let event = changed(
            ctx,
            serde_json::json!({"conversation_visibility": v.as_str()}),
        );
        state
            .store
            .set_conversation_visibility(&ctx.workspace, v.as_str(), ctx.origin.stamp(event))
            .await?;
    }
    if retention.is_some() || shield.is_some() {
        let current = state.store.messaging_settings(&ctx.workspace).await?;
        let settings = waypost_store::messaging::MessagingSettings {
            content_retention: retention.unwrap_or(current.content_retention),
            shield_policy: shield.unwrap_or(current.shield_policy),
        };
        let event = changed(
            ctx,
            serde_json::json!({
                "content_retention": settings.content_retention.to_string(),
                "shield_policy": settings.shield_policy.as_str(),
            }),
        );
        state
            .store
            .update_messaging_settings(&ctx.workspace, &settings, ctx.origin.stamp(event))
            .await?;
        state.lookups.invalidate();
    }
    if let Some(require_mfa) = change.require_mfa {
        let event = changed(ctx, serde_json::json!({ "require_mfa": require_mfa }));
        state
            .store
            .set_require_mfa(&ctx.workspace, require_mfa, ctx.origin.stamp(event))
            .await?;
    }
    if let Some(required) = change.require_mfa_for_admins {
        let event = changed(
            ctx,
            serde_json::json!({ "require_mfa_for_admins": required }),
        );
        state
            .store
            .set_require_mfa_for_admins(&ctx.workspace, required, ctx.origin.stamp(event))
            .await?;
    }
    settings(state, ctx).await
}

/// Records that the workspace was exported (who, when; not what).
pub async fn record_export(state: &AppState, ctx: &Ctx) -> Result<(), ApiError> {
    let event = NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "workspace.exported",
    )
    .target("workspace", ctx.workspace.clone());
    state.audit(ctx.origin.stamp(event)).await?;
    Ok(())
}
