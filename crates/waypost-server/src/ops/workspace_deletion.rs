//! Deleting a whole workspace: an owner asks (recent sign-in, the workspace's
//! name typed as confirmation), every owner is told and any of them can cancel
//! during the grace period; then a worker destroys its keys and access at once
//! and removes its rows in batches. What remains is `workspace.deletion_started`
//! and `workspace.deleted` in the system audit chain.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use waypost_core::audit::{Actor, chain_name};
use waypost_core::auth::Role;
use waypost_core::mail::{MailKind, QueuedMail};
use waypost_core::{NewAuditEvent, WorkspaceId};

use super::Ctx;
use crate::auth::Caller;
use crate::auth::caller::require_recent_auth;
use crate::error::{ApiError, Problem, unprocessable};
use crate::mail::{self, Letter, letters};
use crate::state::AppState;

/// Rows removed per transaction while purging.
const PURGE_BATCH: u32 = 500;
const DUE_BATCH: u32 = 10;

/// A mail to each owner of the workspace, built by `letter(address)`.
async fn to_owners(
    state: &AppState,
    ctx: &Ctx,
    letter: impl Fn(&str) -> Letter,
) -> Result<Vec<QueuedMail>, ApiError> {
    Ok(crate::emails::members(state, &ctx.workspace)
        .await?
        .iter()
        .filter(|m| m.role == Role::Owner.as_str())
        .filter_map(|m| mail::queue(state, MailKind::WorkspaceDeletion, &letter(&m.email)))
        .collect())
}

/// Schedules the deletion after the grace period; `confirm` must be the
/// workspace's name. Answers the date (the same one when already scheduled).
pub async fn request(
    state: &AppState,
    ctx: &Ctx,
    caller: &Caller,
    confirm: &str,
) -> Result<DateTime<Utc>, ApiError> {
    require_recent_auth(state, caller)?;
    let workspace = state.store.get_workspace(ctx.workspace_id).await?;
    if confirm != workspace.name {
        return Err(unprocessable(
            "`confirm` must be the workspace's name, exactly as it is written.",
        ));
    }
    if let Some(due) = state.store.workspace_deletion_due(&ctx.workspace).await? {
        return Ok(due);
    }
    let due = state.clock.now()
        + chrono::Duration::days(state.config.workspace_deletion_grace_days.into());
    let when = due.format("%Y-%m-%d %H:%M UTC").to_string();
    let mail = to_owners(state, ctx, |to| {
        letters::workspace_deletion_scheduled(to, &workspace.name, &when)
    })
    .await?;
    let event = NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "workspace.deletion_requested",
    )
    .target("workspace", ctx.workspace.clone())
    .details(serde_json::json!({ "due_at": due }))
    .mail(mail);
    state
        .store
        .schedule_workspace_deletion(&ctx.workspace, Some(due), ctx.origin.stamp(event))
        .await?;
    Ok(due)
}

/// Cancels a pending deletion; `404` when none is pending.
pub async fn cancel(state: &AppState, ctx: &Ctx) -> Result<(), ApiError> {
    if state
        .store
        .workspace_deletion_due(&ctx.workspace)
        .await?
        .is_none()
    {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "No deletion of this workspace is pending.",
        )
        .into());
    }
    let workspace = state.store.get_workspace(ctx.workspace_id).await?;
    let mail = to_owners(state, ctx, |to| {
        letters::workspace_deletion_cancelled(to, &workspace.name)
    })
    .await?;
    let event = NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "workspace.deletion_cancelled",
    )
    .target("workspace", ctx.workspace.clone())
    .mail(mail);
    state
        .store
        .schedule_workspace_deletion(&ctx.workspace, None, ctx.origin.stamp(event))
        .await?;
    Ok(())
}

/// Purges the workspaces whose grace period is over (a worker step), and
/// finishes purges a crash interrupted. Returns how many were removed.
pub async fn run_due(state: &AppState) -> Result<u64, ApiError> {
    let mut removed = 0;
    for id in state
        .store
        .due_workspace_deletions(state.clock.now(), DUE_BATCH)
        .await?
    {
        let Ok(workspace_id) = WorkspaceId::parse(&id) else {
            return Err(anyhow::anyhow!("malformed workspace id in workspaces").into());
        };
        purge(state, workspace_id).await?;
        removed += 1;
    }
    Ok(removed)
}

async fn purge(state: &AppState, workspace_id: WorkspaceId) -> Result<(), ApiError> {
    let id = workspace_id.to_string();
    let started = NewAuditEvent::new(None, Actor::System, "workspace.deletion_started")
        .target("workspace", id.clone())
        .details(serde_json::json!({ "keys_destroyed": true }));
    state
        .store
        .start_workspace_purge(&id, state.clock.now(), started)
        .await?;
    // Refuse what this node still remembers (keys, channels) at once.
    state.lookups.invalidate();
    let mut rows = 0;
    loop {
        let n = state.store.purge_workspace_batch(&id, PURGE_BATCH).await?;
        if n == 0 {
            break;
        }
        rows += n;
    }
    let done = NewAuditEvent::new(None, Actor::System, "workspace.deleted")
        .target("workspace", id.clone())
        .details(serde_json::json!({ "rows_removed_in_batches": rows }));
    match state
        .store
        .finish_workspace_purge(&id, &chain_name(Some(workspace_id)), done)
        .await
    {
        // Another node finished it first.
        Err(waypost_store::StoreError::NotFound(_)) => return Ok(()),
        other => other?,
    }
    state.lookups.invalidate();
    tracing::info!(workspace = %id, rows, "workspace deleted");
    Ok(())
}
