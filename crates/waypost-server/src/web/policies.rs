//! Security → Workspace: the workspace's policies (second factor for every
//! member, how long message content is kept, what the shield does, which
//! conversations agents see), changed after a recent sign-in.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use waypost_core::{Action, RetentionPolicy};

use super::form::{Button, PageForm};
use super::page::{Chrome, Page, PageError, needs_reauth, render};
use super::security::{Tab, tabs};
use super::signin::reauth_redirect;
use crate::auth::caller::require_recent_auth;
use crate::auth::permission::act;
use crate::error::ApiError;
use crate::ops::workspace::{self as op, Change, Settings};
use crate::ops::workspace_deletion;
use crate::state::AppState;

const PATH: &str = "/security/workspace";

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    chrome: Chrome,
    tabs: Vec<Tab>,
    require_mfa: bool,
    require_mfa_for_admins: bool,
    admin_grace_days: u32,
    /// Days content is kept; `None` when it is not kept at all.
    retention_days: Option<u16>,
    shield_policy: &'static str,
    visibility: String,
    /// Owners see the export and deletion panel.
    can_delete: bool,
    workspace_name: String,
    grace_days: u32,
    /// When the workspace will be deleted, if that is scheduled.
    deletion_due: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn policies_page(
    state: &AppState,
    page: Page<act::WorkspaceManage>,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let Settings {
        name,
        deletion_due_at,
        require_mfa,
        require_mfa_for_admins,
        content_retention,
        shield_policy,
        conversation_visibility,
        ..
    } = op::settings(state, &page.ctx()).await?;
    let can_delete = page.chrome.may(Action::WorkspaceDelete);
    Ok(render(
        status,
        &PoliciesPage {
            tabs: tabs(PATH, &page.chrome),
            chrome: page.chrome,
            require_mfa,
            require_mfa_for_admins,
            admin_grace_days: state.config.admin_mfa_grace_days,
            retention_days: match content_retention {
                RetentionPolicy::None => None,
                RetentionPolicy::Days(d) => Some(d),
            },
            shield_policy: shield_policy.as_str(),
            visibility: conversation_visibility,
            can_delete,
            workspace_name: name,
            grace_days: state.config.workspace_deletion_grace_days,
            deletion_due: deletion_due_at.map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string()),
            notice,
            error,
        },
    ))
}

/// `GET /security/workspace`.
pub async fn show(
    State(state): State<AppState>,
    page: Page<act::WorkspaceManage>,
) -> Result<Response, PageError> {
    policies_page(&state, page, StatusCode::OK, None, None).await
}

/// `GET /security/workspace/export`: the whole workspace as a JSON lines file.
pub async fn export(
    State(state): State<AppState>,
    page: Page<act::WorkspaceManage>,
) -> Result<Response, PageError> {
    if let Err(e) = require_recent_auth(&state, &page.caller) {
        return if needs_reauth(&e) {
            Ok(reauth_redirect(PATH))
        } else {
            Err(e.into())
        };
    }
    Ok(crate::http::workspace_export::stream_export(state, &page.ctx()).await?)
}

#[derive(Deserialize)]
pub struct DeletionForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /security/workspace/deletion`: schedules the deletion (owners).
pub async fn delete(
    State(state): State<AppState>,
    page: Page<act::WorkspaceDelete>,
    PageForm(f): PageForm<DeletionForm>,
) -> Result<Response, PageError> {
    let page = page.into_page::<act::WorkspaceManage>()?;
    match workspace_deletion::request(&state, &page.ctx(), &page.caller, f.confirm.trim()).await {
        Ok(due) => {
            let notice = format!(
                "The workspace will be deleted on {}. Every owner was told; any owner can cancel until then.",
                due.format("%Y-%m-%d %H:%M UTC")
            );
            policies_page(&state, page, StatusCode::OK, Some(notice), None).await
        }
        Err(e) if needs_reauth(&e) => Ok(reauth_redirect(PATH)),
        Err(e) => {
            let error = Some(PageError(e).detail());
            policies_page(&state, page, StatusCode::UNPROCESSABLE_ENTITY, None, error).await
        }
    }
}

/// `POST /security/workspace/deletion/cancel` (owners).
pub async fn cancel_deletion(
    State(state): State<AppState>,
    page: Page<act::WorkspaceDelete>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    let page = page.into_page::<act::WorkspaceManage>()?;
    workspace_deletion::cancel(&state, &page.ctx()).await?;
    let notice = Some("The deletion was cancelled; nothing was removed.".to_owned());
    policies_page(&state, page, StatusCode::OK, notice, None).await
}

#[derive(Deserialize)]
pub struct PoliciesForm {
    /// `on` when ticked; absent otherwise.
    require_mfa: Option<String>,
    require_mfa_for_admins: Option<String>,
    /// `none` or `days`.
    retention: String,
    #[serde(default)]
    retention_days: String,
    shield_policy: String,
    visibility: String,
}

/// `POST /security/workspace`.
pub async fn update(
    State(state): State<AppState>,
    page: Page<act::WorkspaceManage>,
    PageForm(f): PageForm<PoliciesForm>,
) -> Result<Response, PageError> {
    let retention = match f.retention.as_str() {
        "none" => "none".to_owned(),
        _ => format!("days:{}", f.retention_days.trim()),
    };
    let change = Change {
        require_mfa: Some(f.require_mfa.is_some()),
        require_mfa_for_admins: Some(f.require_mfa_for_admins.is_some()),
        content_retention: Some(&retention),
        shield_policy: Some(&f.shield_policy),
        conversation_visibility: Some(&f.visibility),
    };
    let outcome: Result<_, ApiError> = op::update(&state, &page.ctx(), &page.caller, change).await;
    match outcome {
        Ok(_) => {
            let notice = Some("Policies saved.".to_owned());
            policies_page(&state, page, StatusCode::OK, notice, None).await
        }
        Err(e) if needs_reauth(&e) => Ok(reauth_redirect(PATH)),
        Err(e) => {
            let error = Some(PageError(e).detail());
            policies_page(&state, page, StatusCode::UNPROCESSABLE_ENTITY, None, error).await
        }
    }
}
