//! Security → Members: who belongs to the workspace, with their role and any
//! just-in-time elevation; managers change roles, remove members, grant and
//! end elevations (after a recent sign-in) and invite people by link.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDateTime;
use waypost_core::auth::{Action, Role};

use super::form::{Button, PageForm};
use super::page::{Chrome, Page, PageError, needs_reauth, render, short_time};
use super::security::{Tab, tabs};
use super::signin::reauth_redirect;
use crate::auth::permission::act;
use crate::error::{ApiError, unprocessable};
use crate::ops::{invitations, members as op};
use crate::state::AppState;

pub struct MemberItem {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub elevated: Option<String>,
    pub since: String,
    /// Second factor on, for the access review (managers only).
    pub mfa: bool,
    /// Last sign-in, or "never".
    pub last_sign_in: String,
    /// Whether the viewer may change this member (a manager, not above them).
    pub changeable: bool,
    pub is_self: bool,
}

pub struct InvitationItem {
    pub id: String,
    pub email: String,
    pub role: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage {
    chrome: Chrome,
    tabs: Vec<Tab>,
    members: Vec<MemberItem>,
    invitations: Vec<InvitationItem>,
    can_manage: bool,
    /// Roles this member may grant.
    roles: Vec<&'static str>,
    /// A new invitation: its email and link, shown once.
    invited: Option<(String, String)>,
    error: Option<String>,
}

async fn members_page(
    state: &AppState,
    page: Page<act::MembersRead>,
    status: StatusCode,
    invited: Option<(String, String)>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let ws = page.workspace_id.to_string();
    let now = state.clock.now();
    let can_manage = page.chrome.may(Action::MembersManage);
    let me = page.session().user.id.clone();
    let members = op::list(state, &page.ctx())
        .await?
        .into_iter()
        .map(|m| MemberItem {
            elevated: m.elevated_role.map(|r| {
                let until = m.elevated_until.map(|t| short_time(t, now));
                format!("{r} until {}", until.unwrap_or_default())
            }),
            since: m.record.created_at.format("%Y-%m-%d").to_string(),
            mfa: m.record.mfa_enabled,
            last_sign_in: m
                .record
                .last_sign_in_at
                .map_or_else(|| "never".to_owned(), |t| short_time(t, now)),
            changeable: can_manage
                && m.record
                    .role
                    .parse::<Role>()
                    .is_ok_and(|r| page.role.may_grant(r)),
            is_self: m.record.user_id == me,
            user_id: m.record.user_id,
            email: m.record.email,
            role: m.record.role,
        })
        .collect();
    let invitations = if can_manage {
        crate::emails::invitations(state, &ws)
            .await?
            .into_iter()
            .filter(|i| i.accepted_at.is_none() && i.revoked_at.is_none() && i.expires_at > now)
            .map(|i| InvitationItem {
                id: i.id,
                email: i.email,
                role: i.role,
                expires: i.expires_at.format("%Y-%m-%d").to_string(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let roles = Role::ALL
        .into_iter()
        .filter(|r| page.role.may_grant(*r))
        .map(|r| r.as_str())
        .collect();
    Ok(render(
        status,
        &MembersPage {
            tabs: tabs("/security/members", &page.chrome),
            chrome: page.chrome,
            members,
            invitations,
            can_manage,
            roles,
            invited,
            error,
        },
    ))
}

/// `GET /security/members`.
pub async fn members(
    State(state): State<AppState>,
    page: Page<act::MembersRead>,
) -> Result<Response, PageError> {
    members_page(&state, page, StatusCode::OK, None, None).await
}

#[derive(serde::Deserialize)]
pub struct InviteForm {
    email: String,
    role: String,
}

/// `POST /security/members/invitations`: the link is shown once, here.
pub async fn invite(
    State(state): State<AppState>,
    manage: Page<act::MembersManage>,
    PageForm(f): PageForm<InviteForm>,
) -> Result<Response, PageError> {
    let created = match role_of(&f.role) {
        Ok(role) => {
            let (ctx, role_now) = (manage.ctx(), Some(manage.role));
            invitations::create(&state, &ctx, &manage.caller, role_now, &f.email, role).await
        }
        Err(e) => Err(e),
    };
    let page = manage.into_page()?;
    match created {
        Ok((record, token)) => {
            let invited = Some((record.email, invitations::link(&state, &token)));
            members_page(&state, page, StatusCode::CREATED, invited, None).await
        }
        Err(e) if needs_reauth(&e) => Ok(reauth_redirect("/security/members")),
        Err(e) => {
            let detail = PageError(e).detail();
            members_page(
                &state,
                page,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(detail),
            )
            .await
        }
    }
}

/// `POST /security/members/invitations/{id}/revoke`.
pub async fn revoke_invitation(
    State(state): State<AppState>,
    manage: Page<act::MembersManage>,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    invitations::revoke(&state, &manage.ctx(), &id).await?;
    Ok(Redirect::to("/security/members").into_response())
}

/// After a change to a member: the list again, or the refusal shown above it
/// (a step-up refusal sends the manager to confirm their password first).
async fn settle(
    state: &AppState,
    page: Page<act::MembersManage>,
    outcome: Result<(), ApiError>,
) -> Result<Response, PageError> {
    match outcome {
        Ok(()) => Ok(Redirect::to("/security/members").into_response()),
        Err(e) if needs_reauth(&e) => Ok(reauth_redirect("/security/members")),
        Err(e) => {
            let detail = PageError(e).detail();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            members_page(state, page.into_page()?, status, None, Some(detail)).await
        }
    }
}

fn role_of(raw: &str) -> Result<Role, ApiError> {
    raw.parse::<Role>()
        .map_err(|_| unprocessable("Choose a role from the list."))
}

#[derive(serde::Deserialize)]
pub struct RoleForm {
    role: String,
}

/// `POST /security/members/{user_id}/role`.
pub async fn change_role(
    State(state): State<AppState>,
    page: Page<act::MembersManage>,
    Path(user_id): Path<String>,
    PageForm(f): PageForm<RoleForm>,
) -> Result<Response, PageError> {
    let outcome = match role_of(&f.role) {
        Ok(role) => {
            let (ctx, own) = (page.ctx(), Some(page.role));
            op::change_role(&state, &ctx, &page.caller, own, &user_id, role).await
        }
        Err(e) => Err(e),
    };
    settle(&state, page, outcome).await
}

/// `POST /security/members/{user_id}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    page: Page<act::MembersManage>,
    Path(user_id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    let (ctx, own) = (page.ctx(), Some(page.role));
    let outcome = op::remove(&state, &ctx, &page.caller, own, &user_id).await;
    settle(&state, page, outcome).await
}

#[derive(serde::Deserialize)]
pub struct ElevationForm {
    role: String,
    /// `datetime-local`, read as UTC.
    until: String,
}

/// `POST /security/members/{user_id}/elevation`: a higher role until a time.
pub async fn elevate(
    State(state): State<AppState>,
    page: Page<act::ElevationGrant>,
    Path(user_id): Path<String>,
    PageForm(f): PageForm<ElevationForm>,
) -> Result<Response, PageError> {
    let until = NaiveDateTime::parse_from_str(f.until.trim(), "%Y-%m-%dT%H:%M")
        .map(|t| t.and_utc())
        .map_err(|_| unprocessable("Give the time the elevation ends, e.g. 2026-12-08T18:00."));
    let outcome = match (role_of(&f.role), until) {
        (Ok(role), Ok(until)) => {
            let (ctx, own) = (page.ctx(), Some(page.role));
            op::elevate(&state, &ctx, &page.caller, own, &user_id, role, until).await
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    settle(&state, page.into_page()?, outcome).await
}

/// `POST /security/members/{user_id}/elevation/end`.
pub async fn end_elevation(
    State(state): State<AppState>,
    page: Page<act::ElevationGrant>,
    Path(user_id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    let outcome = op::end_elevation(&state, &page.ctx(), &user_id).await;
    settle(&state, page.into_page()?, outcome).await
}
