//! `GET /v1/events/stream`: the workspace's customer events as Server-Sent
//! Events, for screens and bots. Parses the request, clears the caller for the
//! types it asks for, and writes the operation's frames as SSE.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::ApiError;
use crate::auth::WorkspaceCaller;
use crate::ops::event_access::{authorize, parse_after, parse_types};
use crate::ops::event_stream::{self, Frame};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
pub struct StreamQuery {
    /// Comma-separated event types, e.g. `message.received,message.read`;
    /// default: every type the caller may read.
    pub types: Option<String>,
    /// Resume after this event id (an SSE `id`); the `Last-Event-ID` header wins.
    /// Default: only events from now on.
    pub since: Option<String>,
    /// The workspace, for signed-in members of several (browsers cannot send
    /// the `Waypost-Workspace` header with `EventSource`).
    pub workspace: Option<String>,
}

/// Live customer events as Server-Sent Events (`text/event-stream`).
///
/// The first frame is `retry: 3000`. Each event frame has `id:` (the event's
/// sequence number, for `Last-Event-ID`), `event:` (its type, e.g.
/// `message.received`) and `data:` (the JSON body a webhook delivery of the
/// event carries, `{type, timestamp, data}`, plus `id`, the event id that
/// webhooks send as `webhook-id`). An idle stream gets a `: ping` comment every
/// 15 seconds. On reconnection (browsers send `Last-Event-ID` themselves) the
/// stream replays what was missed, then continues live. If events after that id
/// were already purged, the first event is `stream.gap` with data
/// `{"requested_after": N, "resumed_after": M}` and the stream resumes after M.
/// Each type needs the read permission of its subject: `message.*`
/// `messages:read`, `contact.*` `contacts:read`, `template.*` `templates:read`,
/// `endpoint.disabled` and `webhook.test` `webhooks:manage`, `incident.*`
/// `audit:read`. Revoking the key or ending the session ends the stream within
/// seconds. A late event (committed after newer ones were sent) comes without
/// `id:`; delivery is at least once, deduplicate by `data.id`.
#[utoipa::path(
    get,
    path = "/v1/events/stream",
    operation_id = "stream_events",
    tag = "events",
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The last `id` received; resumes after it"),
    ),
    responses(
        (status = 200, description = "An endless stream of events", content_type = "text/event-stream", body = String),
        (status = 403, description = "The caller may not read a requested type", content_type = "application/problem+json", body = crate::error::Problem),
        (status = 422, description = "Unknown event type or malformed id", content_type = "application/problem+json", body = crate::error::Problem),
        (status = 429, description = "Too many open streams in the workspace", content_type = "application/problem+json", body = crate::error::Problem),
    )
,
    security(("api_key" = []), ("session" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    caller: WorkspaceCaller,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let types = parse_types(q.types.as_deref())?;
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let after = parse_after(last_event_id, q.since.as_deref())?;
    let access = authorize(&caller, types)?;
    let mut frames = event_stream::open(&state, access, after)?;
    let events = futures_util::stream::poll_fn(move |cx| frames.poll_recv(cx))
        .map(|frame| Ok::<_, Infallible>(sse_event(frame)));
    let heartbeat = Duration::from_millis(state.config.event_stream_heartbeat_ms);
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(heartbeat).text("ping"));
    // Without this, nginx buffers the stream and events arrive in bursts.
    Ok(([("x-accel-buffering", "no")], sse).into_response())
}

fn sse_event(frame: Frame) -> Event {
    match frame {
        Frame::Retry(d) => Event::default().retry(d),
        Frame::Event { id, event, data } => {
            let e = Event::default().event(event).data(data);
            match id {
                Some(id) => e.id(id.to_string()),
                None => e,
            }
        }
    }
}
