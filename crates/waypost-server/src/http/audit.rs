//! Reading the workspace's audit log: oldest first, filtered, with a cursor,
//! or streamed as JSON lines for export.

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use waypost_core::audit::chain_name;

use super::ApiError;
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::ops::paging::page_limit;
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// The `next_cursor` of the previous page.
    pub after: Option<i64>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Only events by this user or API key id.
    pub actor: Option<String>,
    /// Only this action, e.g. `auth.login`.
    pub action: Option<String>,
    /// Only events about this object id.
    pub target: Option<String>,
    /// Only events at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
}

impl AuditQuery {
    fn filter(
        &self,
        workspace: waypost_core::WorkspaceId,
        limit: u32,
    ) -> waypost_store::AuditFilter {
        waypost_store::AuditFilter {
            chain: chain_name(Some(workspace)),
            after_seq: self.after.unwrap_or(0),
            actor_id: self.actor.clone(),
            action: self.action.clone(),
            target_id: self.target.clone(),
            since: self.since,
            until: self.until,
            limit,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditEventView {
    pub id: String,
    pub seq: i64,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub occurred_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// SHA-256 of this event, hex; each event carries its predecessor's.
    pub hash: String,
    pub prev_hash: String,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub data: Vec<AuditEventView>,
    pub next_cursor: Option<i64>,
}

/// The workspace's audit events (scope `audit:read`).
#[utoipa::path(operation_id = "list_audit_events", get, path = "/v1/audit-events", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage)),
    security(("api_key" = ["audit:read"]), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<act::AuditRead>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = page_limit(q.limit, 100, 500)?;
    let events = state
        .store
        .search_audit_events(&q.filter(auth.workspace_id, limit))
        .await?;
    let next_cursor = (events.len() as u32 == limit)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    let data = events.into_iter().map(view).collect();
    Ok(Json(AuditPage { data, next_cursor }))
}

pub(crate) fn view(e: waypost_core::AuditEvent) -> AuditEventView {
    AuditEventView {
        id: e.id.to_string(),
        seq: e.seq,
        actor_type: e.actor.kind().to_owned(),
        actor_id: e.actor.id().map(str::to_owned),
        action: e.action,
        target_type: e.target_type,
        target_id: e.target_id,
        ip: e.ip,
        user_agent: e.user_agent,
        occurred_at: e.occurred_at,
        details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
        hash: hex(&e.hash),
        prev_hash: hex(&e.prev_hash),
    }
}

const EXPORT_PAGE: u32 = 500;

/// Every matching event as JSON lines, streamed page by page (scope `audit:read`;
/// signed-in users need a recent re-authentication).
#[utoipa::path(get, path = "/v1/audit-events/export", operation_id = "export_audit_events", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "One JSON object per line", content_type = "application/x-ndjson", body = String)),
    security(("api_key" = ["audit:read"]), ("session" = [])))]
pub async fn export(
    State(state): State<AppState>,
    auth: Authorized<act::AuditRead>,
    Query(q): Query<AuditQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    if matches!(auth.caller, crate::auth::Caller::Session(_)) {
        crate::auth::caller::require_recent_auth(&state, &auth.caller)?;
    }
    // The export pages by itself; `limit` is still checked as the list checks it.
    page_limit(q.limit, EXPORT_PAGE, 500)?;
    let filter = q.filter(auth.workspace_id, EXPORT_PAGE);
    let store = state.store.clone();
    // One page per poll: memory stays bounded however long the log is.
    let stream = futures_util::stream::unfold(Some(filter), move |next| {
        let store = store.clone();
        async move {
            let mut filter = next?;
            let page = match store.search_audit_events(&filter).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %e, "audit export failed mid-stream");
                    return Some((Err(std::io::Error::other("audit export failed")), None));
                }
            };
            let last = page.last().map(|e| e.seq)?;
            let more = page.len() as u32 == EXPORT_PAGE;
            let mut lines = Vec::with_capacity(page.len() * 256);
            for event in page {
                serde_json::to_writer(&mut lines, &view(event)).expect("audit views serialise");
                lines.push(b'\n');
            }
            filter.after_seq = last;
            Some((Ok::<_, std::io::Error>(lines), more.then_some(filter)))
        }
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize, ToSchema)]
pub struct CheckpointKey {
    /// Always `Ed25519`.
    pub algorithm: &'static str,
    /// The raw 32-byte public key, base64.
    pub public_key: String,
}

/// The public key that signs audit checkpoints, for independent verification.
#[utoipa::path(get, path = "/v1/audit-events/public-key", operation_id = "audit_public_key", tag = "audit",
    security(()), responses((status = 200, body = CheckpointKey)))]
pub async fn public_key(State(state): State<AppState>) -> Json<CheckpointKey> {
    use base64::Engine;
    let key = state.keys.audit_signing_key().verifying_key();
    Json(CheckpointKey {
        algorithm: "Ed25519",
        public_key: base64::engine::general_purpose::STANDARD.encode(key.as_bytes()),
    })
}
