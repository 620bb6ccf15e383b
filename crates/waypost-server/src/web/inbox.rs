//! The inbox: conversations with their 24-hour window, the thread with
//! statuses updating live, replies (a session message inside the window, an
//! approved template outside it), and assign, label, note, close. Everything
//! goes through the operations the JSON API uses, under the same permissions.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use waypost_core::auth::Action;
use waypost_core::redact::mask_phone;
use waypost_store::conversations::ConversationFilter;
use waypost_store::templates::TemplateFilter;

use super::page::{Chrome, Page, PageError, render, short_time};
use super::thread::{MessageItem, message_items};
use crate::auth::permission::act;
use crate::messaging::identity::contact_identity;
use crate::ops::conversations::{self, Conversation, Viewer};
use crate::state::AppState;

/// Template parameters the reply form offers (`p1`…`p5`).
const MAX_PARAMS: u32 = 5;

/// The event types that change what the inbox shows.
const LIVE_TYPES: &str = "message.received,message.sent,message.delivered,message.read,message.failed,message.flagged,conversation.assigned,conversation.unassigned,conversation.closed,conversation.reopened,conversation.pending,conversation.labelled,conversation.note_added,conversation.read";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Mine,
    Unassigned,
    All,
    Closed,
}

impl Filter {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("mine") => Filter::Mine,
            Some("unassigned") => Filter::Unassigned,
            Some("closed") => Filter::Closed,
            _ => Filter::All,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Filter::Mine => "mine",
            Filter::Unassigned => "unassigned",
            Filter::All => "all",
            Filter::Closed => "closed",
        }
    }

    fn to_store(self, me: &str) -> ConversationFilter {
        let mut f = ConversationFilter::default();
        match self {
            Filter::Mine => {
                f.assignee = Some(Some(me.to_owned()));
                f.status = Some("open".into());
            }
            Filter::Unassigned => {
                f.assignee = Some(None);
                f.status = Some("open".into());
            }
            Filter::All => {}
            Filter::Closed => f.status = Some("closed".into()),
        }
        f
    }
}

pub struct FilterLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

fn filter_links(current: Filter) -> Vec<FilterLink> {
    [
        ("All", Filter::All),
        ("Mine", Filter::Mine),
        ("Unassigned", Filter::Unassigned),
        ("Closed", Filter::Closed),
    ]
    .into_iter()
    .map(|(label, f)| FilterLink {
        label,
        href: format!("/inbox?filter={}", f.as_str()),
        current: f == current,
    })
    .collect()
}

/// One row of the conversation list.
pub struct ConversationItem {
    pub id: String,
    pub name: String,
    pub status: String,
    pub unread: i64,
    pub when: String,
    pub window: String,
    pub window_open: bool,
    pub assignee: Option<String>,
    pub labels: Vec<String>,
    pub current: bool,
}

/// How the member sees a contact: name, else number (masked unless they may
/// read contacts), else username or user id.
pub fn display_name(
    state: &AppState,
    c: &waypost_store::messaging::ContactRow,
    full_numbers: bool,
) -> Result<String, PageError> {
    let name = super::contacts::contact_name(state, c)?;
    if let Some(name) = name.filter(|n| !n.trim().is_empty()) {
        return Ok(name);
    }
    let who = contact_identity(&state.keys, c).map_err(crate::error::ApiError::Internal)?;
    Ok(match (who.phone, who.username, who.user_id) {
        (Some(p), _, _) if full_numbers => p.as_str().to_owned(),
        (Some(p), _, _) => mask_phone(p.as_str()),
        (None, Some(u), _) => format!("@{u}"),
        (None, None, Some(id)) => id.to_string(),
        _ => "Unknown customer".to_owned(),
    })
}

fn window_text(expires: Option<DateTime<Utc>>, now: DateTime<Utc>) -> (String, bool) {
    match expires {
        Some(t) if t > now => {
            let hours = (t - now).num_minutes() / 60;
            let left = if hours >= 1 {
                format!("{hours} h left")
            } else {
                format!("{} min left", (t - now).num_minutes().max(1))
            };
            (format!("Window open · {left}"), true)
        }
        Some(_) => ("Window closed".to_owned(), false),
        None => ("No customer message yet".to_owned(), false),
    }
}

async fn member_emails(
    state: &AppState,
    workspace: &str,
) -> Result<Vec<(String, String, String)>, PageError> {
    Ok(crate::emails::members(state, workspace)
        .await?
        .into_iter()
        .map(|m| (m.user_id, m.email, m.role))
        .collect())
}

async fn list_items(
    state: &AppState,
    page: &Page<act::MessagesRead>,
    viewer: &Viewer,
    filter: Filter,
    current: Option<&str>,
) -> Result<Vec<ConversationItem>, PageError> {
    let me = page.session().user.id.clone();
    let ws = page.workspace_id.to_string();
    let rows = conversations::list(state, &ws, viewer, filter.to_store(&me), 100).await?;
    let members = member_emails(state, &ws).await?;
    let now = state.clock.now();
    rows.into_iter()
        .map(|c| {
            let (window, window_open) = window_text(c.window_expires_at(), now);
            Ok(ConversationItem {
                name: display_name(state, &c.contact, viewer.full_numbers)?,
                current: current == Some(c.row.id.as_str()),
                assignee: c.row.assignee_id.as_ref().map(|a| {
                    members
                        .iter()
                        .find(|m| &m.0 == a)
                        .map_or_else(|| "a former member".to_owned(), |m| m.1.clone())
                }),
                id: c.row.id,
                status: c.row.status,
                unread: c.row.unread_count,
                when: short_time(c.row.last_message_at, now),
                window,
                window_open,
                labels: c.labels,
            })
        })
        .collect()
}

#[derive(Deserialize)]
pub struct InboxQuery {
    filter: Option<String>,
    /// The open conversation, for the list partial's highlight.
    current: Option<String>,
}

/// An approved template the picker offers.
pub struct TemplateChoice {
    pub value: String,
    pub label: String,
    pub body: String,
    /// The highest `{{n}}` in the body.
    pub params: u32,
}

/// The open conversation's side of the page.
pub struct Open {
    pub id: String,
    pub name: String,
    pub status: String,
    pub window: String,
    pub window_open: bool,
    pub labels: String,
    pub assignee_id: Option<String>,
    pub messages: Vec<MessageItem>,
    pub notes: Vec<(String, String, String)>,
    pub members: Vec<(String, String)>,
    pub templates: Vec<TemplateChoice>,
    /// Parameter fields the picker shows (the most any template needs).
    pub param_slots: Vec<u32>,
    pub idempotency: String,
    pub can_send: bool,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    chrome: Chrome,
    filters: Vec<FilterLink>,
    filter: &'static str,
    items: Vec<ConversationItem>,
    open: Option<Open>,
    open_id: String,
    error: Option<String>,
    stream: String,
    live_types: &'static str,
}

#[derive(Template)]
#[template(path = "inbox_list.html")]
struct ListPartial {
    filter: &'static str,
    items: Vec<ConversationItem>,
}

#[derive(Template)]
#[template(path = "inbox_thread.html")]
struct ThreadPartial {
    open: Open,
}

fn stream_url(page: &Page<act::MessagesRead>) -> String {
    format!(
        "/v1/events/stream?workspace={}&types={LIVE_TYPES}",
        page.workspace_id
    )
}

/// `GET /inbox`.
pub async fn index(
    State(state): State<AppState>,
    page: Page<act::MessagesRead>,
    Query(q): Query<InboxQuery>,
) -> Result<Response, PageError> {
    inbox_page(state, page, None, q.filter.as_deref(), None, StatusCode::OK).await
}

/// `GET /inbox/list`: the conversation list alone, for live refreshes.
pub async fn list_partial(
    State(state): State<AppState>,
    page: Page<act::MessagesRead>,
    Query(q): Query<InboxQuery>,
) -> Result<Response, PageError> {
    let filter = Filter::parse(q.filter.as_deref());
    let viewer = Viewer::of(&page.caller, Some(page.role));
    let items = list_items(&state, &page, &viewer, filter, q.current.as_deref()).await?;
    Ok(render(
        StatusCode::OK,
        &ListPartial {
            filter: filter.as_str(),
            items,
        },
    ))
}

async fn open_conversation(
    state: &AppState,
    page: &Page<act::MessagesRead>,
    viewer: &Viewer,
    c: Conversation,
) -> Result<Open, PageError> {
    let ws = page.workspace_id.to_string();
    let now = state.clock.now();
    let rows = conversations::messages(state, &c, None, 500).await?;
    let messages = message_items(state, &ws, rows, now).await?;
    let members = member_emails(state, &ws).await?;
    let notes = conversations::notes(state, &ws, viewer, &c.row.id)
        .await?
        .into_iter()
        .map(|(n, body)| {
            let author = members
                .iter()
                .find(|m| Some(&m.0) == n.author_id.as_ref())
                .map_or_else(|| "a former member".to_owned(), |m| m.1.clone());
            (author, short_time(n.created_at, now), body)
        })
        .collect();
    let (window, window_open) = window_text(c.window_expires_at(), now);
    let templates = approved_templates(state, &ws, &c.row.channel_id).await?;
    let param_slots = (1..=templates.iter().map(|t| t.params).max().unwrap_or(0)).collect();
    Ok(Open {
        name: display_name(state, &c.contact, viewer.full_numbers)?,
        id: c.row.id.clone(),
        status: c.row.status.clone(),
        window,
        window_open,
        labels: c.labels.join(", "),
        assignee_id: c.row.assignee_id.clone(),
        messages,
        notes,
        members: members
            .into_iter()
            .filter(|m| {
                m.2.parse()
                    .is_ok_and(|r| waypost_core::auth::role_allows(r, Action::MessagesSend))
            })
            .map(|m| (m.0, m.1))
            .collect(),
        templates,
        param_slots,
        idempotency: format!("dash-{}", ulid::Ulid::new()),
        can_send: page.chrome.may(Action::MessagesSend),
    })
}

async fn approved_templates(
    state: &AppState,
    ws: &str,
    channel: &str,
) -> Result<Vec<TemplateChoice>, PageError> {
    let filter = TemplateFilter {
        status: Some("APPROVED".into()),
        channel_id: Some(channel.to_owned()),
        after: None,
    };
    let rows = state.store.list_templates(ws, &filter, 200).await?;
    Ok(rows
        .into_iter()
        .map(|t| {
            let body = serde_json::from_str::<serde_json::Value>(&t.components)
                .ok()
                .and_then(|c| {
                    c.as_array()?
                        .iter()
                        .find(|x| {
                            x["type"]
                                .as_str()
                                .is_some_and(|k| k.eq_ignore_ascii_case("body"))
                        })
                        .and_then(|x| x["text"].as_str().map(str::to_owned))
                })
                .unwrap_or_default();
            let params = (1..=MAX_PARAMS)
                .rev()
                .find(|n| body.contains(&format!("{{{{{n}}}}}")))
                .unwrap_or(0);
            TemplateChoice {
                value: format!("{}|{}", t.name, t.language),
                label: format!("{} ({}, {})", t.name, t.language, t.category),
                body,
                params,
            }
        })
        .collect())
}

/// `GET /inbox/{id}`: the inbox with one conversation open.
pub async fn show(
    State(state): State<AppState>,
    page: Page<act::MessagesRead>,
    Path(id): Path<String>,
    Query(q): Query<InboxQuery>,
) -> Result<Response, PageError> {
    inbox_page(
        state,
        page,
        Some(&id),
        q.filter.as_deref(),
        None,
        StatusCode::OK,
    )
    .await
}

/// The inbox, with one conversation open when `id` is given and a refusal
/// to show next to the reply form.
pub(super) async fn inbox_page(
    state: AppState,
    page: Page<act::MessagesRead>,
    id: Option<&str>,
    filter: Option<&str>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let filter = Filter::parse(filter);
    let viewer = Viewer::of(&page.caller, Some(page.role));
    let open = match id {
        Some(id) => {
            let ws = page.workspace_id.to_string();
            let c = conversations::get(&state, &ws, &viewer, id).await?;
            Some(open_conversation(&state, &page, &viewer, c).await?)
        }
        None => None,
    };
    let items = list_items(&state, &page, &viewer, filter, id).await?;
    let stream = stream_url(&page);
    Ok(render(
        status,
        &InboxPage {
            filters: filter_links(filter),
            filter: filter.as_str(),
            items,
            open_id: open.as_ref().map(|o| o.id.clone()).unwrap_or_default(),
            open,
            error,
            stream,
            live_types: LIVE_TYPES,
            chrome: page.chrome,
        },
    ))
}

/// `GET /inbox/{id}/thread`: the messages alone, for live refreshes.
pub async fn thread_partial(
    State(state): State<AppState>,
    page: Page<act::MessagesRead>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let viewer = Viewer::of(&page.caller, Some(page.role));
    let ws = page.workspace_id.to_string();
    let c = conversations::get(&state, &ws, &viewer, &id).await?;
    let open = open_conversation(&state, &page, &viewer, c).await?;
    Ok(render(StatusCode::OK, &ThreadPartial { open }))
}

/// `GET /inbox/media/{id}`: a file a customer sent, for previews in the thread.
pub async fn media(
    State(state): State<AppState>,
    page: Page<act::MessagesRead>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let file = crate::ops::media_fetch::fetch(&state, &page.ctx(), &id).await?;
    // Only raster images are shown inline; anything else (a customer's HTML or
    // SVG "document" included) is a download, never a page on this origin.
    let mime = file.media.mime_type.to_ascii_lowercase();
    let inline = mime.starts_with("image/") && !mime.contains("svg");
    let (mime, disposition) = match HeaderValue::from_str(&mime) {
        Ok(v) if inline => (v, "inline"),
        _ => (
            HeaderValue::from_static("application/octet-stream"),
            "attachment",
        ),
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static(disposition),
            ),
        ],
        file.bytes.to_vec(),
    )
        .into_response())
}
