//! Security → Workspace: the workspace's policies (second factor for every
//! member, how long message content is kept, what the shield does, which
//! conversations agents see), changed after a recent sign-in.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use waypost_core::RetentionPolicy;

use super::page::{Chrome, Page, PageError, PageForm, needs_reauth, render};
use super::security::{Tab, tabs};
use super::signin::reauth_redirect;
use crate::auth::permission::act;
use crate::error::ApiError;
use crate::ops::workspace::{self as op, Change, Settings};
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
        require_mfa,
        require_mfa_for_admins,
        content_retention,
        shield_policy,
        conversation_visibility,
        ..
    } = op::settings(state, &page.ctx()).await?;
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
