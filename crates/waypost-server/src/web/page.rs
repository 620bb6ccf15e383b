//! What every page shares: the signed-in member ([`Page`], the same
//! authentication and permission check as the JSON API), the frame around the
//! content ([`Chrome`]: navigation by role, CSRF token, asset URLs), and
//! errors shown as pages instead of problem documents (a missing or ended
//! session goes to the sign-in page). Forms are read in `form`.

use std::marker::PhantomData;

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use waypost_core::WorkspaceId;
use waypost_core::auth::{Action, Role, role_allows};
use waypost_crypto::token;

use super::assets;
use crate::auth::caller::AuthRejection;
use crate::auth::permission::{RequiredAction, WORKSPACE_HEADER, role_forbidden};
use crate::auth::{Authorized, Caller, SessionCaller, WorkspaceCaller};
use crate::error::ApiError;
use crate::ops::Ctx;
use crate::state::{AppState, RequestOrigin};

/// Pages load scripts, styles and images from this server only, and nothing inline.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The workspace a member chose, for members of several.
pub const WORKSPACE_COOKIE: &str = "waypost_workspace";

/// One navigation entry.
pub struct NavItem {
    pub label: &'static str,
    pub href: &'static str,
    pub current: bool,
}

/// The sections (label, link, path prefix), each shown only to roles whose
/// permission opens it.
const SECTIONS: [(&str, &str, &str, Option<Action>); 10] = [
    ("Inbox", "/inbox", "/inbox", Some(Action::MessagesRead)),
    (
        "Contacts",
        "/contacts",
        "/contacts",
        Some(Action::ContactsRead),
    ),
    (
        "Audiences",
        "/audiences/segments",
        "/audiences",
        Some(Action::ContactsRead),
    ),
    (
        "Templates",
        "/templates",
        "/templates",
        Some(Action::TemplatesRead),
    ),
    (
        "Campaigns",
        "/campaigns",
        "/campaigns",
        Some(Action::CampaignsManage),
    ),
    (
        "Channels",
        "/channels",
        "/channels",
        Some(Action::ChannelsManage),
    ),
    (
        "Developers",
        "/developers/keys",
        "/developers",
        Some(Action::ApiKeysManage),
    ),
    ("Shield", "/shield", "/shield", Some(Action::ShieldScan)),
    ("Audit", "/audit", "/audit", Some(Action::AuditRead)),
    ("Security", "/security/sessions", "/security", None),
];

/// A workspace the member may switch to.
pub struct WorkspaceChoice {
    pub id: String,
    pub name: String,
    pub current: bool,
}

/// The frame of a signed-in page.
pub struct Chrome {
    pub email: String,
    pub workspace_name: String,
    /// Every workspace of the member, when there is more than one.
    pub workspaces: Vec<WorkspaceChoice>,
    pub role: Role,
    pub csrf: String,
    pub nav: Vec<NavItem>,
    pub css: String,
    pub app_js: String,
    pub htmx_js: String,
}

impl Chrome {
    pub fn role_name(&self) -> &'static str {
        self.role.as_str()
    }

    /// Whether the member's role permits `action` (to hide what they cannot do).
    pub fn may(&self, action: Action) -> bool {
        role_allows(self.role, action)
    }
}

/// A signed-in member allowed to perform `A`, with the page frame.
pub struct Page<A> {
    pub caller: Caller,
    pub workspace_id: WorkspaceId,
    pub role: Role,
    pub chrome: Chrome,
    pub origin: RequestOrigin,
    _action: PhantomData<A>,
}

impl<A> Page<A> {
    pub fn session(&self) -> &SessionCaller {
        match &self.caller {
            Caller::Session(s) => s,
            Caller::ApiKey(_) => unreachable!("pages admit sessions only"),
        }
    }

    /// The operation context of this member in this workspace.
    pub fn ctx(&self) -> Ctx {
        Ctx::new(self.workspace_id, self.caller.actor(), self.origin.clone())
    }

    /// The same member for another action (a form that changes something and
    /// then shows a page), checked against the role without signing in again.
    pub fn into_page<B: RequiredAction>(self) -> Result<Page<B>, PageError> {
        if !role_allows(self.role, B::ACTION) {
            return Err(PageError(role_forbidden(self.role, B::ACTION)));
        }
        Ok(Page {
            caller: self.caller,
            workspace_id: self.workspace_id,
            role: self.role,
            chrome: self.chrome,
            origin: self.origin,
            _action: PhantomData,
        })
    }
}

impl<A: RequiredAction> FromRequestParts<AppState> for Page<A> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if let Some(refused) = prepare(parts) {
            return Err(refused);
        }
        let auth = match Authorized::<A>::from_request_parts(parts, state).await {
            Ok(auth) => auth,
            Err(AuthRejection::Limited(res)) => return Err(res),
            Err(AuthRejection::Problem(e)) if needs_enrolment(&e) => {
                return Err(Redirect::to(ENROLMENT_PAGE).into_response());
            }
            Err(AuthRejection::Problem(e)) => return Err(PageError(e).into_response_for(parts)),
        };
        let m = finish(parts, state, auth.caller, auth.workspace_id, auth.role).await?;
        Ok(Self {
            caller: m.caller,
            workspace_id: m.workspace_id,
            role: m.role,
            chrome: m.chrome,
            origin: m.origin,
            _action: PhantomData,
        })
    }
}

/// A signed-in member in their workspace, for pages every role may use
/// (their own sessions, re-authentication).
pub struct Member {
    pub caller: Caller,
    pub workspace_id: WorkspaceId,
    pub role: Role,
    pub chrome: Chrome,
    pub origin: RequestOrigin,
}

impl Member {
    pub fn session(&self) -> &SessionCaller {
        match &self.caller {
            Caller::Session(s) => s,
            Caller::ApiKey(_) => unreachable!("pages admit sessions only"),
        }
    }
}

impl FromRequestParts<AppState> for Member {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if let Some(refused) = prepare(parts) {
            return Err(refused);
        }
        let wc = match WorkspaceCaller::from_request_parts(parts, state).await {
            Ok(wc) => wc,
            Err(AuthRejection::Limited(res)) => return Err(res),
            Err(AuthRejection::Problem(e)) if needs_enrolment(&e) => {
                return enrolling_member(parts, state).await;
            }
            Err(AuthRejection::Problem(e)) => return Err(PageError(e).into_response_for(parts)),
        };
        finish(parts, state, wc.caller, wc.workspace_id, wc.role).await
    }
}

/// Where members of a workspace that requires MFA go until they have enrolled.
const ENROLMENT_PAGE: &str = "/security/mfa";

fn needs_enrolment(e: &ApiError) -> bool {
    matches!(e, ApiError::Problem(p) if p.kind.ends_with("/mfa-enrollment-required"))
}

/// A member whose workspace requires MFA they have not set up yet: only the
/// enrolment pages (app and passkeys) and re-authentication are open to them; anything else
/// sends them there.
async fn enrolling_member(parts: &mut Parts, state: &AppState) -> Result<Member, Response> {
    let path = parts.uri.path();
    // A passkey satisfies the requirement as well as an authenticator app.
    if path != ENROLMENT_PAGE && path != "/reauth" && !path.starts_with("/security/passkeys") {
        return Err(Redirect::to(ENROLMENT_PAGE).into_response());
    }
    let caller = Caller::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    let Caller::Session(session) = &caller else {
        return Err(api_key_refused());
    };
    let named = parts
        .headers
        .get(WORKSPACE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let memberships = state
        .store
        .memberships(&session.user.id)
        .await
        .map_err(|e| PageError(e.into()).into_response())?;
    let membership = memberships
        .into_iter()
        .find(|m| named.as_deref().is_none_or(|n| n == m.workspace_id))
        .ok_or_else(|| {
            PageError(waypost_store::StoreError::NotFound("workspace").into()).into_response()
        })?;
    let workspace_id = WorkspaceId::parse(&membership.workspace_id)
        .map_err(|_| PageError(anyhow::anyhow!("malformed workspace id").into()).into_response())?;
    let role = membership
        .effective_role(state.clock.now())
        .parse::<Role>()
        .map_err(|_| PageError(anyhow::anyhow!("unknown role").into()).into_response())?;
    finish(parts, state, caller, workspace_id, Some(role)).await
}

fn api_key_refused() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Pages are for signed-in members",
        "API keys use the JSON API under /v1.",
    )
}

/// Refuses bearer keys (the refusal) and names the chosen workspace for the permission check.
fn prepare(parts: &mut Parts) -> Option<Response> {
    if parts.headers.contains_key(header::AUTHORIZATION) {
        return Some(api_key_refused());
    }
    if !parts.headers.contains_key(WORKSPACE_HEADER)
        && let Some(ws) = crate::auth::cookies::value(&parts.headers, WORKSPACE_COOKIE)
        && let Ok(v) = HeaderValue::from_str(&ws)
    {
        parts.headers.insert(WORKSPACE_HEADER, v);
    }
    None
}

async fn finish(
    parts: &mut Parts,
    state: &AppState,
    caller: Caller,
    workspace_id: WorkspaceId,
    role: Option<Role>,
) -> Result<Member, Response> {
    let (Caller::Session(session), Some(role)) = (&caller, role) else {
        return Err(api_key_refused());
    };
    let origin = RequestOrigin::from_request_parts(parts, state)
        .await
        .unwrap_or_else(|never| match never {});
    let chrome = chrome(state, session, workspace_id, role, parts.uri.path())
        .await
        .map_err(|e| PageError(e).into_response_for(parts))?;
    Ok(Member {
        caller,
        workspace_id,
        role,
        chrome,
        origin,
    })
}

async fn chrome(
    state: &AppState,
    session: &SessionCaller,
    workspace_id: WorkspaceId,
    role: Role,
    path: &str,
) -> Result<Chrome, ApiError> {
    let workspace = workspace_id.to_string();
    let memberships = state.store.memberships(&session.user.id).await?;
    let workspace_name = memberships
        .iter()
        .find(|m| m.workspace_id == workspace)
        .map(|m| m.workspace_name.clone())
        .unwrap_or_default();
    // Offered only to members of more than one workspace.
    let workspaces = if memberships.len() > 1 {
        memberships
            .into_iter()
            .map(|m| WorkspaceChoice {
                current: m.workspace_id == workspace,
                id: m.workspace_id,
                name: m.workspace_name,
            })
            .collect()
    } else {
        Vec::new()
    };
    let nav = SECTIONS
        .iter()
        .filter(|(_, _, _, action)| action.is_none_or(|a| role_allows(role, a)))
        .map(|(label, href, prefix, _)| NavItem {
            label,
            href,
            current: path.starts_with(prefix),
        })
        .collect();
    Ok(Chrome {
        email: session.user.email.clone(),
        workspace_name,
        workspaces,
        role,
        csrf: token::csrf_token(&session.token_hash, &state.keys.current()),
        nav,
        css: assets::css(),
        app_js: assets::app_js(),
        htmx_js: assets::htmx_js(),
    })
}

/// `09:41` today, `3 Dec` before.
pub fn short_time(t: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%-d %b").to_string()
    }
}

/// Renders a template as a page with the dashboard's CSP.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_CSP),
            )],
            Html(html),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The page could not be shown. Try again; if it persists, tell your administrator.",
            )
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    detail: &'a str,
    css: String,
}

/// A standalone error page (no navigation: the caller may not be signed in).
pub fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let page = ErrorPage {
        title,
        detail,
        css: assets::css(),
    };
    let html = page
        .render()
        .unwrap_or_else(|_| format!("<!doctype html><title>{status}</title>"));
    (
        status,
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        )],
        Html(html),
    )
        .into_response()
}

/// An operation's refusal, shown as a page.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<anyhow::Error> for PageError {
    fn from(e: anyhow::Error) -> Self {
        Self(ApiError::Internal(e))
    }
}

impl From<waypost_store::StoreError> for PageError {
    fn from(e: waypost_store::StoreError) -> Self {
        Self(e.into())
    }
}

impl PageError {
    /// A 401 sends the browser to sign in and come back; others become error pages.
    fn into_response_for(self, parts: &Parts) -> Response {
        if let ApiError::Problem(p) = &self.0
            && p.status == 401
        {
            return sign_in_redirect(parts.uri.path_and_query().map(|p| p.as_str()));
        }
        self.into_response()
    }

    /// The detail to show next to a form, for refusals the member can fix.
    pub fn detail(&self) -> String {
        match &self.0 {
            ApiError::Problem(p) => p.detail.clone(),
            ApiError::Internal(_) => "Something went wrong; try again.".into(),
        }
    }
}

/// A step-up refusal: the page sends the member to `/reauth` and back.
pub fn needs_reauth(e: &ApiError) -> bool {
    matches!(e, ApiError::Problem(p) if p.kind.ends_with("/reauth-required"))
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self.0 {
            ApiError::Problem(p) if p.status == 401 => sign_in_redirect(None),
            ApiError::Problem(p) => {
                let title = match p.status {
                    403 => "You don't have access to this",
                    404 => "Not found",
                    _ => p.title.as_str(),
                };
                error_page(p.status_code(), title, &p.detail)
            }
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error on a page");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The request failed on our side. Try again; if it persists, tell your administrator.",
                )
            }
        }
    }
}

/// `303` to the sign-in page, returning to `next` (a local path) afterwards.
pub fn sign_in_redirect(next: Option<&str>) -> Response {
    match next.filter(|n| is_local_path(n)) {
        Some(next) => Redirect::to(&format!(
            "/login?next={}",
            percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
        ))
        .into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

/// Whether `next` is a path on this server (not `//evil.example` or a URL).
pub fn is_local_path(next: &str) -> bool {
    next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && next.len() <= 512
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert!(is_local_path("/inbox?filter=mine"));
        assert!(!is_local_path("//evil.example/x"));
        assert!(!is_local_path("https://evil.example"));
        assert!(!is_local_path("/\\evil.example"));
        assert!(!is_local_path(""));
    }
}
