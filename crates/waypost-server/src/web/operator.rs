//! Operator pages' sign-in. Operators are no workspace's members, so a
//! member's session never opens these pages: the operator pastes their
//! operator token (`waypost admin operator-token create`) once, and gets a
//! separate cookie, `waypost_operator`: the token's id and an expiry, signed
//! with the key ring, `HttpOnly`, `SameSite=Strict`, sent to `/operator` only,
//! valid [`OPERATOR_SESSION_SECS`]. The token itself is never stored in the
//! browser; every request looks the token up again, so revoking it ends the
//! cookie at once. Forms carry a CSRF token derived from the cookie.

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use waypost_core::NewAuditEvent;
use waypost_crypto::token;
use waypost_store::operators::OperatorTokenRecord;

use super::assets;
use super::form::{Button, expired_form, read_form};
use super::page::{NavItem, PageError, error_page, is_local_path, render};
use crate::auth::{Operator, cookies, verify_operator_token};
use crate::error::ApiError;
use crate::state::{AppState, RequestOrigin};

pub const OPERATOR_COOKIE: &str = "waypost_operator";
/// How long an operator's sign-in lasts (absolute: the pages are rarely open long).
pub const OPERATOR_SESSION_SECS: i64 = 30 * 60;
const COOKIE_PATH: &str = "/operator";
const NOTE_DOMAIN: &str = "operator.session";
const SIGN_IN: &str = "/operator/login";

/// The frame of an operator page.
pub struct OperatorChrome {
    /// The token's name and display prefix (`on-call (wpo_ab12cd…)`).
    pub who: String,
    pub csrf: String,
    pub nav: Vec<NavItem>,
    pub css: String,
    pub app_js: String,
    pub htmx_js: String,
}

/// A signed-in platform operator, with the page frame.
pub struct OperatorPage {
    pub operator: Operator,
    pub chrome: OperatorChrome,
    pub origin: RequestOrigin,
}

fn note(state: &AppState, token_id: &str, now: DateTime<Utc>) -> String {
    let claim = format!("{token_id}.{}", now.timestamp() + OPERATOR_SESSION_SECS);
    let mac = state
        .keys
        .current()
        .blind_index(NOTE_DOMAIN, claim.as_bytes());
    format!("{claim}.{}", URL_SAFE_NO_PAD.encode(mac))
}

/// The token id a cookie names, when its signature holds and it has not expired.
fn read_note(state: &AppState, note: &str, now: DateTime<Utc>) -> Option<String> {
    let (claim, mac) = note.rsplit_once('.')?;
    let (token_id, expiry) = claim.rsplit_once('.')?;
    let expected = URL_SAFE_NO_PAD.encode(
        state
            .keys
            .current()
            .blind_index(NOTE_DOMAIN, claim.as_bytes()),
    );
    let fresh = expiry.parse::<i64>().ok()? > now.timestamp();
    (token::ct_eq(mac.as_bytes(), expected.as_bytes()) && fresh).then(|| token_id.to_owned())
}

fn csrf_for(state: &AppState, cookie: &str) -> String {
    token::csrf_token(&token::hash_session_token(cookie), &state.keys.current())
}

fn to_sign_in(parts: &Parts) -> Response {
    let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    if parts.method == axum::http::Method::GET && is_local_path(next) {
        let next = percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC);
        Redirect::to(&format!("{SIGN_IN}?next={next}")).into_response()
    } else {
        Redirect::to(SIGN_IN).into_response()
    }
}

/// The live token a request's operator cookie names.
async fn signed_in_token(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(OperatorTokenRecord, String)>, PageError> {
    let Some(cookie) = cookies::value(headers, OPERATOR_COOKIE) else {
        return Ok(None);
    };
    let now = state.clock.now();
    let Some(id) = read_note(state, &cookie, now) else {
        return Ok(None);
    };
    // Operator tokens are few: the list is the lookup by id.
    let token = state
        .store
        .list_operator_tokens()
        .await?
        .into_iter()
        .find(|t| t.id == id && t.revoked_at.is_none());
    Ok(token.map(|t| (t, cookie)))
}

impl FromRequestParts<AppState> for OperatorPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Err(error_page(
                StatusCode::FORBIDDEN,
                "Operator pages take the operator sign-in",
                "Bearer tokens use the JSON API under /v1/operator.",
            ));
        }
        let Some((token, cookie)) = signed_in_token(state, &parts.headers)
            .await
            .map_err(IntoResponse::into_response)?
        else {
            return Err(to_sign_in(parts));
        };
        let now = state.clock.now();
        if token
            .last_used_at
            .is_none_or(|t| now - t > Duration::seconds(60))
        {
            state
                .store
                .touch_operator_token(&token.id, now)
                .await
                .map_err(|e| PageError::from(e).into_response())?;
        }
        let origin = RequestOrigin::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        let path = parts.uri.path();
        let nav = [
            ("Incidents", "/operator/incidents"),
            ("Backups", "/operator/backups"),
        ]
        .into_iter()
        .map(|(label, href)| NavItem {
            label,
            href,
            current: path.starts_with(href),
        })
        .collect();
        let chrome = OperatorChrome {
            who: format!("{} ({}…)", token.name, token.display_prefix),
            csrf: csrf_for(state, &cookie),
            nav,
            css: assets::css(),
            app_js: assets::app_js(),
            htmx_js: assets::htmx_js(),
        };
        Ok(Self {
            operator: Operator { token },
            chrome,
            origin,
        })
    }
}

/// A form posted from an operator page, after its CSRF token matched the operator cookie.
pub struct OperatorForm<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for OperatorForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let Some(cookie) = cookies::value(req.headers(), OPERATOR_COOKIE) else {
            return Err(expired_form());
        };
        let expected = csrf_for(state, &cookie);
        read_form(req, |t| token::ct_eq(t.as_bytes(), expected.as_bytes()))
            .await
            .map(OperatorForm)
    }
}

#[derive(Template)]
#[template(path = "operator_login.html")]
struct SignInPage<'a> {
    css: String,
    next: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    signed_out: Option<String>,
}

fn next_or_default(next: &str) -> &str {
    if next.starts_with("/operator/") && is_local_path(next) {
        next
    } else {
        "/operator/incidents"
    }
}

/// `GET /operator/login`.
pub async fn form(axum::extract::Query(q): axum::extract::Query<SignInQuery>) -> Response {
    let notice = q
        .signed_out
        .is_some()
        .then_some("You are signed out of the operator pages.");
    render(
        StatusCode::OK,
        &SignInPage {
            css: assets::css(),
            next: next_or_default(&q.next),
            error: None,
            notice,
        },
    )
}

#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
    #[serde(default)]
    next: String,
}

/// `POST /operator/login`: checks the operator token and sets the operator cookie.
pub async fn submit(
    State(state): State<AppState>,
    origin: RequestOrigin,
    headers: HeaderMap,
    axum::Form(f): axum::Form<SignInForm>,
) -> Result<Response, PageError> {
    if let Some(refused) = super::signin::cross_site(&headers, &state) {
        return Ok(refused);
    }
    let next = next_or_default(&f.next).to_owned();
    if let Some(ip) = origin.ip
        && state.limits.login_ip.check(&ip).retry_after_secs.is_some()
    {
        return Ok(refused(
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            "Too many sign-in attempts from your address; wait a minute and try again.",
        ));
    }
    let token = match verify_operator_token(&state, &origin, f.token.trim()).await {
        Ok(t) => t,
        Err(ApiError::Internal(e)) => return Err(ApiError::Internal(e).into()),
        Err(ApiError::Problem(_)) => {
            return Ok(refused(
                StatusCode::UNAUTHORIZED,
                &next,
                "That operator token is not valid or has been revoked.",
            ));
        }
    };
    let now = state.clock.now();
    let event = NewAuditEvent::new(
        None,
        Operator {
            token: token.clone(),
        }
        .actor(),
        "operator.dashboard_signed_in",
    )
    .target("operator_token", token.id.clone());
    state.audit(origin.stamp(event)).await?;
    state.store.touch_operator_token(&token.id, now).await?;
    let secure = cookies::is_secure(&state.config, &headers);
    let mut res = Redirect::to(&next).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(
            OPERATOR_COOKIE,
            &note(&state, &token.id, now),
            COOKIE_PATH,
            OPERATOR_SESSION_SECS,
            secure,
            "Strict",
        ),
    );
    Ok(res)
}

fn refused(status: StatusCode, next: &str, error: &str) -> Response {
    render(
        status,
        &SignInPage {
            css: assets::css(),
            next,
            error: Some(error),
            notice: None,
        },
    )
}

/// `POST /operator/logout`: forgets the operator cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    page: OperatorPage,
    OperatorForm(Button {}): OperatorForm<Button>,
) -> Result<Response, PageError> {
    let event = NewAuditEvent::new(None, page.operator.actor(), "operator.dashboard_signed_out")
        .target("operator_token", page.operator.token.id.clone());
    state.audit(page.origin.stamp(event)).await?;
    let secure = cookies::is_secure(&state.config, &headers);
    let mut res = Redirect::to(&format!("{SIGN_IN}?signed_out=1")).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(OPERATOR_COOKIE, "", COOKIE_PATH, 0, secure, "Strict"),
    );
    Ok(res)
}

/// `GET /operator`.
pub async fn home() -> Redirect {
    Redirect::to("/operator/incidents")
}
