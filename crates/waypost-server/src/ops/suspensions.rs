//! Suspensions of an API key, a channel, a user or a whole workspace: by an
//! operator, or automatically by a high-severity detector where the workspace
//! allows it. Each has a reason, is audited, mails the workspace's owners and
//! is enforced on every node within a second (the suspension table bumps the
//! cache generation). A suspended channel's outbox is held, not dropped.
//! Operators lift any suspension; owners lift key and channel suspensions
//! after a recent re-authentication with a second factor.

use axum::http::StatusCode;
use waypost_core::audit::Actor;
use waypost_core::mail::{MailKind, QueuedMail};
use waypost_core::trust::SuspensionTarget;
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_store::StoreError;
use waypost_store::trust::SuspensionRow;

use crate::error::{ApiError, Problem, unprocessable};
use crate::mail::{self, letters};
use crate::state::{AppState, RequestOrigin};

/// Who suspends.
#[derive(Debug, Clone)]
pub enum Source {
    Operator(Actor),
    /// A detector's finding, by alert id.
    Automatic {
        alert_id: String,
    },
}

#[derive(Debug, Clone)]
pub struct Suspend {
    pub target: SuspensionTarget,
    pub target_id: String,
    /// Needed for keys and channels; the workspace itself for workspaces.
    pub workspace_id: Option<String>,
    pub reason: String,
}

fn actor_id(actor: &Actor) -> String {
    match actor {
        Actor::User(id) | Actor::ApiKey(id) | Actor::Operator(id) => id.clone(),
        Actor::System => "system".to_owned(),
    }
}

/// The target's workspace, after checking the target exists (404 otherwise).
async fn resolve(state: &AppState, s: &Suspend) -> Result<Option<String>, ApiError> {
    let needs_ws =
        || unprocessable("`workspace_id` is required to suspend an API key or a channel");
    match s.target {
        SuspensionTarget::Workspace => {
            let id =
                WorkspaceId::parse(&s.target_id).map_err(|_| StoreError::NotFound("workspace"))?;
            state.store.get_workspace(id).await?;
            Ok(Some(s.target_id.clone()))
        }
        SuspensionTarget::ApiKey => {
            let ws = s.workspace_id.clone().ok_or_else(needs_ws)?;
            state.store.get_api_key(&ws, &s.target_id).await?;
            Ok(Some(ws))
        }
        SuspensionTarget::Channel => {
            let ws = s.workspace_id.clone().ok_or_else(needs_ws)?;
            state.store.get_channel(&ws, &s.target_id).await?;
            Ok(Some(ws))
        }
        SuspensionTarget::User => {
            crate::emails::user(state, &s.target_id).await?;
            Ok(None)
        }
    }
}

/// Mail to each owner of `workspace` about a suspension or its end.
async fn owner_mail(
    state: &AppState,
    workspace: Option<&str>,
    row: &SuspensionRow,
    suspended: bool,
) -> Result<Vec<QueuedMail>, ApiError> {
    let Some(ws) = workspace else {
        return Ok(Vec::new());
    };
    let what = row.target_kind.replace('_', " ");
    Ok(crate::emails::owners(state, ws)
        .await?
        .into_iter()
        .filter_map(|(_, email)| {
            let letter = letters::suspension(&email, &what, &row.target_id, suspended, &row.reason);
            mail::queue(state, MailKind::SecurityNotice, &letter)
        })
        .collect())
}

/// Suspends the target; 409 when it already is.
pub async fn suspend(
    state: &AppState,
    origin: &RequestOrigin,
    input: Suspend,
    source: Source,
) -> Result<SuspensionRow, ApiError> {
    let reason = input.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(unprocessable("`reason` must be 1 to 500 characters"));
    }
    let workspace = resolve(state, &input).await?;
    let (actor, source_name, alert_id) = match source {
        Source::Operator(actor) => (actor, "operator", None),
        Source::Automatic { alert_id } => (Actor::System, "automatic", Some(alert_id)),
    };
    let row = SuspensionRow {
        id: format!("sus_{}", ulid::Ulid::new()),
        workspace_id: workspace.clone(),
        target_kind: input.target.as_str().to_owned(),
        target_id: input.target_id.clone(),
        reason: reason.to_owned(),
        source: source_name.to_owned(),
        alert_id,
        created_by: actor_id(&actor),
        created_at: state.clock.now(),
        lifted_at: None,
        lifted_by: None,
    };
    let ws_id = workspace
        .as_deref()
        .and_then(|w| WorkspaceId::parse(w).ok());
    let audit = NewAuditEvent::new(ws_id, actor, "suspension.created")
        .target(input.target.as_str(), input.target_id.clone())
        .details(serde_json::json!({
            "suspension_id": row.id, "reason": row.reason, "source": row.source, "alert_id": row.alert_id,
        }))
        .mail(owner_mail(state, workspace.as_deref(), &row, true).await?);
    state
        .store
        .suspend(&row, origin.stamp(audit))
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => Problem::new(
                StatusCode::CONFLICT,
                "conflict",
                "Already suspended",
                format!("this {} is already suspended", input.target),
            )
            .into(),
            other => ApiError::from(other),
        })?;
    state.lookups.invalidate();
    metrics::counter!("waypost_suspensions_total", "target" => input.target.as_str(), "source" => source_name)
        .increment(1);
    Ok(row)
}

/// Lifts the target's suspension (404 when there is none).
pub async fn lift(
    state: &AppState,
    origin: &RequestOrigin,
    actor: Actor,
    target: SuspensionTarget,
    target_id: &str,
) -> Result<SuspensionRow, ApiError> {
    let current = state
        .store
        .active_suspension(target.as_str(), target_id)
        .await?
        .ok_or(StoreError::NotFound("suspension"))?;
    let ws_id = current
        .workspace_id
        .as_deref()
        .and_then(|w| WorkspaceId::parse(w).ok());
    let mail = owner_mail(state, current.workspace_id.as_deref(), &current, false).await?;
    let audit = NewAuditEvent::new(ws_id, actor.clone(), "suspension.lifted")
        .target(target.as_str(), target_id.to_owned())
        .details(serde_json::json!({ "suspension_id": current.id }))
        .mail(mail);
    let row = state
        .store
        .lift_suspension(
            target.as_str(),
            target_id,
            &actor_id(&actor),
            state.clock.now(),
            origin.stamp(audit),
        )
        .await?;
    state.lookups.invalidate();
    Ok(row)
}

/// An owner lifts a key or channel suspension of their workspace: needs a
/// second factor on the account and a re-authentication in the step-up window.
pub async fn lift_by_owner(
    state: &AppState,
    ctx: &super::Ctx,
    caller: &crate::auth::Caller,
    role: Option<waypost_core::Role>,
    target: SuspensionTarget,
    target_id: &str,
) -> Result<SuspensionRow, ApiError> {
    let forbidden = |detail: &str| -> ApiError {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail).into()
    };
    if role != Some(waypost_core::Role::Owner) || !target.owner_may_lift() {
        return Err(forbidden(
            "Only an owner may lift a key or channel suspension; operators lift the others.",
        ));
    }
    let session = caller.session()?;
    let has_mfa =
        session.user.totp_enabled || state.store.count_passkeys(&session.user.id).await? > 0;
    if !has_mfa {
        return Err(forbidden(
            "Lifting a suspension needs a second factor: enrol TOTP or a passkey first.",
        ));
    }
    crate::auth::caller::require_recent_auth(state, caller)?;
    let current = state
        .store
        .active_suspension(target.as_str(), target_id)
        .await?
        .filter(|s| s.workspace_id.as_deref() == Some(ctx.workspace.as_str()))
        .ok_or(StoreError::NotFound("suspension"))?;
    lift(
        state,
        &ctx.origin,
        ctx.actor.clone(),
        target,
        &current.target_id,
    )
    .await
}
