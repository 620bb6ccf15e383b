//! Password reset pages: `/forgot` asks for a link by mail (the same answer
//! whether or not the address has an account), `/reset` sets a new password
//! with the link's token (and a code when the account has TOTP).

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
use crate::error::ApiError;
use crate::ops::password_reset;
use crate::ops::sign_in::SecondFactor;
use crate::state::{AppState, RequestOrigin};

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    css: String,
    sent: bool,
    mail_enabled: bool,
    error: Option<String>,
}

/// `GET /forgot`.
pub async fn forgot_form(State(state): State<AppState>) -> Response {
    forgot_page(&state, StatusCode::OK, false, None)
}

fn forgot_page(
    state: &AppState,
    status: StatusCode,
    sent: bool,
    error: Option<String>,
) -> Response {
    render(
        status,
        &ForgotPage {
            css: assets::css(),
            sent,
            mail_enabled: state.config.mail_enabled(),
            error,
        },
    )
}

#[derive(Deserialize)]
pub struct ForgotForm {
    email: String,
}

/// `POST /forgot`.
pub async fn forgot(
    State(state): State<AppState>,
    origin: RequestOrigin,
    headers: HeaderMap,
    Form(f): Form<ForgotForm>,
) -> Result<Response, PageError> {
    if let Some(refused) = cross_site(&headers, &state) {
        return Ok(refused);
    }
    Ok(
        match password_reset::request(&state, &origin, &f.email).await? {
            Ok(()) => forgot_page(&state, StatusCode::OK, true, None),
            Err(_) => forgot_page(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                false,
                Some("Too many requests for this address or network. Try again in an hour.".into()),
            ),
        },
    )
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    css: String,
    token: String,
    needs_code: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

fn invalid() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "This reset link cannot be used",
        "It is unknown, already used or older than 30 minutes. Ask for a new one on the sign-in page.",
    )
}

async fn show(
    state: &AppState,
    token: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let reset = match password_reset::pending(state, token).await {
        Ok(reset) => reset,
        Err(ApiError::Problem(_)) => return Ok(invalid()),
        Err(e) => return Err(e.into()),
    };
    let user = crate::emails::user(state, &reset.user_id).await?;
    Ok(render(
        status,
        &ResetPage {
            css: assets::css(),
            token: token.to_owned(),
            needs_code: user.totp_enabled,
            error,
        },
    ))
}

/// `GET /reset?token=…`: the link a reset mail carries.
pub async fn reset_form(
    State(state): State<AppState>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, PageError> {
    let Some(token) = q.token.filter(|t| !t.trim().is_empty()) else {
        return Ok(invalid());
    };
    show(&state, &token, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct ResetForm {
    token: String,
    password: SecretString,
    password_again: SecretString,
    code: Option<String>,
}

/// `POST /reset`: sets the password and sends the person to sign in.
pub async fn reset(
    State(state): State<AppState>,
    origin: RequestOrigin,
    headers: HeaderMap,
    Form(f): Form<ResetForm>,
) -> Result<Response, PageError> {
    if let Some(refused) = cross_site(&headers, &state) {
        return Ok(refused);
    }
    if f.password.expose_secret() != f.password_again.expose_secret() {
        let error = Some("The two passwords differ.".to_owned());
        return show(&state, &f.token, StatusCode::UNPROCESSABLE_ENTITY, error).await;
    }
    let factor = match f.code.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) if c.len() == 6 && c.chars().all(|d| d.is_ascii_digit()) => {
            SecondFactor::Totp(c.to_owned())
        }
        Some(c) => SecondFactor::Recovery(c.to_owned()),
        None => SecondFactor::None,
    };
    match password_reset::complete(&state, &origin, &f.token, &f.password, &factor).await {
        Ok(_) => Ok(Redirect::to("/login?reset=1").into_response()),
        Err(ApiError::Problem(p)) if p.status == 404 => Ok(invalid()),
        Err(ApiError::Problem(p)) => show(&state, &f.token, p.status_code(), Some(p.detail)).await,
        Err(e) => Err(e.into()),
    }
}
