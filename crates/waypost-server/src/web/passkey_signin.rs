//! Signing in with a passkey from the sign-in page: passwordless (the
//! authenticator names the account) and as the second factor after the
//! password (the signed note from the password step names the account); and
//! step-up with password and passkey for members without TOTP, as the API
//! asks. The page's script runs the WebAuthn ceremony against these JSON
//! endpoints; without it the forms post where the server says what is missing.

use axum::Form;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use webauthn_rs::prelude::PublicKeyCredential;

use super::form::PageForm;
use super::page::{Member, PageError};
use super::signin::{
    PENDING_COOKIE, SignInStep, cross_site, local_or_home, login_page, open_session_into,
    read_pending_note, refusal_text,
};
use crate::auth::cookies;
use crate::error::{ApiError, Problem};
use crate::ops::passkey_sign_in as op;
use crate::ops::passkeys::{Started, check_step_up_assertion, second_factor_challenge};
use crate::ops::sign_in::{self, Refusal};
use crate::state::{AppState, RequestOrigin};

/// A refusal the page's script shows beside the form: a problem whose
/// `detail` is written for the member.
fn error(status: StatusCode, slug: &str, detail: impl Into<String>) -> Response {
    let title = match status {
        StatusCode::UNAUTHORIZED => "Not accepted",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        _ => "Start again",
    };
    Problem::new(status, slug, title, detail).into_response()
}

fn started(s: Started) -> Response {
    Json(json!({ "challenge_id": s.challenge_id, "options": s.options })).into_response()
}

fn too_late() -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-challenge",
        "The passkey sign-in took too long or was already used; try again.",
    )
}

fn refused(refusal: &Refusal, now: chrono::DateTime<chrono::Utc>) -> Response {
    let (status, text) = match refusal {
        Refusal::InvalidCredentials => (
            StatusCode::UNAUTHORIZED,
            "That passkey was not accepted. Use a passkey you added to your Waypost account."
                .to_owned(),
        ),
        other => refusal_text(other, now),
    };
    let slug = match refusal {
        Refusal::Throttled(_) => "rate-limited",
        Refusal::Locked(_) => "locked",
        Refusal::InvalidCredentials => "invalid-credentials",
    };
    error(status, slug, text)
}

#[derive(Deserialize)]
pub struct NextForm {
    next: Option<String>,
}

/// `POST /login/passkey`: reached only without the page's script or WebAuthn.
pub async fn without_script(Form(f): Form<NextForm>) -> Response {
    login_page(
        StatusCode::BAD_REQUEST,
        SignInStep::Password {
            email: String::new(),
        },
        &local_or_home(f.next.as_deref()),
        Some(
            "Signing in with a passkey needs a browser with passkey support and JavaScript turned on. Sign in with your password instead."
                .into(),
        ),
    )
}

/// `POST /login/passkey/start`: options for any passkey of this site.
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if let Some(refused) = cross_site(&headers, &state) {
        return Ok(refused);
    }
    Ok(started(op::discover_start(&state).await?))
}

#[derive(Deserialize)]
pub struct AssertionForm {
    challenge_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, as JSON.
    credential: String,
    next: Option<String>,
}

fn parse_credential(raw: &str) -> Option<PublicKeyCredential> {
    serde_json::from_str(raw).ok()
}

fn unreadable() -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-credential",
        "The authenticator's answer could not be read; try again.",
    )
}

/// The session cookies and where the page goes next.
async fn signed_in(
    state: &AppState,
    origin: &RequestOrigin,
    headers: &HeaderMap,
    user: &waypost_store::identity::UserRecord,
    details: serde_json::Value,
    next: &str,
) -> Result<Response, PageError> {
    let res = Json(json!({ "redirect": next })).into_response();
    let mut res = open_session_into(state, user, origin, headers, details, res).await?;
    let secure = cookies::is_secure(&state.config, headers);
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(PENDING_COOKIE, "", "/login", 0, secure, "Strict"),
    );
    Ok(res)
}

/// `POST /login/passkey/finish`: the passwordless answer; signs in.
pub async fn finish(
    State(state): State<AppState>,
    origin: RequestOrigin,
    headers: HeaderMap,
    Form(f): Form<AssertionForm>,
) -> Result<Response, PageError> {
    if let Some(refused) = cross_site(&headers, &state) {
        return Ok(refused);
    }
    let Some(credential) = parse_credential(&f.credential) else {
        return Ok(unreadable());
    };
    let now = state.clock.now();
    match op::discover_finish(&state, &origin, &f.challenge_id, &credential).await {
        Ok(Ok((user, passkey))) => {
            let details = json!({
                "mfa": true, "method": "passkey", "passkey_id": passkey.id, "via": "dashboard",
            });
            let next = local_or_home(f.next.as_deref());
            signed_in(&state, &origin, &headers, &user, details, &next).await
        }
        Ok(Err(refusal)) => Ok(refused(&refusal, now)),
        Err(ApiError::Problem(p)) if p.kind.ends_with("/invalid-challenge") => Ok(too_late()),
        Err(e) => Err(e.into()),
    }
}

/// The account the password step's note names, if it is still fresh.
async fn pending_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<waypost_store::identity::UserRecord>, PageError> {
    let now = state.clock.now();
    let Some(user_id) = cookies::value(headers, PENDING_COOKIE)
        .and_then(|note| read_pending_note(state, &note, now))
    else {
        return Ok(None);
    };
    match state.store.get_user_sealed(&user_id).await {
        Ok(user) => Ok(Some(crate::emails::open_user(state, user).await?)),
        Err(waypost_store::StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn start_over() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "sign-in-expired",
        "The sign-in took too long; start over with your password.",
    )
}

/// `POST /login/passkey/second-factor/start`: options for the account's passkeys.
pub async fn second_factor_start(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if let Some(refused) = cross_site(&headers, &state) {
        return Ok(refused);
    }
    let Some(user) = pending_user(&state, &headers).await? else {
        return Ok(start_over());
    };
    match second_factor_challenge(&state, &user).await? {
        Some(s) => Ok(started(s)),
        None => Ok(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no-passkey",
            "This account has no passkey; use your authenticator app's code.",
        )),
    }
}

/// `POST /login/passkey/second-factor/finish`: the passkey answer after the password.
pub async fn second_factor_finish(
    State(state): State<AppState>,
    origin: RequestOrigin,
    headers: HeaderMap,
    Form(f): Form<AssertionForm>,
) -> Result<Response, PageError> {
    if let Some(refused) = cross_site(&headers, &state) {
        return Ok(refused);
    }
    let Some(user) = pending_user(&state, &headers).await? else {
        return Ok(start_over());
    };
    let Some(credential) = parse_credential(&f.credential) else {
        return Ok(unreadable());
    };
    let now = state.clock.now();
    match op::second_factor_finish(&state, &origin, &user, &f.challenge_id, &credential).await? {
        None => Ok(too_late()),
        Some(Ok(passkey)) => {
            let details = json!({
                "mfa": true, "second_factor": "passkey", "passkey_id": passkey.id, "via": "dashboard",
            });
            let next = local_or_home(f.next.as_deref());
            signed_in(&state, &origin, &headers, &user, details, &next).await
        }
        Some(Err(refusal)) => Ok(refused(&refusal, now)),
    }
}

#[derive(Deserialize)]
pub struct StepUpForm {
    password: secrecy::SecretString,
    challenge_id: Option<String>,
    credential: Option<String>,
    next: Option<String>,
}

/// The password of a step-up; a wrong one counts toward the lockout.
async fn step_up_password(
    state: &AppState,
    member: &Member,
    f: &StepUpForm,
) -> Result<Option<Response>, PageError> {
    let user = &member.session().user;
    if sign_in::verify_password(state, user, &f.password).await? {
        return Ok(None);
    }
    let now = state.clock.now();
    sign_in::record_failure(state, user, &member.origin, "reauth_wrong_password", now).await?;
    Ok(Some(error(
        StatusCode::UNAUTHORIZED,
        "invalid-credentials",
        "That password is not right.",
    )))
}

/// `POST /reauth/passkey/start`: after the password, options for the member's passkeys.
pub async fn step_up_start(
    State(state): State<AppState>,
    member: Member,
    PageForm(f): PageForm<StepUpForm>,
) -> Result<Response, PageError> {
    if let Some(refused) = step_up_password(&state, &member, &f).await? {
        return Ok(refused);
    }
    match second_factor_challenge(&state, &member.session().user).await? {
        Some(s) => Ok(started(s)),
        None => Ok(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no-passkey",
            "You have no passkey any more; reload the page.",
        )),
    }
}

/// `POST /reauth/passkey/finish`: password and passkey, then back to `next`.
pub async fn step_up_finish(
    State(state): State<AppState>,
    member: Member,
    PageForm(f): PageForm<StepUpForm>,
) -> Result<Response, PageError> {
    if let Some(refused) = step_up_password(&state, &member, &f).await? {
        return Ok(refused);
    }
    let Some(credential) = parse_credential(f.credential.as_deref().unwrap_or("")) else {
        return Ok(unreadable());
    };
    let user = &member.session().user;
    let challenge_id = f.challenge_id.as_deref().unwrap_or("");
    if !check_step_up_assertion(&state, user, challenge_id, &credential).await? {
        return Ok(error(
            StatusCode::UNAUTHORIZED,
            "invalid-credentials",
            "That passkey was not accepted; try again.",
        ));
    }
    let session = &member.session().session;
    sign_in::mark_reauthenticated(&state, &member.origin, user, session).await?;
    let next = local_or_home(f.next.as_deref());
    Ok(Json(json!({ "redirect": next })).into_response())
}
