//! `/account/email?token=…`: the page a mailed address link opens. It says
//! what the link will do and does it only when the person presses the button
//! (a GET never changes anything: mail scanners open links).

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::assets;
use super::page::{PageError, error_page, render};
use super::signin::cross_site;
use crate::error::ApiError;
use crate::ops::email_change::{self, Purpose};
use crate::state::{AppState, RequestOrigin};

#[derive(Template)]
#[template(path = "email_link.html")]
struct EmailLinkPage {
    css: String,
    token: String,
    heading: &'static str,
    text: String,
    button: &'static str,
    done: bool,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

fn invalid() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "This link cannot be used",
        "It is unknown, already used or expired.",
    )
}

/// `GET /account/email?token=…`.
pub async fn form(
    State(state): State<AppState>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, PageError> {
    let Some(token) = q.token.filter(|t| !t.trim().is_empty()) else {
        return Ok(invalid());
    };
    let (record, purpose) = match email_change::pending(&state, &token).await {
        Ok(found) => found,
        Err(ApiError::Problem(_)) => return Ok(invalid()),
        Err(e) => return Err(e.into()),
    };
    let (heading, text, button) = match purpose {
        Purpose::Verify => (
            "Confirm your address",
            format!(
                "Confirm that {} is your Waypost account's address.",
                record.email
            ),
            "Confirm",
        ),
        Purpose::Change => (
            "Confirm your new address",
            format!(
                "Your Waypost account will sign in with {} from now on.",
                record.email
            ),
            "Confirm the change",
        ),
        Purpose::Undo => (
            "Undo the address change",
            format!(
                "Your Waypost account will sign in with {} again, and every session will be signed out.",
                record.email
            ),
            "Undo the change",
        ),
    };
    Ok(render(
        StatusCode::OK,
        &EmailLinkPage {
            css: assets::css(),
            token,
            heading,
            text,
            button,
            done: false,
        },
    ))
}

#[derive(Deserialize)]
pub struct LinkForm {
    token: String,
}

/// `POST /account/email`.
pub async fn confirm(
    State(state): State<AppState>,
    origin: RequestOrigin,
    headers: HeaderMap,
    Form(f): Form<LinkForm>,
) -> Result<Response, PageError> {
    if let Some(refused) = cross_site(&headers, &state) {
        return Ok(refused);
    }
    let (heading, text) = match email_change::confirm(&state, &origin, &f.token).await {
        Ok(Purpose::Verify) => ("Address confirmed", "Thank you: your address is confirmed."),
        Ok(Purpose::Change) => (
            "Address changed",
            "Your account now signs in with its new address.",
        ),
        Ok(Purpose::Undo) => (
            "Change undone",
            "Your account signs in with this address again. Every session was signed out: reset your password now.",
        ),
        Err(ApiError::Problem(p)) if p.status == 404 => return Ok(invalid()),
        Err(ApiError::Problem(p)) => {
            return Ok(error_page(
                p.status_code(),
                "This link cannot be used",
                &p.detail,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(render(
        StatusCode::OK,
        &EmailLinkPage {
            css: assets::css(),
            token: String::new(),
            heading,
            text: text.to_owned(),
            button: "",
            done: true,
        },
    ))
}
