//! What a member does in an open conversation: reply (text inside the
//! window, an approved template outside it), assign, label, close, note.
//! Each goes back to the conversation, or shows the operation's refusal
//! next to the form.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::PageForm;
use super::inbox::{Filter, inbox_page};
use super::page::{Page, PageError};
use crate::auth::permission::act;
use crate::error::{ApiError, unprocessable};
use crate::ops::conversations::{self, Change, Viewer};
use crate::ops::idempotency::IdempotencyKey;
use crate::ops::messages::{self, SendMessage};
use crate::state::AppState;

/// Back to the conversation after a change, or the inbox again with the
/// refusal shown next to the form.
async fn settle<T>(
    state: AppState,
    page: Page<act::MessagesSend>,
    id: String,
    filter: Option<String>,
    outcome: Result<T, ApiError>,
) -> Result<Response, PageError> {
    let filter = filter.as_deref();
    match outcome {
        Ok(_) => {
            let filter = Filter::parse(filter);
            Ok(Redirect::to(&format!("/inbox/{id}?filter={}", filter.as_str())).into_response())
        }
        Err(e) => {
            let detail = PageError(e).detail();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            inbox_page(
                state,
                page.into_page()?,
                Some(&id),
                filter,
                Some(detail),
                status,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct ReplyForm {
    body: Option<String>,
    template: Option<String>,
    #[serde(default)]
    p1: String,
    #[serde(default)]
    p2: String,
    #[serde(default)]
    p3: String,
    #[serde(default)]
    p4: String,
    #[serde(default)]
    p5: String,
    idempotency: String,
    filter: Option<String>,
}

/// The send request a reply form describes.
fn reply_payload(f: &ReplyForm) -> Result<serde_json::Value, ApiError> {
    if let Some(choice) = f.template.as_deref().filter(|t| !t.is_empty()) {
        let (name, language) = choice
            .split_once('|')
            .ok_or_else(|| unprocessable("Choose a template from the list."))?;
        let params: Vec<serde_json::Value> = [&f.p1, &f.p2, &f.p3, &f.p4, &f.p5]
            .into_iter()
            .take_while(|p| !p.trim().is_empty())
            .map(|p| serde_json::json!({"type": "text", "text": p.trim()}))
            .collect();
        let mut template = serde_json::json!({"name": name, "language": {"code": language}});
        if !params.is_empty() {
            template["components"] = serde_json::json!([{"type": "body", "parameters": params}]);
        }
        return Ok(serde_json::json!({"type": "template", "template": template}));
    }
    let body = f.body.as_deref().unwrap_or_default();
    if body.trim().is_empty() {
        return Err(unprocessable("Write a message first."));
    }
    Ok(serde_json::json!({"type": "text", "text": {"body": body}}))
}

/// `POST /inbox/{id}/reply`: a text reply, or a template when `template` is chosen.
pub async fn reply(
    State(state): State<AppState>,
    page: Page<act::MessagesSend>,
    Path(id): Path<String>,
    PageForm(f): PageForm<ReplyForm>,
) -> Result<Response, PageError> {
    let outcome = send_reply(&state, &page, &id, &f).await;
    settle(state, page, id, f.filter, outcome).await
}

async fn send_reply(
    state: &AppState,
    page: &Page<act::MessagesSend>,
    id: &str,
    f: &ReplyForm,
) -> Result<(), ApiError> {
    let viewer = Viewer::of(&page.caller, Some(page.role));
    let ws = page.workspace_id.to_string();
    let c = conversations::get(state, &ws, &viewer, id).await?;
    let mut request = reply_payload(f)?;
    request["channel_id"] = c.row.channel_id.clone().into();
    request["contact_id"] = c.contact.id.clone().into();
    let bytes = serde_json::to_vec(&request).map_err(anyhow::Error::from)?;
    let send: SendMessage = serde_json::from_value(request)
        .map_err(|e| unprocessable(format!("The message is not valid: {e}")))?;
    let key = IdempotencyKey::parse(Some(f.idempotency.as_bytes()), "page:reply", &bytes)?;
    messages::accept(state, &page.ctx(), send, key.as_ref()).await?;
    Ok(())
}

#[derive(Deserialize)]
pub struct ChangeForm {
    action: String,
    member: Option<String>,
    labels: Option<String>,
    filter: Option<String>,
}

/// `POST /inbox/{id}/change`: assign, close, reopen, pending or labels.
pub async fn change(
    State(state): State<AppState>,
    page: Page<act::MessagesSend>,
    Path(id): Path<String>,
    PageForm(f): PageForm<ChangeForm>,
) -> Result<Response, PageError> {
    let viewer = Viewer::of(&page.caller, Some(page.role));
    let change = match f.action.as_str() {
        "assign" => Change::Assign(match f.member.as_deref() {
            None | Some("") => None,
            Some("me") => Some(page.session().user.id.clone()),
            Some(m) => Some(m.to_owned()),
        }),
        "close" => Change::Close,
        "reopen" => Change::Reopen,
        "pending" => Change::Pending,
        "labels" => Change::Labels(
            f.labels
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        _ => return Err(unprocessable("Unknown action.").into()),
    };
    let outcome = conversations::change(&state, &page.ctx(), &viewer, &id, change).await;
    settle(state, page, id, f.filter, outcome).await
}

#[derive(Deserialize)]
pub struct NoteForm {
    body: String,
    filter: Option<String>,
}

/// `POST /inbox/{id}/notes`: an internal note the customer never sees.
pub async fn add_note(
    State(state): State<AppState>,
    page: Page<act::MessagesSend>,
    Path(id): Path<String>,
    PageForm(f): PageForm<NoteForm>,
) -> Result<Response, PageError> {
    let viewer = Viewer::of(&page.caller, Some(page.role));
    let outcome = conversations::add_note(&state, &page.ctx(), &viewer, &id, &f.body).await;
    settle(state, page, id, f.filter, outcome).await
}
