//! Security: the member's own sessions (where they are signed in), each
//! revocable at once, and two-step verification with an authenticator app
//! (passkeys have their own tab, `passkeys`).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;

use super::form::{Button, PageForm};
use super::page::{Chrome, Member, PageError, needs_reauth, render, short_time};
use crate::auth::caller::session_alive;
use crate::state::AppState;

pub struct SessionItem {
    pub id: String,
    pub device: String,
    pub ip: String,
    pub started: String,
    pub last_seen: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    chrome: Chrome,
    tabs: Vec<Tab>,
    sessions: Vec<SessionItem>,
}

/// A short description of a browser from its user agent.
fn device(agent: Option<&str>) -> String {
    let Some(a) = agent else {
        return "Unknown device".into();
    };
    let browser = ["Edg/", "Firefox/", "Chrome/", "Safari/", "curl/"]
        .into_iter()
        .find(|b| a.contains(b))
        .map(|b| match b {
            "Edg/" => "Edge",
            "Firefox/" => "Firefox",
            "Chrome/" => "Chrome",
            "Safari/" => "Safari",
            _ => "curl",
        });
    let system = ["Android", "iPhone", "iPad", "Windows", "Mac OS", "Linux"]
        .into_iter()
        .find(|s| a.contains(s));
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => s.to_owned(),
        (None, None) => a.chars().take(40).collect(),
    }
}

/// `GET /security/sessions`.
pub async fn sessions(
    State(state): State<AppState>,
    member: Member,
) -> Result<Response, PageError> {
    let me = member.session();
    let now = state.clock.now();
    let sessions = state
        .store
        .list_sessions(&me.user.id)
        .await?
        .into_iter()
        .filter(|s| session_alive(&state, s, now))
        .map(|s| SessionItem {
            current: s.id == me.session.id,
            device: device(s.user_agent.as_deref()),
            ip: s.ip.unwrap_or_else(|| "unknown".into()),
            started: short_time(s.created_at, now),
            last_seen: short_time(s.last_seen_at, now),
            id: s.id,
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &SessionsPage {
            tabs: tabs("/security/sessions", &member.chrome),
            chrome: member.chrome,
            sessions,
        },
    ))
}

/// `POST /security/sessions/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    let me = member.session();
    let event =
        waypost_core::NewAuditEvent::new(None, member.caller.actor(), "auth.session_revoked")
            .target("session", id.clone());
    if !state
        .store
        .revoke_session(
            &me.user.id,
            &id,
            state.clock.now(),
            member.origin.stamp(event),
        )
        .await?
    {
        return Err(PageError(
            waypost_store::StoreError::NotFound("session").into(),
        ));
    }
    let to = if id == me.session.id {
        "/login"
    } else {
        "/security/sessions"
    };
    Ok(Redirect::to(to).into_response())
}

#[cfg(test)]
mod tests {
    use super::device;

    #[test]
    fn names_the_browser_and_system() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";
        assert_eq!(device(Some(chrome)), "Chrome on Linux");
        assert_eq!(device(None), "Unknown device");
    }
}

/// The Security section's tabs.
pub struct Tab {
    pub label: &'static str,
    pub href: &'static str,
    pub current: bool,
}

pub fn tabs(current: &str, chrome: &Chrome) -> Vec<Tab> {
    let mut tabs = vec![
        ("Sessions", "/security/sessions"),
        ("Two-step verification", "/security/mfa"),
        ("Passkeys", "/security/passkeys"),
    ];
    if chrome.may(waypost_core::auth::Action::MembersRead) {
        tabs.push(("Members", "/security/members"));
    }
    if chrome.may(waypost_core::auth::Action::WorkspaceManage) {
        tabs.push(("Workspace", "/security/workspace"));
    }
    tabs.into_iter()
        .map(|(label, href)| Tab {
            label,
            href,
            current: href == current,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "mfa.html")]
struct MfaPage {
    chrome: Chrome,
    tabs: Vec<Tab>,
    totp: bool,
    recovery_left: i64,
    passkeys: i64,
    /// A started enrolment: the QR code as a data URI, and the URI to paste.
    enrolling: Option<(String, String)>,
    /// Recovery codes, shown once.
    codes: Vec<String>,
    error: Option<String>,
}

async fn mfa_page(
    state: &AppState,
    member: Member,
    status: StatusCode,
    enrolling: Option<(String, String)>,
    codes: Vec<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let user = crate::emails::user(state, &member.session().user.id).await?;
    Ok(render(
        status,
        &MfaPage {
            tabs: tabs("/security/mfa", &member.chrome),
            chrome: member.chrome,
            totp: user.totp_enabled,
            recovery_left: state.store.unused_recovery_codes(&user.id).await?,
            passkeys: state.store.count_passkeys(&user.id).await?,
            enrolling,
            codes,
            error,
        },
    ))
}

/// `GET /security/mfa`.
pub async fn mfa(State(state): State<AppState>, member: Member) -> Result<Response, PageError> {
    mfa_page(&state, member, StatusCode::OK, None, Vec::new(), None).await
}

#[derive(serde::Deserialize)]
pub struct MfaForm {
    action: String,
    code: Option<String>,
}

/// `POST /security/mfa`: enrol, confirm, regenerate codes or turn TOTP off.
pub async fn mfa_change(
    State(state): State<AppState>,
    member: Member,
    PageForm(f): PageForm<MfaForm>,
) -> Result<Response, PageError> {
    use crate::ops::mfa as op;
    let outcome = match f.action.as_str() {
        "enroll" => op::enroll(&state, &member.caller).await.map(|e| {
            let qr = format!(
                "data:image/svg+xml;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(e.qr_svg)
            );
            (Some((qr, e.otpauth_uri)), Vec::new())
        }),
        "confirm" => op::confirm(
            &state,
            &member.origin,
            &member.caller,
            f.code.as_deref().unwrap_or("").trim(),
        )
        .await
        .map(|codes| (None, codes)),
        "regenerate" => op::regenerate(&state, &member.origin, &member.caller)
            .await
            .map(|codes| (None, codes)),
        "disable" => op::disable(&state, &member.origin, &member.caller)
            .await
            .map(|()| (None, Vec::new())),
        _ => return Err(crate::error::unprocessable("Unknown action.").into()),
    };
    match outcome {
        Ok((enrolling, codes)) => {
            mfa_page(&state, member, StatusCode::OK, enrolling, codes, None).await
        }
        Err(e) if needs_reauth(&e) => Ok(super::signin::reauth_redirect("/security/mfa")),
        Err(e) => {
            let detail = PageError(e).detail();
            mfa_page(
                &state,
                member,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Vec::new(),
                Some(detail),
            )
            .await
        }
    }
}
