//! First run: the one-time setup link printed while no user exists, and the
//! creation of a workspace with its owner (the setup page, `waypost admin
//! create-owner` and the demo use it).

use chrono::Duration;
use secrecy::ExposeSecret;
use waypost_core::audit::Actor;
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_crypto::token;
use waypost_store::Workspace;
use waypost_store::identity::NewUser;

use crate::error::ApiError;
use crate::state::AppState;

/// Creates a setup token when the database has no user; returns the link to print.
pub async fn first_run_link(state: &AppState) -> Result<Option<String>, ApiError> {
    if state.store.count_users().await? > 0 {
        return Ok(None);
    }
    let token = token::generate_session_token();
    let now = state.clock.now();
    let hash = token::hash_session_token(token.expose_secret());
    state
        .store
        .create_setup_token(&hash, now, now + Duration::hours(1))
        .await?;
    Ok(Some(format!(
        "{}/setup?token={}",
        state.config.public_url(),
        token.expose_secret()
    )))
}

/// A workspace name, trimmed, or why it is not acceptable.
pub fn validate_workspace_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err("workspace name must be 1 to 100 printable characters".into());
    }
    Ok(name.to_owned())
}

/// Creates a workspace and its owner in one transaction, audited.
pub async fn create_owner(
    state: &AppState,
    workspace_name: &str,
    email: &str,
    password_hash: String,
    actor: Actor,
) -> Result<(WorkspaceId, String), ApiError> {
    let now = state.clock.now();
    let workspace = Workspace {
        id: WorkspaceId::new(),
        name: workspace_name.to_owned(),
        created_at: now,
        updated_at: now,
    };
    let id = format!("usr_{}", ulid::Ulid::new());
    let user = NewUser {
        email: crate::emails::seal(&state.keys, "users", &id, email),
        id,
        password_hash,
        now,
        email_verified: false,
    };
    let audit = vec![
        NewAuditEvent::new(Some(workspace.id), actor.clone(), "workspace.created")
            .target("workspace", workspace.id.to_string()),
        NewAuditEvent::new(Some(workspace.id), actor, "member.added")
            .target("user", user.id.clone())
            .details(serde_json::json!({ "role": "owner" })),
    ];
    state.store.create_owner(&workspace, &user, audit).await?;
    Ok((workspace.id, user.id))
}
