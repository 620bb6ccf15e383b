//! First run: while no user exists, `serve` prints a one-time `/setup?token=…`
//! link (valid one hour) whose page creates the first workspace and its owner.
//! The token doubles as the form's CSRF token.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use secrecy::SecretString;
use serde::Deserialize;
use waypost_core::audit::Actor;
use waypost_core::auth::Email;
use waypost_crypto::token;

use super::{ApiError, Problem, unprocessable};
use crate::ops::accounts::hash_new_password;
use crate::ops::setup::{create_owner, validate_workspace_name};
use crate::state::AppState;

/// Pages may load nothing from anywhere; the form posts only to us.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

fn page(status: StatusCode, body: String) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Waypost setup</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head>\
         <body style=\"font-family:sans-serif;max-width:32rem;margin:3rem auto\">{body}</body></html>"
    );
    (
        status,
        [(header::CONTENT_SECURITY_POLICY, PAGE_CSP)],
        Html(html),
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

/// The setup form.
pub async fn form(Query(q): Query<SetupQuery>) -> Response {
    let token = q.token.unwrap_or_default();
    page(
        StatusCode::OK,
        format!(
            "<h1>Set up Waypost</h1><form method=\"post\" action=\"/setup\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <p><label>Workspace name<br><input name=\"workspace\" required maxlength=\"100\"></label></p>\
             <p><label>Your email<br><input name=\"email\" type=\"email\" required autocomplete=\"username\"></label></p>\
             <p><label>Password (12 characters or more)<br><input name=\"password\" type=\"password\" required minlength=\"12\" autocomplete=\"new-password\"></label></p>\
             <p><button>Create workspace</button></p></form>",
            escape(&token)
        ),
    )
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    workspace: String,
    email: String,
    password: SecretString,
}

/// Creates the first workspace and owner, once.
pub async fn submit(
    State(state): State<AppState>,
    Form(form): Form<SetupForm>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let email = Email::parse(&form.email).map_err(|e| unprocessable(e.to_string()))?;
    let workspace_name = validate_workspace_name(&form.workspace).map_err(unprocessable)?;
    let hash =
        hash_new_password(&state, &form.password, &[email.as_str(), &workspace_name]).await?;
    if !state
        .store
        .consume_setup_token(&token::hash_session_token(form.token.trim()), now)
        .await?
    {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "setup-token-invalid",
            "Setup link invalid",
            "This setup link is unknown, used or expired; restart `waypost serve` for a new one.",
        )
        .into());
    }
    let (_, user_id) =
        create_owner(&state, &workspace_name, email.as_str(), hash, Actor::System).await?;
    // The address was typed, not proven: confirm it when mail is configured.
    crate::ops::email_change::verify_new_account(&state, &user_id, email.as_str()).await?;
    Ok(page(StatusCode::CREATED, "<h1>Done</h1><p>Your workspace exists. Sign in through the API at <code>POST /v1/auth/login</code>.</p>".into()))
}
