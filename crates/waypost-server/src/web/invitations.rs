//! Accepting an invitation from its link: a new person sets a password; someone
//! who already has an account joins while signed in with the invited email.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::assets;
use super::page::{PageError, error_page, render};
use super::signin::cross_site;
use crate::auth::Caller;
use crate::auth::caller::AuthRejection;
use crate::error::ApiError;
use crate::ops::invitations;
use crate::state::{AppState, RequestOrigin};

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage {
    css: String,
    token: String,
    email: String,
    role: String,
    workspace: String,
    /// The invited email already has an account.
    existing: bool,
    /// The browser is signed in as the invited account.
    signed_in: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

fn invalid() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "This invitation cannot be used",
        "It is unknown, already used, revoked or expired. Ask the person who invited you for a new one.",
    )
}

async fn show(
    state: &AppState,
    parts_caller: Option<Caller>,
    token: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let inv = match invitations::pending(state, token).await {
        Ok(inv) => inv,
        Err(ApiError::Problem(_)) => return Ok(invalid()),
        Err(e) => return Err(e.into()),
    };
    let workspace = match invitations::workspace_of(&inv) {
        Some(id) => state.store.get_workspace(id).await?.name,
        None => String::new(),
    };
    let existing = crate::emails::user_by_email(state, &inv.email)
        .await?
        .is_some();
    let signed_in = matches!(&parts_caller, Some(Caller::Session(s)) if s.user.email == inv.email);
    Ok(render(
        status,
        &InvitationPage {
            css: assets::css(),
            token: token.to_owned(),
            email: inv.email,
            role: inv.role,
            workspace,
            existing,
            signed_in,
            error,
        },
    ))
}

/// `GET /invitations/accept?token=…`: the link an invitation carries.
pub async fn form(
    State(state): State<AppState>,
    caller: Result<Caller, AuthRejection>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, PageError> {
    let caller = caller.ok();
    let Some(token) = q.token.filter(|t| !t.trim().is_empty()) else {
        return Ok(invalid());
    };
    show(&state, caller, &token, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct AcceptForm {
    token: String,
    password: Option<SecretString>,
    password_again: Option<SecretString>,
}

/// `POST /invitations/accept`: a new account with the chosen password, or the
/// signed-in account joining.
pub async fn accept(
    State(state): State<AppState>,
    origin: RequestOrigin,
    headers: HeaderMap,
    caller: Result<Caller, AuthRejection>,
    Form(f): Form<AcceptForm>,
) -> Result<Response, PageError> {
    let caller = caller.ok();
    if let Some(refused) = cross_site(&headers, &state) {
        return Ok(refused);
    }
    let outcome = match (&caller, &f.password) {
        (Some(c @ Caller::Session(_)), None) => {
            invitations::accept_as_user(&state, &origin, c, &f.token)
                .await
                .map(|()| "/inbox")
        }
        (_, Some(password)) => {
            let again = f.password_again.as_ref().map(|p| p.expose_secret());
            if again != Some(password.expose_secret()) {
                let error = Some("The two passwords differ.".to_owned());
                return show(
                    &state,
                    caller,
                    &f.token,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    error,
                )
                .await;
            }
            invitations::accept_as_new_user(&state, &origin, &f.token, password)
                .await
                .map(|()| "/login?joined=1")
        }
        (_, None) => {
            let error = Some("Choose a password.".to_owned());
            return show(
                &state,
                caller,
                &f.token,
                StatusCode::UNPROCESSABLE_ENTITY,
                error,
            )
            .await;
        }
    };
    match outcome {
        Ok(to) => Ok(Redirect::to(to).into_response()),
        Err(ApiError::Problem(p)) if p.status == 404 => Ok(invalid()),
        Err(ApiError::Problem(p)) => {
            show(&state, caller, &f.token, p.status_code(), Some(p.detail)).await
        }
        Err(e) => Err(e.into()),
    }
}
