//! `/v1/conversations`: the inbox. Reading takes `messages:read`; changing a
//! conversation (assign, close, labels, notes, read) takes `messages:send`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use waypost_core::redact::mask_phone;
use waypost_store::conversations::ConversationFilter;

use super::json::ApiJson;
use super::messages::{MessagePage, message_view};
use super::{ApiError, Problem, unprocessable};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::messaging::identity::contact_identity;
use crate::ops::Ctx;
use crate::ops::conversations::{self, Change, Conversation, Viewer};
use crate::ops::message_content::content_of;
use crate::ops::paging::page_limit;
use crate::state::{AppState, RequestOrigin};

#[derive(Serialize, ToSchema)]
pub struct ContactSummary {
    pub id: String,
    /// E.164; masked unless the caller may read contacts (`contacts:read`).
    pub phone: Option<String>,
    /// The business-scoped user id.
    pub user_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ConversationView {
    pub id: String,
    pub channel_id: String,
    pub contact: ContactSummary,
    /// `open`, `pending` or `closed`.
    pub status: String,
    /// The member (user id) it is assigned to.
    pub assignee_id: Option<String>,
    pub labels: Vec<String>,
    /// Customer messages since the conversation was last marked read.
    pub unread_count: i64,
    pub last_message_at: DateTime<Utc>,
    /// `inbound` or `outbound`.
    pub last_direction: String,
    /// End of the 24-hour customer-service window; `null` if the customer never wrote.
    pub window_expires_at: Option<DateTime<Utc>>,
    pub window_open: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct ConversationPage {
    pub data: Vec<ConversationView>,
    pub next_cursor: Option<String>,
}

fn view(
    state: &AppState,
    c: Conversation,
    viewer: &Viewer,
    now: DateTime<Utc>,
) -> Result<ConversationView, ApiError> {
    let who = contact_identity(&state.keys, &c.contact).map_err(ApiError::Internal)?;
    let window_expires_at = c.window_expires_at();
    Ok(ConversationView {
        id: c.row.id,
        channel_id: c.row.channel_id,
        contact: ContactSummary {
            id: c.contact.id,
            phone: who.phone.map(|p| {
                if viewer.full_numbers {
                    p.as_str().to_owned()
                } else {
                    mask_phone(p.as_str())
                }
            }),
            user_id: who.user_id.map(|u| u.to_string()),
        },
        status: c.row.status,
        assignee_id: c.row.assignee_id,
        labels: c.labels,
        unread_count: c.row.unread_count,
        last_message_at: c.row.last_message_at,
        last_direction: c.row.last_direction,
        window_open: window_expires_at.is_some_and(|t| t > now),
        window_expires_at,
        created_at: c.row.created_at,
        updated_at: c.row.updated_at,
    })
}

#[derive(Deserialize, IntoParams)]
pub struct ConversationQuery {
    /// `open`, `pending` or `closed`.
    pub status: Option<String>,
    /// `me`, `none` (unassigned) or a member's user id.
    pub assignee: Option<String>,
    pub label: Option<String>,
    /// `true`: only conversations with unread customer messages.
    pub unread: Option<bool>,
    /// `true`: only conversations whose 24-hour window is open.
    pub window_open: Option<bool>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

fn cursor_of(c: &ConversationView) -> String {
    format!(
        "{}~{}",
        c.last_message_at
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        c.id
    )
}

fn parse_cursor(s: &str) -> Result<(DateTime<Utc>, String), ApiError> {
    let bad = || unprocessable("`after` is not a cursor this API returned");
    let (at, id) = s.split_once('~').ok_or_else(bad)?;
    let at = DateTime::parse_from_rfc3339(at).map_err(|_| bad())?;
    Ok((at.with_timezone(&Utc), id.to_owned()))
}

/// The inbox: conversations with the most recent activity first.
#[utoipa::path(operation_id = "list_conversations", get, path = "/v1/conversations", tag = "conversations",
    params(ConversationQuery),
    responses((status = 200, body = ConversationPage), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["messages:read"]), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<act::MessagesRead>,
    Query(q): Query<ConversationQuery>,
) -> Result<Json<ConversationPage>, ApiError> {
    if let Some(s) = &q.status
        && !["open", "pending", "closed"].contains(&s.as_str())
    {
        return Err(unprocessable(
            "`status` must be `open`, `pending` or `closed`",
        ));
    }
    let viewer = Viewer::of(&auth.caller, auth.role);
    let assignee = match q.assignee.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some("me") => Some(Some(viewer.user_id.clone().ok_or_else(|| {
            unprocessable("`assignee=me` needs a member's session; API keys name a member id")
        })?)),
        Some(id) => Some(Some(id.to_owned())),
    };
    let now = state.clock.now();
    let filter = ConversationFilter {
        status: q.status,
        assignee,
        label: q.label.map(|l| l.trim().to_lowercase()),
        unread: q.unread,
        inbound_after: q
            .window_open
            .filter(|open| *open)
            .map(|_| now - conversations::WINDOW),
        before: q.after.as_deref().map(parse_cursor).transpose()?,
    };
    let limit = page_limit(q.limit, 50, 200)?;
    let ws = auth.workspace_id.to_string();
    let rows = conversations::list(&state, &ws, &viewer, filter, limit).await?;
    let data = rows
        .into_iter()
        .map(|c| view(&state, c, &viewer, now))
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = (data.len() as u32 == limit)
        .then(|| data.last().map(cursor_of))
        .flatten();
    Ok(Json(ConversationPage { data, next_cursor }))
}

/// One conversation.
#[utoipa::path(operation_id = "get_conversation", get, path = "/v1/conversations/{id}", tag = "conversations",
    params(("id" = String, Path)),
    responses((status = 200, body = ConversationView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["messages:read"]), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<act::MessagesRead>,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, ApiError> {
    let viewer = Viewer::of(&auth.caller, auth.role);
    let c = conversations::get(&state, &auth.workspace_id.to_string(), &viewer, &id).await?;
    Ok(Json(view(&state, c, &viewer, state.clock.now())?))
}

#[derive(Deserialize, IntoParams)]
pub struct ConversationMessagesQuery {
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Both directions, oldest first, with content where the workspace keeps it
/// (`content: null` and `content_state` otherwise).
#[utoipa::path(operation_id = "list_conversation_messages", get, path = "/v1/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path), ConversationMessagesQuery),
    responses((status = 200, body = MessagePage), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["messages:read"]), ("session" = [])))]
pub async fn messages(
    State(state): State<AppState>,
    auth: Authorized<act::MessagesRead>,
    Path(id): Path<String>,
    Query(q): Query<ConversationMessagesQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    let viewer = Viewer::of(&auth.caller, auth.role);
    let ws = auth.workspace_id.to_string();
    let c = conversations::get(&state, &ws, &viewer, &id).await?;
    let limit = page_limit(q.limit, 100, 500)?;
    let rows = conversations::messages(&state, &c, q.after, limit).await?;
    let said = content_of(&state, &ws, &rows, state.clock.now()).await?;
    let next_cursor = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|m| m.id.clone()))
        .flatten();
    Ok(Json(MessagePage {
        data: rows
            .into_iter()
            .zip(said)
            .map(|(m, s)| message_view(m, s))
            .collect(),
        next_cursor,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// A member (user id) who may send messages; `null` unassigns.
    pub member_id: Option<String>,
}

async fn apply(
    state: AppState,
    origin: RequestOrigin,
    auth: Authorized<act::MessagesSend>,
    id: String,
    change: Change,
) -> Result<Json<ConversationView>, ApiError> {
    let viewer = Viewer::of(&auth.caller, auth.role);
    let ctx = Ctx::of(&auth, origin);
    let c = conversations::change(&state, &ctx, &viewer, &id, change).await?;
    Ok(Json(view(&state, c, &viewer, state.clock.now())?))
}

/// Assigns the conversation to a member, or unassigns it.
#[utoipa::path(operation_id = "assign_conversation", post, path = "/v1/conversations/{id}/assign", tag = "conversations",
    params(("id" = String, Path)), request_body = AssignRequest,
    responses((status = 200, body = ConversationView), (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["messages:send"]), ("session" = [])))]
pub async fn assign(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MessagesSend>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AssignRequest>,
) -> Result<Json<ConversationView>, ApiError> {
    apply(state, origin, auth, id, Change::Assign(req.member_id)).await
}

/// Closes the conversation; the customer's next message reopens it.
#[utoipa::path(operation_id = "close_conversation", post, path = "/v1/conversations/{id}/close", tag = "conversations",
    params(("id" = String, Path)), responses((status = 200, body = ConversationView)),
    security(("api_key" = ["messages:send"]), ("session" = [])))]
pub async fn close(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MessagesSend>,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, ApiError> {
    apply(state, origin, auth, id, Change::Close).await
}

/// Reopens a closed conversation.
#[utoipa::path(operation_id = "reopen_conversation", post, path = "/v1/conversations/{id}/reopen", tag = "conversations",
    params(("id" = String, Path)), responses((status = 200, body = ConversationView)),
    security(("api_key" = ["messages:send"]), ("session" = [])))]
pub async fn reopen(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MessagesSend>,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, ApiError> {
    apply(state, origin, auth, id, Change::Reopen).await
}

/// Marks the conversation pending (waiting on someone); the customer's next message makes it open.
#[utoipa::path(operation_id = "pend_conversation", post, path = "/v1/conversations/{id}/pending", tag = "conversations",
    params(("id" = String, Path)), responses((status = 200, body = ConversationView)),
    security(("api_key" = ["messages:send"]), ("session" = [])))]
pub async fn pending(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MessagesSend>,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, ApiError> {
    apply(state, origin, auth, id, Change::Pending).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelsRequest {
    /// The full new set (at most 20; letters, digits, `-`, `_`, `:`, `/`).
    pub labels: Vec<String>,
}

/// Replaces the conversation's labels.
#[utoipa::path(operation_id = "set_conversation_labels", put, path = "/v1/conversations/{id}/labels", tag = "conversations",
    params(("id" = String, Path)), request_body = LabelsRequest,
    responses((status = 200, body = ConversationView), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["messages:send"]), ("session" = [])))]
pub async fn labels(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MessagesSend>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LabelsRequest>,
) -> Result<Json<ConversationView>, ApiError> {
    apply(state, origin, auth, id, Change::Labels(req.labels)).await
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    /// Also show the customer the typing indicator (until the reply, at most 25 s).
    #[serde(default)]
    pub typing_indicator: bool,
}

/// Marks the conversation read: the provider's read receipt for the latest
/// customer message, and the unread count back to 0.
#[utoipa::path(operation_id = "read_conversation", post, path = "/v1/conversations/{id}/read", tag = "conversations",
    params(("id" = String, Path)), request_body = ReadRequest,
    responses((status = 200, body = ConversationView), (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 502, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["messages:send"]), ("session" = [])))]
pub async fn read(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MessagesSend>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<ConversationView>, ApiError> {
    // The body is optional: no body means no typing indicator.
    let req: ReadRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReadRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| unprocessable(format!("the body is not a valid read request: {e}")))?
    };
    let typing = req.typing_indicator;
    apply(state, origin, auth, id, Change::Read { typing }).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// 1 to 4,000 characters; never sent to the customer.
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    pub body: String,
}

#[derive(Serialize, ToSchema)]
pub struct NoteView {
    pub id: String,
    pub author_id: Option<String>,
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// When the workspace's content retention removes it.
    pub expires_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct NoteList {
    pub data: Vec<NoteView>,
}

/// Adds an internal note (kept as long as the workspace keeps content; refused with `none`).
#[utoipa::path(operation_id = "add_conversation_note", post, path = "/v1/conversations/{id}/notes", tag = "conversations",
    params(("id" = String, Path)), request_body = NoteRequest,
    responses((status = 201, body = NoteView), (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["messages:send"]), ("session" = [])))]
pub async fn add_note(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MessagesSend>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NoteRequest>,
) -> Result<(StatusCode, Json<NoteView>), ApiError> {
    let viewer = Viewer::of(&auth.caller, auth.role);
    let ctx = Ctx::of(&auth, origin);
    let note = conversations::add_note(&state, &ctx, &viewer, &id, &req.body).await?;
    Ok((
        StatusCode::CREATED,
        Json(NoteView {
            id: note.id,
            author_id: note.author_id,
            body: req.body.trim().to_owned(),
            created_at: note.created_at,
            expires_at: note.expires_at,
        }),
    ))
}

/// The conversation's internal notes, oldest first.
#[utoipa::path(operation_id = "list_conversation_notes", get, path = "/v1/conversations/{id}/notes", tag = "conversations",
    params(("id" = String, Path)), responses((status = 200, body = NoteList)),
    security(("api_key" = ["messages:read"]), ("session" = [])))]
pub async fn notes(
    State(state): State<AppState>,
    auth: Authorized<act::MessagesRead>,
    Path(id): Path<String>,
) -> Result<Json<NoteList>, ApiError> {
    let viewer = Viewer::of(&auth.caller, auth.role);
    let notes = conversations::notes(&state, &auth.workspace_id.to_string(), &viewer, &id).await?;
    Ok(Json(NoteList {
        data: notes
            .into_iter()
            .map(|(n, body)| NoteView {
                id: n.id,
                author_id: n.author_id,
                body,
                created_at: n.created_at,
                expires_at: n.expires_at,
            })
            .collect(),
    }))
}
