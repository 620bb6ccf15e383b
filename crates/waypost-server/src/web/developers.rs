//! Developers: API keys — created once and shown once (after step-up), with a
//! scope checklist, expiry and address allowlist; listed by prefix; revoked.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use waypost_core::auth::Scope;

use super::form::{Button, PageForm};
use super::page::{Chrome, Page, PageError, needs_reauth, render};
use super::security::Tab;
use super::signin::reauth_redirect;
use super::webhooks::developer_tabs;
use crate::auth::permission::act;
use crate::http::api_keys::ApiKeyView;
use crate::ops::api_keys::{self, KeySpec};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    chrome: Chrome,
    tabs: Vec<Tab>,
    keys: Vec<ApiKeyView>,
    scopes: Vec<&'static str>,
    created: Option<(String, String)>,
    error: Option<String>,
}

async fn keys_page(
    state: &AppState,
    page: Page<act::ApiKeysManage>,
    status: StatusCode,
    created: Option<(String, String)>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let keys = state
        .store
        .list_api_keys(&page.workspace_id.to_string())
        .await?
        .into_iter()
        .map(ApiKeyView::from)
        .collect();
    Ok(render(
        status,
        &KeysPage {
            chrome: page.chrome,
            tabs: developer_tabs("/developers/keys"),
            keys,
            scopes: Scope::ALL.iter().map(|s| s.as_str()).collect(),
            created,
            error,
        },
    ))
}

/// `GET /developers/keys`.
pub async fn index(
    State(state): State<AppState>,
    page: Page<act::ApiKeysManage>,
) -> Result<Response, PageError> {
    keys_page(&state, page, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    name: String,
    #[serde(default)]
    scope: Vec<String>,
    expires_days: Option<String>,
    #[serde(default)]
    allowed_ips: String,
}

/// `POST /developers/keys`: the new key is shown in this answer only.
pub async fn create(
    State(state): State<AppState>,
    page: Page<act::ApiKeysManage>,
    PageForm(f): PageForm<CreateForm>,
) -> Result<Response, PageError> {
    let now = state.clock.now();
    let expires_at = match f.expires_days.as_deref().unwrap_or("") {
        "" | "never" => None,
        days => match days.parse::<i64>() {
            Ok(d) if (1..=3650).contains(&d) => Some(now + chrono::Duration::days(d)),
            _ => {
                let error = Some("Choose an expiry from the list.".to_owned());
                return keys_page(&state, page, StatusCode::UNPROCESSABLE_ENTITY, None, error)
                    .await;
            }
        },
    };
    let ips: Vec<String> = f
        .allowed_ips
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let spec = match KeySpec::parse(&f.name, &f.scope, &ips, expires_at, now) {
        Ok(spec) => spec,
        Err(e) => {
            let error = Some(format!("The key was not created: {e}."));
            return keys_page(&state, page, StatusCode::UNPROCESSABLE_ENTITY, None, error).await;
        }
    };
    match api_keys::create(&state, &page.ctx(), &page.caller, spec).await {
        Ok((key, record)) => {
            let created = Some((record.name, key));
            keys_page(&state, page, StatusCode::CREATED, created, None).await
        }
        Err(e) if needs_reauth(&e) => Ok(reauth_redirect("/developers/keys")),
        Err(e) => Err(e.into()),
    }
}

/// `POST /developers/keys/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    page: Page<act::ApiKeysManage>,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    api_keys::revoke(&state, &page.ctx(), &id).await?;
    Ok(Redirect::to("/developers/keys").into_response())
}
