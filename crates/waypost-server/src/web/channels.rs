//! Channels: the workspace's WhatsApp numbers — added with their Meta
//! credentials (encrypted on arrival, never shown again), checked against the
//! provider (display number, quality, messaging tier), changed (a blank
//! secret field keeps the stored one) and removed.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::{Button, PageForm};
use super::page::{Chrome, Page, PageError, render};
use crate::auth::permission::act;
use crate::error::{ApiError, unprocessable};
use crate::http::channels::{ChannelView, view};
use crate::ops::channel_check::{self, ChannelCheck};
use crate::ops::channels::{self as op, CreateChannel, Provider, UpdateChannel};
use crate::state::AppState;

/// What was typed into the add form, shown again when it is refused
/// (secrets are never echoed back).
#[derive(Deserialize, Default)]
pub struct ChannelForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    phone_number_id: String,
    #[serde(default)]
    waba_id: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    app_secret: String,
    #[serde(default)]
    verify_token: String,
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    throughput_mps: String,
}

fn optional(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn throughput(s: &str) -> Result<Option<u32>, ApiError> {
    optional(s)
        .map(|t| {
            t.parse::<u32>()
                .map_err(|_| unprocessable("Messages per second must be a whole number."))
        })
        .transpose()
}

#[derive(Template)]
#[template(path = "channels.html")]
struct ChannelsPage {
    chrome: Chrome,
    channels: Vec<ChannelView>,
    form: ChannelForm,
    error: Option<String>,
}

async fn list_page(
    state: &AppState,
    page: Page<act::ChannelsManage>,
    status: StatusCode,
    form: ChannelForm,
    error: Option<String>,
) -> Result<Response, PageError> {
    let channels = op::list(state, &page.ctx())
        .await?
        .into_iter()
        .map(|c| view(state, c))
        .collect();
    Ok(render(
        status,
        &ChannelsPage {
            chrome: page.chrome,
            channels,
            form,
            error,
        },
    ))
}

/// `GET /channels`.
pub async fn index(
    State(state): State<AppState>,
    page: Page<act::ChannelsManage>,
) -> Result<Response, PageError> {
    list_page(&state, page, StatusCode::OK, ChannelForm::default(), None).await
}

/// `POST /channels`: adds a channel, then opens it.
pub async fn create(
    State(state): State<AppState>,
    page: Page<act::ChannelsManage>,
    PageForm(f): PageForm<ChannelForm>,
) -> Result<Response, PageError> {
    let request = match (f.provider.as_str(), throughput(&f.throughput_mps)) {
        (_, Err(e)) => Err(e),
        ("cloud" | "sandbox", Ok(mps)) => Ok(CreateChannel {
            name: f.name.clone(),
            provider: if f.provider == "cloud" {
                Provider::Cloud
            } else {
                Provider::Sandbox
            },
            phone_number_id: f.phone_number_id.trim().to_owned(),
            waba_id: f.waba_id.trim().to_owned(),
            access_token: f.access_token.trim().to_owned(),
            app_secret: f.app_secret.trim().to_owned(),
            verify_token: f.verify_token.trim().to_owned(),
            base_url: optional(&f.base_url),
            api_version: optional(&f.api_version),
            throughput_mps: mps,
        }),
        _ => Err(unprocessable("Choose a provider from the list.")),
    };
    let created = match request {
        Ok(request) => op::create(&state, &page.ctx(), request).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(row) => Ok(Redirect::to(&format!("/channels/{}?added=1", row.id)).into_response()),
        Err(e) => {
            let detail = PageError(e).detail();
            let form = ChannelForm {
                access_token: String::new(),
                app_secret: String::new(),
                verify_token: String::new(),
                ..f
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            list_page(&state, page, status, form, Some(detail)).await
        }
    }
}

#[derive(Template)]
#[template(path = "channel.html")]
struct ChannelPage {
    chrome: Chrome,
    channel: ChannelView,
    check: Option<ChannelCheck>,
    notice: Option<String>,
    error: Option<String>,
}

async fn channel_page(
    state: &AppState,
    page: Page<act::ChannelsManage>,
    id: &str,
    status: StatusCode,
    check: Option<ChannelCheck>,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let channel = view(state, op::get(state, &page.ctx(), id).await?);
    Ok(render(
        status,
        &ChannelPage {
            chrome: page.chrome,
            channel,
            check,
            notice,
            error,
        },
    ))
}

#[derive(Deserialize)]
pub struct ShowQuery {
    added: Option<String>,
}

/// `GET /channels/{id}`.
pub async fn show(
    State(state): State<AppState>,
    page: Page<act::ChannelsManage>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ShowQuery>,
) -> Result<Response, PageError> {
    let notice = q.added.map(|_| {
        "Channel added. Give Meta the callback URL and verify token below, then check the connection."
            .to_owned()
    });
    channel_page(&state, page, &id, StatusCode::OK, None, notice, None).await
}

/// `POST /channels/{id}/check`: asks the provider about the number.
pub async fn check(
    State(state): State<AppState>,
    page: Page<act::ChannelsManage>,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    let result = channel_check::check(&state, &page.ctx(), &id).await?;
    channel_page(&state, page, &id, StatusCode::OK, Some(result), None, None).await
}

/// `POST /channels/{id}`: blank fields keep what is stored.
pub async fn update(
    State(state): State<AppState>,
    page: Page<act::ChannelsManage>,
    Path(id): Path<String>,
    PageForm(f): PageForm<ChannelForm>,
) -> Result<Response, PageError> {
    let outcome = match throughput(&f.throughput_mps) {
        Ok(mps) => {
            let change = UpdateChannel {
                name: optional(&f.name),
                phone_number_id: optional(&f.phone_number_id),
                waba_id: optional(&f.waba_id),
                access_token: optional(&f.access_token),
                app_secret: optional(&f.app_secret),
                verify_token: optional(&f.verify_token),
                base_url: optional(&f.base_url),
                api_version: optional(&f.api_version),
                throughput_mps: mps,
            };
            op::update(&state, &page.ctx(), &id, change)
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => {
            let notice = Some("Channel saved.".to_owned());
            channel_page(&state, page, &id, StatusCode::OK, None, notice, None).await
        }
        Err(e) => {
            let error = Some(PageError(e).detail());
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            channel_page(&state, page, &id, status, None, None, error).await
        }
    }
}

/// `POST /channels/{id}/delete`: the number stops sending and receiving; its history stays.
pub async fn delete(
    State(state): State<AppState>,
    page: Page<act::ChannelsManage>,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    op::delete(&state, &page.ctx(), &id).await?;
    Ok(Redirect::to("/channels").into_response())
}
