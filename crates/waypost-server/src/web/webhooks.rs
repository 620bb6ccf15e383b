//! Developers: webhook endpoints — added with a signing secret shown once,
//! changed, disabled and re-enabled, tested, replayed from a point in time,
//! their secret rotated (the old one signs alongside for 24 hours), and the
//! delivery attempts read with a resend per event.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, Utc};
use secrecy::ExposeSecret;
use serde::Deserialize;
use waypost_core::events::EventType;

use super::form::{Button, PageForm};
use super::page::{Chrome, Page, PageError, render, short_time};
use super::security::Tab;
use crate::auth::permission::act;
use crate::error::{ApiError, unprocessable};
use crate::http::webhooks::{AttemptView, EndpointView};
use crate::ops::webhook_endpoints::{self as op, EndpointChange, NewEndpoint, Replay};
use crate::state::AppState;

/// Attempts shown on an endpoint's page.
const ATTEMPTS_SHOWN: u32 = 50;

/// The Developers section's tabs.
pub fn developer_tabs(current: &str) -> Vec<Tab> {
    [
        ("API keys", "/developers/keys"),
        ("Webhooks", "/developers/webhooks"),
    ]
    .into_iter()
    .map(|(label, href)| Tab {
        label,
        href,
        current: href == current,
    })
    .collect()
}

/// A secret shown once, with what it belongs to.
pub struct Revealed {
    pub title: String,
    pub secret: String,
    pub note: String,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    tabs: Vec<Tab>,
    endpoints: Vec<EndpointView>,
    event_types: Vec<&'static str>,
    revealed: Option<Revealed>,
    /// Where the address points once a secret was shown (see `revealed.html`).
    replace_url: String,
    error: Option<String>,
}

async fn list_page(
    state: &AppState,
    page: Page<act::WebhooksManage>,
    status: StatusCode,
    revealed: Option<Revealed>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let endpoints = op::list(state, &page.ctx())
        .await?
        .into_iter()
        .map(EndpointView::from)
        .collect();
    Ok(render(
        status,
        &WebhooksPage {
            chrome: page.chrome,
            tabs: developer_tabs("/developers/webhooks"),
            endpoints,
            event_types: EventType::ALL.iter().map(|t| t.as_str()).collect(),
            revealed,
            replace_url: "/developers/webhooks".into(),
            error,
        },
    ))
}

/// `GET /developers/webhooks`.
pub async fn index(
    State(state): State<AppState>,
    page: Page<act::WebhooksManage>,
) -> Result<Response, PageError> {
    list_page(&state, page, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
pub struct EndpointForm {
    url: String,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "event_type")]
    event_types: Vec<String>,
    /// Present on the edit form only: `on` when the box is ticked.
    enabled: Option<String>,
    /// Present on the edit form, which carries every field.
    editing: Option<String>,
}

/// `POST /developers/webhooks`: the signing secret is shown in this answer only.
pub async fn create(
    State(state): State<AppState>,
    page: Page<act::WebhooksManage>,
    PageForm(f): PageForm<EndpointForm>,
) -> Result<Response, PageError> {
    let new = NewEndpoint {
        url: f.url.trim(),
        description: &f.description,
        event_types: &f.event_types,
        enabled: true,
    };
    match op::create(&state, &page.ctx(), new).await {
        Ok((record, secret)) => {
            let revealed = Revealed {
                title: format!("Endpoint {} added", record.url),
                secret: secret.expose_secret().to_owned(),
                note: "Verify each delivery's webhook-signature with it (Standard Webhooks)."
                    .into(),
            };
            list_page(&state, page, StatusCode::CREATED, Some(revealed), None).await
        }
        Err(e) => {
            let detail = PageError(e).detail();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            list_page(&state, page, status, None, Some(detail)).await
        }
    }
}

pub struct AttemptRow {
    pub view: AttemptView,
    pub when: String,
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct EndpointPage {
    chrome: Chrome,
    tabs: Vec<Tab>,
    endpoint: EndpointView,
    /// Each type, and whether the endpoint takes it by name.
    event_types: Vec<(&'static str, bool)>,
    attempts: Vec<AttemptRow>,
    revealed: Option<Revealed>,
    replace_url: String,
    notice: Option<String>,
    error: Option<String>,
}

/// What an endpoint's page shows besides the endpoint itself.
#[derive(Default)]
struct Shown {
    revealed: Option<Revealed>,
    notice: Option<String>,
    error: Option<String>,
}

async fn endpoint_page(
    state: &AppState,
    page: Page<act::WebhooksManage>,
    id: &str,
    status: StatusCode,
    shown: Shown,
) -> Result<Response, PageError> {
    let ctx = page.ctx();
    let endpoint = op::get(state, &ctx, id).await?;
    let (attempts, _) = op::attempts(state, &ctx, id, None, ATTEMPTS_SHOWN).await?;
    let now = state.clock.now();
    let attempts = attempts
        .into_iter()
        .map(|a| AttemptRow {
            when: short_time(a.attempted_at, now),
            view: a.into(),
        })
        .collect();
    let endpoint = EndpointView::from(endpoint);
    let event_types = EventType::ALL
        .iter()
        .map(|t| {
            (
                t.as_str(),
                endpoint.event_types.iter().any(|x| x == t.as_str()),
            )
        })
        .collect();
    Ok(render(
        status,
        &EndpointPage {
            chrome: page.chrome,
            tabs: developer_tabs("/developers/webhooks"),
            replace_url: format!("/developers/webhooks/{}", endpoint.id),
            endpoint,
            event_types,
            attempts,
            revealed: shown.revealed,
            notice: shown.notice,
            error: shown.error,
        },
    ))
}

/// `GET /developers/webhooks/{id}`.
pub async fn show(
    State(state): State<AppState>,
    page: Page<act::WebhooksManage>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    endpoint_page(&state, page, &id, StatusCode::OK, Shown::default()).await
}

/// The endpoint's page again: a notice when the action worked, its refusal
/// (422) when it did not.
async fn settle(
    state: &AppState,
    page: Page<act::WebhooksManage>,
    id: &str,
    outcome: Result<String, ApiError>,
) -> Result<Response, PageError> {
    let (status, shown) = match outcome {
        Ok(notice) => (
            StatusCode::OK,
            Shown {
                notice: Some(notice),
                ..Shown::default()
            },
        ),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Shown {
                error: Some(PageError(e).detail()),
                ..Shown::default()
            },
        ),
    };
    endpoint_page(state, page, id, status, shown).await
}

/// `POST /developers/webhooks/{id}`: URL, description, types, enabled.
pub async fn update(
    State(state): State<AppState>,
    page: Page<act::WebhooksManage>,
    Path(id): Path<String>,
    PageForm(f): PageForm<EndpointForm>,
) -> Result<Response, PageError> {
    if f.editing.is_none() {
        return Err(unprocessable("The form is incomplete; reload the page.").into());
    }
    let change = EndpointChange {
        url: Some(f.url.trim()),
        description: Some(&f.description),
        event_types: Some(&f.event_types),
        enabled: Some(f.enabled.is_some()),
    };
    let outcome = op::update(&state, &page.ctx(), &id, change)
        .await
        .map(|_| "Endpoint saved.".to_owned());
    settle(&state, page, &id, outcome).await
}

/// `POST /developers/webhooks/{id}/test`.
pub async fn send_test(
    State(state): State<AppState>,
    page: Page<act::WebhooksManage>,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    let outcome = op::send_test(&state, &page.ctx(), &id)
        .await
        .map(|event| format!("Test event {event} queued; its attempt appears below."));
    settle(&state, page, &id, outcome).await
}

#[derive(Deserialize)]
pub struct ReplayForm {
    /// `datetime-local`, read as UTC.
    since: String,
}

fn parse_since(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    let raw = raw.trim();
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
        .map(|t| t.and_utc())
        .map_err(|_| unprocessable("Give the time to replay from, e.g. 2026-12-07T09:00."))
}

/// `POST /developers/webhooks/{id}/replay`: every event since a time, in order.
pub async fn replay(
    State(state): State<AppState>,
    page: Page<act::WebhooksManage>,
    Path(id): Path<String>,
    PageForm(f): PageForm<ReplayForm>,
) -> Result<Response, PageError> {
    let outcome = match parse_since(&f.since) {
        Ok(since) => match op::replay(&state, &page.ctx(), &id, since).await {
            Ok(Replay::Queued(n)) => Ok(format!("{n} events queued for delivery again.")),
            Ok(Replay::TooSoon { retry_after_secs }) => Err(unprocessable(format!(
                "This endpoint was replayed less than {retry_after_secs} s ago; try again later."
            ))),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    settle(&state, page, &id, outcome).await
}

/// `POST /developers/webhooks/{id}/rotate`: the new secret is shown once.
pub async fn rotate(
    State(state): State<AppState>,
    page: Page<act::WebhooksManage>,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    match op::rotate_secret(&state, &page.ctx(), &id).await {
        Ok((secret, until)) => {
            let shown = Shown {
                revealed: Some(Revealed {
                    title: "New signing secret".into(),
                    secret: secret.expose_secret().to_owned(),
                    note: format!(
                        "The previous secret also signs until {} UTC; switch your receiver before then.",
                        until.format("%Y-%m-%d %H:%M")
                    ),
                }),
                ..Shown::default()
            };
            endpoint_page(&state, page, &id, StatusCode::OK, shown).await
        }
        Err(e) => settle(&state, page, &id, Err(e)).await,
    }
}

/// `POST /developers/webhooks/{id}/resend/{event}`: one event again, to this endpoint.
pub async fn resend(
    State(state): State<AppState>,
    page: Page<act::WebhooksManage>,
    Path((id, event)): Path<(String, String)>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    let outcome = op::resend(&state, &page.ctx(), &event, Some(&id))
        .await
        .map(|_| format!("Event {event} queued for delivery again."));
    settle(&state, page, &id, outcome).await
}

/// `POST /developers/webhooks/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    page: Page<act::WebhooksManage>,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    op::delete(&state, &page.ctx(), &id).await?;
    Ok(Redirect::to("/developers/webhooks").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_times_are_read_as_utc_and_nonsense_is_refused() {
        let t = parse_since("2026-12-07T09:30").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-07T09:30:00+00:00");
        assert!(parse_since("2026-12-07T09:30:15").is_ok());
        assert!(parse_since("yesterday").is_err());
    }
}
