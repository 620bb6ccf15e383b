//! Signing in through the browser: email and password, then a TOTP or recovery
//! code or a passkey when the account has one (the passkey ceremonies are in
//! `passkey_signin`); signing out; and the re-authentication page that
//! sensitive actions send members to (step-up), which returns them to where
//! they were. Between the two sign-in steps the browser holds only a
//! short-lived signed note naming the account, never the password.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use waypost_crypto::token;
use waypost_store::identity::UserRecord;

use super::assets;
use super::form::{Button, PageForm};
use super::page::{Chrome, Member, PageError, WORKSPACE_COOKIE, error_page, is_local_path, render};
use crate::auth::caller::origin_is_this_server;
use crate::auth::cookies;
use crate::ops::sign_in::{self, Refusal, SecondFactor};
use crate::state::{AppState, RequestOrigin};

/// The note between the password and the second factor, valid five minutes.
pub(super) const PENDING_COOKIE: &str = "waypost_signin";
const PENDING_SECS: i64 = 300;

pub enum SignInStep {
    Password {
        email: String,
    },
    /// The account's second factors on offer: a TOTP (or recovery) code, a passkey.
    SecondFactor {
        totp: bool,
        passkey: bool,
    },
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    css: String,
    app_js: String,
    step: SignInStep,
    next: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

pub(super) fn login_page(
    status: StatusCode,
    step: SignInStep,
    next: &str,
    error: Option<String>,
) -> Response {
    render(
        status,
        &LoginPage {
            css: assets::css(),
            app_js: assets::app_js(),
            step,
            next: next.to_owned(),
            error,
            notice: None,
        },
    )
}

pub(super) fn local_or_home(next: Option<&str>) -> String {
    next.filter(|n| is_local_path(n))
        .unwrap_or("/inbox")
        .to_owned()
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    /// Set after accepting an invitation.
    joined: Option<String>,
    /// Set after a password reset.
    reset: Option<String>,
}

/// `GET /login`.
pub async fn form(Query(q): Query<LoginQuery>) -> Response {
    render(
        StatusCode::OK,
        &LoginPage {
            css: assets::css(),
            app_js: assets::app_js(),
            step: SignInStep::Password {
                email: String::new(),
            },
            next: local_or_home(q.next.as_deref()),
            error: None,
            notice: if q.reset.is_some() {
                Some("Your password is changed. Sign in with the new one.")
            } else {
                q.joined
                    .is_some()
                    .then_some("Your account is ready. Sign in with your new password.")
            },
        },
    )
}

/// Sign-in forms are posted before any session exists, so cross-site posts
/// (login CSRF) are refused by the browser's own fetch metadata or Origin:
/// the refusal, if any.
pub(super) fn cross_site(headers: &HeaderMap, state: &AppState) -> Option<Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let refused = || {
        error_page(
            StatusCode::FORBIDDEN,
            "Cross-site request refused",
            "Sign in from Waypost's own sign-in page.",
        )
    };
    if let Some(site) = header("sec-fetch-site") {
        return (!matches!(site, "same-origin" | "none")).then(refused);
    }
    if let Some(origin) = header("origin") {
        return (!origin_is_this_server(state, headers, origin)).then(refused);
    }
    None
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: SecretString,
    next: Option<String>,
}

pub(super) fn refusal_text(r: &Refusal, now: DateTime<Utc>) -> (StatusCode, String) {
    match r {
        Refusal::Throttled(info) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many sign-in attempts from this address. Try again in {} seconds.",
                info.retry_after_secs.unwrap_or(60)
            ),
        ),
        Refusal::Locked(until) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Sign-in is paused for this account after repeated failures. Try again in {} minutes.",
                ((*until - now).num_seconds().max(60) + 59) / 60
            ),
        ),
        Refusal::InvalidCredentials => (
            StatusCode::UNAUTHORIZED,
            "The email or password is wrong.".to_owned(),
        ),
    }
}

/// `POST /login`: the password step.
pub async fn submit(
    State(state): State<AppState>,
    origin: RequestOrigin,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, PageError> {
    if let Some(refused) = cross_site(&headers, &state) {
        return Ok(refused);
    }
    let next = local_or_home(f.next.as_deref());
    let now = state.clock.now();
    let user = match sign_in::check_password(&state, &origin, &f.email, &f.password).await? {
        Ok(user) => user,
        Err(refusal) => {
            let (status, text) = refusal_text(&refusal, now);
            let step = SignInStep::Password { email: f.email };
            return Ok(login_page(status, step, &next, Some(text)));
        }
    };
    if !sign_in::needs_second_factor(&state, &user).await? {
        let details = serde_json::json!({ "mfa": false, "via": "dashboard" });
        return signed_in(&state, &user, &origin, &headers, details, &next).await;
    }
    let step = second_factor_step(&state, &user).await?;
    let mut res = login_page(StatusCode::OK, step, &next, None);
    let note = pending_note(&state, &user.id, now);
    let secure = cookies::is_secure(&state.config, &headers);
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(
            PENDING_COOKIE,
            &note,
            "/login",
            PENDING_SECS,
            secure,
            "Strict",
        ),
    );
    Ok(res)
}

#[derive(Deserialize)]
pub struct SecondFactorForm {
    code: String,
    next: Option<String>,
}

/// `POST /login/second-factor`: a TOTP or recovery code for the account the note names.
pub async fn second_factor(
    State(state): State<AppState>,
    origin: RequestOrigin,
    headers: HeaderMap,
    Form(f): Form<SecondFactorForm>,
) -> Result<Response, PageError> {
    if let Some(refused) = cross_site(&headers, &state) {
        return Ok(refused);
    }
    let next = local_or_home(f.next.as_deref());
    let now = state.clock.now();
    let expired = || {
        login_page(
            StatusCode::UNAUTHORIZED,
            SignInStep::Password {
                email: String::new(),
            },
            &next,
            Some("The sign-in took too long; enter your password again.".into()),
        )
    };
    let Some(user_id) = cookies::value(&headers, PENDING_COOKIE)
        .and_then(|note| read_pending_note(&state, &note, now))
    else {
        return Ok(expired());
    };
    let Ok(user) = crate::emails::user(&state, &user_id).await else {
        return Ok(expired());
    };
    if let Some(until) = user.locked_until.filter(|u| *u > now) {
        let (status, text) = refusal_text(&Refusal::Locked(until), now);
        let step = SignInStep::Password {
            email: String::new(),
        };
        return Ok(login_page(status, step, &next, Some(text)));
    }
    let code = f.code.trim().to_owned();
    let factor = if code.chars().all(|c| c.is_ascii_digit()) {
        SecondFactor::Totp(code)
    } else {
        SecondFactor::Recovery(code)
    };
    let method = match factor {
        SecondFactor::Totp(_) => "totp",
        _ => "recovery_code",
    };
    match sign_in::check_second_factor(&state, &user, &factor, now).await? {
        Ok(()) => {
            let details =
                serde_json::json!({ "mfa": true, "second_factor": method, "via": "dashboard" });
            let mut res = signed_in(&state, &user, &origin, &headers, details, &next).await?;
            let secure = cookies::is_secure(&state.config, &headers);
            res.headers_mut().append(
                header::SET_COOKIE,
                cookies::set(PENDING_COOKIE, "", "/login", 0, secure, "Strict"),
            );
            Ok(res)
        }
        Err(reason) => {
            let refusal = sign_in::record_failure(&state, &user, &origin, reason, now).await?;
            if let Refusal::Locked(_) = refusal {
                let (status, text) = refusal_text(&refusal, now);
                let step = SignInStep::Password {
                    email: String::new(),
                };
                return Ok(login_page(status, step, &next, Some(text)));
            }
            Ok(login_page(
                StatusCode::UNAUTHORIZED,
                second_factor_step(&state, &user).await?,
                &next,
                Some("That code is not right. Use the current code from your app.".into()),
            ))
        }
    }
}

/// The second-factor step for an account whose password was right.
async fn second_factor_step(state: &AppState, user: &UserRecord) -> Result<SignInStep, PageError> {
    Ok(SignInStep::SecondFactor {
        totp: user.totp_enabled,
        passkey: state.store.count_passkeys(&user.id).await? > 0,
    })
}

/// Opens the session, remembers the workspace, and goes on to `next`.
async fn signed_in(
    state: &AppState,
    user: &UserRecord,
    origin: &RequestOrigin,
    headers: &HeaderMap,
    details: serde_json::Value,
    next: &str,
) -> Result<Response, PageError> {
    let res = Redirect::to(next).into_response();
    open_session_into(state, user, origin, headers, details, res).await
}

/// Opens the session and sets its cookies (and the remembered workspace) on `res`.
pub(super) async fn open_session_into(
    state: &AppState,
    user: &UserRecord,
    origin: &RequestOrigin,
    headers: &HeaderMap,
    details: serde_json::Value,
    mut res: Response,
) -> Result<Response, PageError> {
    let (token, _) = sign_in::open_session(state, user, origin, details).await?;
    let secure = cookies::is_secure(&state.config, headers);
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        cookies::set_session(
            token.expose_secret(),
            state.config.session_absolute_timeout_secs,
            secure,
        ),
    );
    let memberships = state.store.memberships(&user.id).await?;
    let chosen = cookies::value(headers, WORKSPACE_COOKIE)
        .filter(|ws| memberships.iter().any(|m| &m.workspace_id == ws))
        .or_else(|| memberships.first().map(|m| m.workspace_id.clone()));
    if let Some(ws) = chosen {
        h.append(
            header::SET_COOKIE,
            cookies::set(
                WORKSPACE_COOKIE,
                &ws,
                "/",
                state.config.session_absolute_timeout_secs as i64,
                secure,
                "Lax",
            ),
        );
    }
    Ok(res)
}

/// `user.expiry.mac`, the MAC a keyed hash under the current key.
fn pending_note(state: &AppState, user_id: &str, now: DateTime<Utc>) -> String {
    let claim = format!("{user_id}.{}", now.timestamp() + PENDING_SECS);
    let mac = state
        .keys
        .current()
        .blind_index("signin.pending", claim.as_bytes());
    format!("{claim}.{}", URL_SAFE_NO_PAD.encode(mac))
}

pub(super) fn read_pending_note(
    state: &AppState,
    note: &str,
    now: DateTime<Utc>,
) -> Option<String> {
    let (claim, mac) = note.rsplit_once('.')?;
    let (user_id, expiry) = claim.rsplit_once('.')?;
    let expected = URL_SAFE_NO_PAD.encode(
        state
            .keys
            .current()
            .blind_index("signin.pending", claim.as_bytes()),
    );
    let fresh = expiry.parse::<i64>().ok()? > now.timestamp();
    (token::ct_eq(mac.as_bytes(), expected.as_bytes()) && fresh).then(|| user_id.to_owned())
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    member: Member,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    let s = member.session();
    let event = waypost_core::NewAuditEvent::new(None, member.caller.actor(), "auth.logout")
        .target("session", s.session.id.clone());
    state
        .store
        .revoke_session(
            &s.user.id,
            &s.session.id,
            state.clock.now(),
            member.origin.stamp(event),
        )
        .await?;
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::clear_session(cookies::is_secure(&state.config, &headers)),
    );
    Ok(res)
}

#[derive(Template)]
#[template(path = "reauth.html")]
struct ReauthPage {
    chrome: Chrome,
    next: String,
    totp: bool,
    /// Without TOTP, a member with passkeys confirms with one (as the API asks).
    passkey: bool,
    error: Option<String>,
}

/// `GET /reauth?next=`: where step-up sends a member.
pub async fn reauth_form(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    let user = &member.session().user;
    let totp = user.totp_enabled;
    let passkey = !totp && state.store.count_passkeys(&user.id).await? > 0;
    Ok(render(
        StatusCode::OK,
        &ReauthPage {
            chrome: member.chrome,
            next: local_or_home(q.next.as_deref()),
            totp,
            passkey,
            error: None,
        },
    ))
}

#[derive(Deserialize)]
pub struct ReauthForm {
    password: SecretString,
    code: Option<String>,
    next: Option<String>,
}

/// `POST /reauth`: password (and TOTP when enrolled), then back to `next`.
pub async fn reauth(
    State(state): State<AppState>,
    member: Member,
    PageForm(f): PageForm<ReauthForm>,
) -> Result<Response, PageError> {
    let next = local_or_home(f.next.as_deref());
    let now = state.clock.now();
    let user = member.session().user.clone();
    let session = member.session().session.clone();
    let passkey = !user.totp_enabled && state.store.count_passkeys(&user.id).await? > 0;
    let again = |member: Member, error: &str| {
        let totp = user.totp_enabled;
        render(
            StatusCode::UNAUTHORIZED,
            &ReauthPage {
                chrome: member.chrome,
                next: next.clone(),
                totp,
                passkey,
                error: Some(error.to_owned()),
            },
        )
    };
    if !sign_in::verify_password(&state, &user, &f.password).await? {
        sign_in::record_failure(&state, &user, &member.origin, "reauth_wrong_password", now)
            .await?;
        return Ok(again(member, "That password is not right."));
    }
    if passkey {
        // The passkey's answer goes to `/reauth/passkey/finish` (the page's script).
        return Ok(again(
            member,
            "Confirm with your passkey as well: use the button, in a browser with passkey support and JavaScript turned on.",
        ));
    }
    if user.totp_enabled {
        let code = f.code.unwrap_or_default();
        if !sign_in::check_totp(&state, &user, code.trim(), now).await? {
            return Ok(again(
                member,
                "That code is not right. Use the current code from your app.",
            ));
        }
    }
    sign_in::mark_reauthenticated(&state, &member.origin, &user, &session).await?;
    Ok(Redirect::to(&next).into_response())
}

/// Where a step-up refusal sends the member: the re-authentication page, then back.
pub fn reauth_redirect(back_to: &str) -> Response {
    Redirect::to(&format!(
        "/reauth?next={}",
        percent_encoding::utf8_percent_encode(back_to, percent_encoding::NON_ALPHANUMERIC)
    ))
    .into_response()
}

/// `GET /`: the inbox for members, the sign-in page for everyone else.
pub async fn home(headers: HeaderMap) -> Response {
    if cookies::session_token(&headers).is_some() {
        Redirect::to("/inbox").into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(local_or_home(Some("/contacts")), "/contacts");
        assert_eq!(local_or_home(Some("https://evil.example")), "/inbox");
        assert_eq!(local_or_home(None), "/inbox");
    }
}

#[derive(Deserialize)]
pub struct SwitchForm {
    workspace: String,
}

/// `POST /workspace`: acts in another of the member's workspaces from now on.
pub async fn switch_workspace(
    State(state): State<AppState>,
    member: Member,
    headers: HeaderMap,
    PageForm(f): PageForm<SwitchForm>,
) -> Result<Response, PageError> {
    let user = &member.session().user;
    let memberships = state.store.memberships(&user.id).await?;
    if !memberships.iter().any(|m| m.workspace_id == f.workspace) {
        return Err(crate::error::unprocessable("You are not a member of that workspace.").into());
    }
    let secure = cookies::is_secure(&state.config, &headers);
    let mut res = Redirect::to("/inbox").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(
            WORKSPACE_COOKIE,
            &f.workspace,
            "/",
            state.config.session_absolute_timeout_secs as i64,
            secure,
            "Lax",
        ),
    );
    Ok(res)
}
