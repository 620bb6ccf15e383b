//! The account holder's own rights: an export of everything kept about their
//! account (profile, memberships, sessions, audit entries by or about them),
//! and deletion after a grace period, cancellable until then and refused
//! while they are the last owner of a workspace.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_core::mail::MailKind;

use crate::auth::Caller;
use crate::auth::caller::require_recent_auth;
use crate::error::{ApiError, Problem};
use crate::state::{AppState, RequestOrigin};

const EXPORT_SESSIONS: u32 = 1000;
const EXPORT_AUDIT: u32 = 10_000;
const DELETION_BATCH: u32 = 100;

#[derive(Serialize)]
pub struct AccountExport {
    pub generated_at: DateTime<Utc>,
    pub profile: Profile,
    pub memberships: Vec<ExportedMembership>,
    pub sessions: Vec<ExportedSession>,
    pub audit_events: Vec<ExportedAuditEvent>,
}

#[derive(Serialize)]
pub struct Profile {
    pub id: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub totp_enabled: bool,
    pub passkeys: i64,
    pub deletion_due_at: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
pub struct ExportedMembership {
    pub workspace_id: String,
    pub workspace_name: String,
    pub role: String,
}

#[derive(Serialize)]
pub struct ExportedSession {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
pub struct ExportedAuditEvent {
    pub id: String,
    pub chain: String,
    pub occurred_at: DateTime<Utc>,
    pub action: String,
    pub actor_type: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub details: serde_json::Value,
}

/// Everything kept about the caller's account, as JSON (step-up required).
pub async fn export(
    state: &AppState,
    origin: &RequestOrigin,
    caller: &Caller,
) -> Result<AccountExport, ApiError> {
    require_recent_auth(state, caller)?;
    let user = &caller.session()?.user;
    let memberships = state.store.memberships(&user.id).await?;
    let sessions = state.store.all_sessions(&user.id, EXPORT_SESSIONS).await?;
    let audit = state.store.audit_about_user(&user.id, EXPORT_AUDIT).await?;
    let export = AccountExport {
        generated_at: state.clock.now(),
        profile: Profile {
            id: user.id.clone(),
            email: user.email.clone(),
            created_at: user.created_at,
            totp_enabled: user.totp_enabled,
            passkeys: state.store.count_passkeys(&user.id).await?,
            deletion_due_at: state.store.deletion_due_at(&user.id).await?,
        },
        memberships: memberships
            .into_iter()
            .map(|m| ExportedMembership {
                workspace_id: m.workspace_id,
                workspace_name: m.workspace_name,
                role: m.role,
            })
            .collect(),
        sessions: sessions
            .into_iter()
            .map(|s| ExportedSession {
                id: s.id,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                ip: s.ip,
                user_agent: s.user_agent,
                revoked_at: s.revoked_at,
            })
            .collect(),
        audit_events: audit
            .into_iter()
            .map(|e| ExportedAuditEvent {
                id: e.id.to_string(),
                chain: e.chain,
                occurred_at: e.occurred_at,
                action: e.action,
                actor_type: e.actor.kind().to_owned(),
                target_type: e.target_type,
                target_id: e.target_id,
                ip: e.ip,
                details: serde_json::from_str(&e.details).unwrap_or_default(),
            })
            .collect(),
    };
    let event = NewAuditEvent::new(None, caller.actor(), "account.exported")
        .target("user", user.id.clone());
    state.audit(origin.stamp(event)).await?;
    Ok(export)
}

fn last_owner(workspaces: &[(String, String)]) -> ApiError {
    let names: Vec<&str> = workspaces.iter().map(|(_, n)| n.as_str()).collect();
    Problem::new(
        StatusCode::CONFLICT,
        "last-owner",
        "Last owner of a workspace",
        format!(
            "You are the only owner of {}. Make another member an owner (or delete the workspace) first.",
            names.join(", ")
        ),
    )
    .with("workspaces", serde_json::json!(names))
    .into()
}

/// Schedules the caller's account for deletion after the grace period (step-up
/// required); returns when it will happen.
pub async fn request_deletion(
    state: &AppState,
    origin: &RequestOrigin,
    caller: &Caller,
) -> Result<DateTime<Utc>, ApiError> {
    require_recent_auth(state, caller)?;
    let user = &caller.session()?.user;
    let sole = state.store.sole_owner_of(&user.id).await?;
    if !sole.is_empty() {
        return Err(last_owner(&sole));
    }
    if let Some(due) = state.store.deletion_due_at(&user.id).await? {
        return Ok(due);
    }
    let due =
        state.clock.now() + chrono::Duration::days(state.config.account_deletion_grace_days.into());
    let letter = crate::mail::letters::account_deletion_scheduled(
        &user.email,
        &due.format("%Y-%m-%d %H:%M UTC").to_string(),
    );
    let event = NewAuditEvent::new(None, caller.actor(), "account.deletion_requested")
        .target("user", user.id.clone())
        .details(serde_json::json!({ "due_at": due }))
        .mail(crate::mail::queue(
            state,
            MailKind::AccountDeletion,
            &letter,
        ));
    state
        .store
        .set_deletion_due(&user.id, Some(due), origin.stamp(event))
        .await?;
    Ok(due)
}

/// Cancels a pending deletion; `404` when none is pending.
pub async fn cancel_deletion(
    state: &AppState,
    origin: &RequestOrigin,
    caller: &Caller,
) -> Result<(), ApiError> {
    let user = &caller.session()?.user;
    if state.store.deletion_due_at(&user.id).await?.is_none() {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "No deletion of this account is pending.",
        )
        .into());
    }
    let event = NewAuditEvent::new(None, caller.actor(), "account.deletion_cancelled")
        .target("user", user.id.clone());
    state
        .store
        .set_deletion_due(&user.id, None, origin.stamp(event))
        .await?;
    Ok(())
}

/// Deletes the accounts whose grace period is over (a worker step). One that
/// became a workspace's last owner meanwhile is kept and its request dropped.
pub async fn run_due_deletions(state: &AppState) -> Result<u64, ApiError> {
    let mut deleted = 0;
    for user_id in state
        .store
        .due_account_deletions(state.clock.now(), DELETION_BATCH)
        .await?
    {
        let event = NewAuditEvent::new(None, Actor::System, "account.deleted")
            .target("user", user_id.clone());
        match state.store.delete_user(&user_id, event).await {
            Ok(()) => deleted += 1,
            Err(waypost_store::StoreError::Conflict(_)) => {
                let event = NewAuditEvent::new(None, Actor::System, "account.deletion_cancelled")
                    .target("user", user_id.clone())
                    .details(serde_json::json!({ "reason": "last_owner" }));
                state.store.set_deletion_due(&user_id, None, event).await?;
            }
            Err(waypost_store::StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(deleted)
}
