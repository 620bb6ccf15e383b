//! Security incidents as an affected workspace sees them (scope `audit:read`,
//! admins and owners): only incidents that affect the caller's workspace, and
//! only the structured facts — never the operator's free text, nor which
//! other workspaces are affected.

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use waypost_store::incidents::{IncidentFilter, IncidentRow};

use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::ops::incidents::{IncidentQuery, on_time, status_filter};
use crate::ops::paging::page_limit;
use crate::state::AppState;

/// A security incident affecting this workspace.
#[derive(Serialize, ToSchema)]
pub struct IncidentNotice {
    pub id: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// `open`, `investigating`, `contained` or `closed`.
    pub status: String,
    pub detected_at: DateTime<Utc>,
    /// When notification is due: detected_at + 72 h.
    pub notification_deadline: DateTime<Utc>,
    pub notified_at: Option<DateTime<Utc>>,
    pub notified_within_deadline: Option<bool>,
    pub closed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct IncidentNoticePage {
    pub data: Vec<IncidentNotice>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn notice(r: IncidentRow) -> IncidentNotice {
    IncidentNotice {
        notified_within_deadline: on_time(&r),
        id: r.id,
        severity: r.severity,
        status: r.status,
        detected_at: r.detected_at,
        notification_deadline: r.deadline_at,
        notified_at: r.notified_at,
        closed_at: r.closed_at,
        updated_at: r.updated_at,
    }
}

/// Incidents affecting this workspace, oldest first (scope `audit:read`).
#[utoipa::path(operation_id = "list_workspace_incidents", get, path = "/v1/incidents", tag = "incidents",
    params(IncidentQuery), responses((status = 200, body = IncidentNoticePage)),
    security(("api_key" = ["audit:read"]), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<act::AuditRead>,
    Query(q): Query<IncidentQuery>,
) -> Result<Json<IncidentNoticePage>, ApiError> {
    let limit = page_limit(q.limit, 50, 100)?;
    let filter = IncidentFilter {
        status: status_filter(q.status)?,
        after: q.after,
    };
    let rows = state
        .store
        .workspace_incidents(&auth.workspace_id.to_string(), &filter, limit)
        .await?;
    let next_cursor = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    Ok(Json(IncidentNoticePage {
        data: rows.into_iter().map(notice).collect(),
        next_cursor,
    }))
}

/// One incident affecting this workspace (scope `audit:read`); 404 for any other.
#[utoipa::path(operation_id = "get_workspace_incident", get, path = "/v1/incidents/{id}", tag = "incidents",
    params(("id" = String, Path)),
    responses((status = 200, body = IncidentNotice), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["audit:read"]), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<act::AuditRead>,
    Path(id): Path<String>,
) -> Result<Json<IncidentNotice>, ApiError> {
    let row = state
        .store
        .workspace_incident(&auth.workspace_id.to_string(), &id)
        .await?;
    Ok(Json(notice(row)))
}
