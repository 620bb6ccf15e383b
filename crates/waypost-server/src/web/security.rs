//! Security: the member's own sessions (where they are signed in), each
//! revocable at once.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::inbox::short_time;
use super::page::{Button, Chrome, Member, PageError, PageForm, render};
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
