//! Security → Passkeys: the member's passkeys (name, added, last used), adding
//! one through the browser's authenticator (the page's script runs the
//! WebAuthn ceremony against the JSON endpoints here), renaming, and removing
//! with step-up, all through `ops::passkeys` like the API.

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::form::{Button, PageForm};
use super::page::{Chrome, Member, PageError, needs_reauth, render, short_time};
use super::security::{Tab, tabs};
use super::signin::reauth_redirect;
use crate::auth::caller::require_recent_auth;
use crate::error::{ApiError, Problem};
use crate::ops::passkeys::{self as op, Residency};
use crate::state::AppState;

const PAGE: &str = "/security/passkeys";

pub struct PasskeyItem {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: Option<String>,
}

#[derive(Template)]
#[template(path = "passkeys.html")]
struct PasskeysPage {
    chrome: Chrome,
    tabs: Vec<Tab>,
    passkeys: Vec<PasskeyItem>,
    notice: Option<String>,
    error: Option<String>,
}

async fn passkeys_page(
    state: &AppState,
    member: Member,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let now = state.clock.now();
    let passkeys = op::list(state, &member.caller)
        .await?
        .into_iter()
        .map(|p| PasskeyItem {
            created: short_time(p.created_at, now),
            last_used: p.last_used_at.map(|t| short_time(t, now)),
            id: p.id,
            name: p.name,
        })
        .collect();
    Ok(render(
        status,
        &PasskeysPage {
            tabs: tabs(PAGE, &member.chrome),
            chrome: member.chrome,
            passkeys,
            notice,
            error,
        },
    ))
}

#[derive(Deserialize)]
pub struct Done {
    added: Option<String>,
    renamed: Option<String>,
    removed: Option<String>,
}

/// `GET /security/passkeys`.
pub async fn index(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    let notice = if let Some(name) = q.added {
        Some(format!(
            "“{name}” is added. Use it at your next sign-in instead of your password."
        ))
    } else if let Some(name) = q.renamed {
        Some(format!("The passkey is now called “{name}”."))
    } else {
        q.removed
            .map(|_| "The passkey is removed; it no longer signs you in.".to_owned())
    };
    passkeys_page(&state, member, StatusCode::OK, notice, None).await
}

fn back_with(key: &str, name: &str) -> String {
    format!(
        "{PAGE}?{key}={}",
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
    )
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

/// `POST /security/passkeys`: reached only without the page's script or
/// WebAuthn; asks for the step-up first, then says what is missing.
pub async fn without_script(
    State(state): State<AppState>,
    member: Member,
    PageForm(_): PageForm<NameForm>,
) -> Result<Response, PageError> {
    if require_recent_auth(&state, &member.caller).is_err() {
        return Ok(reauth_redirect(PAGE));
    }
    let error = "Adding a passkey needs a browser with passkey support and JavaScript turned on.";
    passkeys_page(
        &state,
        member,
        StatusCode::BAD_REQUEST,
        None,
        Some(error.into()),
    )
    .await
}

/// A refusal for the page's script, as a problem: step-up names the
/// re-authentication page to go to (and come back from) in `redirect`.
fn json_refusal(e: ApiError) -> Response {
    if !needs_reauth(&e) {
        return e.into_response();
    }
    let ApiError::Problem(p) = e else {
        return e.into_response();
    };
    let to = format!(
        "/reauth?next={}",
        percent_encoding::utf8_percent_encode(PAGE, percent_encoding::NON_ALPHANUMERIC)
    );
    (*p).with("redirect", json!(to)).into_response()
}

/// `POST /security/passkeys/register/start`: the creation options (step-up required).
pub async fn register_start(
    State(state): State<AppState>,
    member: Member,
    PageForm(f): PageForm<NameForm>,
) -> Response {
    if let Err(e) = op::valid_name(&f.name) {
        return json_refusal(e);
    }
    match op::register_start(&state, &member.caller, Residency::Discoverable).await {
        Ok(s) => {
            Json(json!({ "challenge_id": s.challenge_id, "options": s.options })).into_response()
        }
        Err(e) => json_refusal(e),
    }
}

#[derive(Deserialize)]
pub struct FinishForm {
    challenge_id: String,
    name: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create()`, as JSON.
    credential: String,
}

/// `POST /security/passkeys/register/finish`: stores the new passkey.
pub async fn register_finish(
    State(state): State<AppState>,
    member: Member,
    PageForm(f): PageForm<FinishForm>,
) -> Response {
    let Ok(credential) = serde_json::from_str::<RegisterPublicKeyCredential>(&f.credential) else {
        return Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-credential",
            "Unreadable answer",
            "The authenticator's answer could not be read; try again.",
        )
        .into_response();
    };
    let outcome = op::register_finish(
        &state,
        &member.origin,
        &member.caller,
        &f.challenge_id,
        &f.name,
        &credential,
    )
    .await;
    match outcome {
        Ok(record) => Json(json!({ "redirect": back_with("added", &record.name) })).into_response(),
        Err(e) => json_refusal(e),
    }
}

/// `POST /security/passkeys/{id}/rename`.
pub async fn rename(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    PageForm(f): PageForm<NameForm>,
) -> Result<Response, PageError> {
    match op::rename(&state, &member.origin, &member.caller, &id, &f.name).await {
        Ok(()) => Ok(Redirect::to(&back_with("renamed", f.name.trim())).into_response()),
        Err(ApiError::Problem(p)) if p.status == 422 => {
            passkeys_page(
                &state,
                member,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(p.detail),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /security/passkeys/{id}/remove` (step-up required).
pub async fn remove(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    match op::remove(&state, &member.origin, &member.caller, &id).await {
        Ok(()) => Ok(Redirect::to(&format!("{PAGE}?removed=1")).into_response()),
        Err(e) if needs_reauth(&e) => Ok(reauth_redirect(PAGE)),
        Err(e) => Err(e.into()),
    }
}
