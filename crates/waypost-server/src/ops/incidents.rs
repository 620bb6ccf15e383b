//! The security incident register, for platform operators (the API's
//! `/v1/operator/incidents` and the operator pages). Recording an incident starts the 72-hour
//! notification clock; affected workspaces get customer events and entries in
//! their audit chains in the same transaction, and see the incident through
//! `/v1/incidents` (see `incident_view`). Closing records when notification
//! happened.
//!
//! The operator's description and resolution are free text: encrypted at rest
//! and shown to operators only. They are written once for every affected
//! workspace, so one careless sentence (another customer's name, an attacker's
//! address list) would leak across tenants; customers get the structured facts.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use waypost_core::events::EventType;
use waypost_core::{IncidentId, NewAuditEvent, WorkspaceId};
use waypost_crypto::Aad;
use waypost_store::incidents::{IncidentFilter, IncidentRow, IncidentWrite};

use super::paging::page_limit;
use crate::auth::Operator;
use crate::error::{ApiError, Problem};
use crate::state::{AppState, RequestOrigin};

/// Affected customers and authorities must be notified this long after detection.
pub const NOTIFICATION_WINDOW_HOURS: i64 = 72;
const MAX_TEXT_CHARS: usize = 10_000;
const MAX_WORKSPACES: usize = 1_000;
/// Clocks differ a little between the operator's machine and the server.
const FUTURE_SKEW: Duration = Duration::minutes(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// The states before closing; closing has its own route because it must record the notification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActiveStatus {
    Open,
    Investigating,
    Contained,
}

pub(crate) fn as_str<T: Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[derive(Deserialize, ToSchema)]
pub struct CreateIncident {
    pub detected_at: DateTime<Utc>,
    pub severity: Severity,
    /// For operators only; never sent to affected workspaces.
    pub description: String,
    /// Ids of the workspaces whose data or service is affected (may be empty while unknown).
    pub affected_workspaces: Vec<String>,
    /// Default `open`.
    pub status: Option<ActiveStatus>,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateIncident {
    pub severity: Option<Severity>,
    pub status: Option<ActiveStatus>,
    pub description: Option<String>,
    /// The full new set of affected workspaces.
    pub affected_workspaces: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
pub struct CloseIncident {
    /// When affected customers and authorities were notified. Required.
    pub notified_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
}

/// An incident as operators see it.
#[derive(Serialize, ToSchema)]
pub struct IncidentView {
    pub id: String,
    pub severity: String,
    /// `open`, `investigating`, `contained` or `closed`.
    pub status: String,
    pub description: String,
    pub resolution: Option<String>,
    pub affected_workspaces: Vec<String>,
    pub detected_at: DateTime<Utc>,
    /// detected_at + 72 h.
    pub notification_deadline: DateTime<Utc>,
    pub notified_at: Option<DateTime<Utc>>,
    /// Whether notification happened by the deadline; absent until closed.
    pub notified_within_deadline: Option<bool>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The operator token that recorded the incident.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct IncidentPage {
    pub data: Vec<IncidentView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct IncidentQuery {
    /// `open`, `investigating`, `contained` or `closed`.
    pub status: Option<String>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

pub(crate) fn invalid(field: &str, detail: impl Into<String>) -> ApiError {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
        "Invalid request",
        detail,
    )
    .with("field", field.into())
    .into()
}

pub(crate) fn status_filter(status: Option<String>) -> Result<Option<String>, ApiError> {
    match status.as_deref() {
        None | Some("open" | "investigating" | "contained" | "closed") => Ok(status),
        Some(_) => Err(invalid(
            "status",
            "`status` must be one of open, investigating, contained, closed",
        )),
    }
}

pub(crate) fn check_text(field: &str, text: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return Err(invalid(
            field,
            format!("`{field}` must be 1 to {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(())
}

pub(crate) fn not_in_future(
    state: &AppState,
    field: &str,
    t: DateTime<Utc>,
) -> Result<(), ApiError> {
    if t > state.clock.now() + FUTURE_SKEW {
        return Err(invalid(field, format!("`{field}` is in the future")));
    }
    Ok(())
}

/// Parses, deduplicates and checks that every id names an existing workspace.
pub(crate) async fn affected_workspaces(
    state: &AppState,
    ids: &[String],
) -> Result<Vec<String>, ApiError> {
    if ids.len() > MAX_WORKSPACES {
        return Err(invalid(
            "affected_workspaces",
            format!("at most {MAX_WORKSPACES} workspaces per incident"),
        ));
    }
    let mut set = BTreeSet::new();
    for id in ids {
        let parsed = WorkspaceId::parse(id).map_err(|e| {
            invalid(
                "affected_workspaces",
                format!(
                    "`{}` is not a workspace id: {e}",
                    id.chars().take(64).collect::<String>()
                ),
            )
        })?;
        set.insert(parsed.to_string());
    }
    let wanted: Vec<String> = set.into_iter().collect();
    let found: BTreeSet<String> = state
        .store
        .existing_workspace_ids(&wanted)
        .await?
        .into_iter()
        .collect();
    let unknown: Vec<&str> = wanted
        .iter()
        .filter(|w| !found.contains(*w))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-workspace",
            "Unknown workspace",
            format!("no workspace has the id {}", unknown.join(", ")),
        )
        .with("unknown_workspaces", json!(unknown))
        .into());
    }
    Ok(wanted)
}

pub(crate) fn seal_text(state: &AppState, column: &str, id: &str, text: &str) -> Vec<u8> {
    state
        .keys
        .current()
        .encrypt(Aad::new("incidents", column, id), text.as_bytes())
}

pub(crate) async fn open_text(
    state: &AppState,
    column: &str,
    id: &str,
    bytes: &[u8],
) -> Result<String, ApiError> {
    let plain = state
        .keys
        .decrypt(
            state.store.as_ref(),
            Aad::new("incidents", column, id),
            bytes,
        )
        .await
        .map_err(ApiError::Internal)?;
    String::from_utf8(plain.to_vec())
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("incident {id} {column} is not UTF-8")))
}

/// Whether notification happened by the deadline, once it happened.
pub(crate) fn on_time(row: &IncidentRow) -> Option<bool> {
    row.notified_at.map(|n| n <= row.deadline_at)
}

pub(crate) async fn view(
    state: &AppState,
    row: IncidentRow,
    workspaces: Vec<String>,
) -> Result<IncidentView, ApiError> {
    let description = open_text(state, "description", &row.id, &row.description).await?;
    let resolution = match &row.resolution {
        Some(r) => Some(open_text(state, "resolution", &row.id, r).await?),
        None => None,
    };
    Ok(IncidentView {
        notified_within_deadline: on_time(&row),
        id: row.id,
        severity: row.severity,
        status: row.status,
        description,
        resolution,
        affected_workspaces: workspaces,
        detected_at: row.detected_at,
        notification_deadline: row.deadline_at,
        notified_at: row.notified_at,
        closed_at: row.closed_at,
        created_by: row.created_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub(crate) async fn view_one(state: &AppState, row: IncidentRow) -> Result<IncidentView, ApiError> {
    let workspaces = state
        .store
        .incident_workspaces(std::slice::from_ref(&row.id))
        .await?
        .into_iter()
        .map(|(_, w)| w)
        .collect();
    view(state, row, workspaces).await
}

/// The facts a workspace may see: its customer event `data` and audit details.
pub(crate) fn customer_facts(row: &IncidentRow, affected: bool) -> serde_json::Value {
    json!({
        "id": row.id,
        "severity": row.severity,
        "status": row.status,
        "detected_at": row.detected_at,
        "notification_deadline": row.deadline_at,
        "notified_at": row.notified_at,
        "closed_at": row.closed_at,
        "affected": affected,
    })
}

/// One customer event and one audit entry in the workspace's own chain.
pub(crate) fn tell_workspace(
    state: &AppState,
    origin: &RequestOrigin,
    operator: &Operator,
    write: &mut IncidentWrite,
    ws: &str,
    kind: EventType,
    affected: bool,
) -> Result<(), ApiError> {
    let row = &write.incident;
    let workspace = WorkspaceId::parse(ws)
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("malformed workspace id in incident")))?;
    let facts = customer_facts(row, affected);
    let event = crate::events::seal(
        &state.keys.current(),
        workspace,
        kind,
        Some(row.id.clone()),
        &facts,
        row.updated_at,
    );
    let audit = origin.stamp(
        NewAuditEvent::new(Some(workspace), operator.actor(), kind.as_str())
            .target("incident", row.id.clone())
            .details(facts),
    );
    write.events.push(event);
    write.audits.push(audit);
    Ok(())
}

pub(crate) fn platform_audit(
    origin: &RequestOrigin,
    operator: &Operator,
    action: &str,
    id: &str,
    details: serde_json::Value,
) -> NewAuditEvent {
    origin.stamp(
        NewAuditEvent::new(None, operator.actor(), action)
            .target("incident", id.to_owned())
            .details(details),
    )
}

/// Records an incident and starts its 72-hour notification clock.
pub async fn create(
    state: &AppState,
    origin: &RequestOrigin,
    operator: &Operator,
    req: CreateIncident,
) -> Result<IncidentView, ApiError> {
    check_text("description", &req.description)?;
    not_in_future(state, "detected_at", req.detected_at)?;
    let workspaces = affected_workspaces(state, &req.affected_workspaces).await?;
    let id = IncidentId::new().to_string();
    let now = state.clock.now().trunc_subsecs(6);
    let detected_at = req.detected_at.trunc_subsecs(6);
    let row = IncidentRow {
        severity: as_str(req.severity),
        status: as_str(req.status.unwrap_or(ActiveStatus::Open)),
        description: seal_text(state, "description", &id, &req.description),
        resolution: None,
        detected_at,
        deadline_at: detected_at + Duration::hours(NOTIFICATION_WINDOW_HOURS),
        notified_at: None,
        closed_at: None,
        created_by: operator.token.id.clone(),
        created_at: now,
        updated_at: now,
        version: 1,
        id,
    };
    let mut write = IncidentWrite {
        incident: row.clone(),
        workspaces: workspaces.clone(),
        events: Vec::new(),
        audits: vec![platform_audit(
            origin,
            operator,
            "incident.created",
            &row.id,
            json!({ "severity": row.severity, "status": row.status, "detected_at": row.detected_at,
                "notification_deadline": row.deadline_at, "affected_workspaces": workspaces }),
        )],
    };
    for ws in &workspaces {
        tell_workspace(
            state,
            origin,
            operator,
            &mut write,
            ws,
            EventType::IncidentOpened,
            true,
        )?;
    }
    state.store.create_incident(&write).await?;
    view(state, row, workspaces).await
}

/// Every incident, oldest first, optionally by status.
pub async fn list(state: &AppState, q: IncidentQuery) -> Result<IncidentPage, ApiError> {
    let limit = page_limit(q.limit, 50, 100)?;
    let filter = IncidentFilter {
        status: status_filter(q.status)?,
        after: q.after,
    };
    let rows = state.store.list_incidents(&filter, limit).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut affected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (incident, ws) in state.store.incident_workspaces(&ids).await? {
        affected.entry(incident).or_default().push(ws);
    }
    let next_cursor = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    let mut data = Vec::with_capacity(rows.len());
    for row in rows {
        let ws = affected.remove(&row.id).unwrap_or_default();
        data.push(view(state, row, ws).await?);
    }
    Ok(IncidentPage { data, next_cursor })
}

/// One incident with its description and affected workspaces.
pub async fn get(state: &AppState, id: &str) -> Result<IncidentView, ApiError> {
    let row = state.store.get_incident(id).await?;
    view_one(state, row).await
}

/// Prometheus text for open incidents, computed from the database at scrape
/// time (so every node reports the same and closed incidents disappear).
pub async fn metrics_text(state: &AppState) -> anyhow::Result<String> {
    const LIMIT: u32 = 1_000;
    let open = state.store.open_incident_deadlines(LIMIT).await?;
    let now = state.clock.now();
    let mut out = String::from(
        "# HELP waypost_incidents_open Security incidents not yet closed\n\
         # TYPE waypost_incidents_open gauge\n",
    );
    out.push_str(&format!("waypost_incidents_open {}\n", open.len()));
    out.push_str(
        "# HELP waypost_incident_notification_hours_left Hours until the 72 h notification deadline of each open incident (negative when overdue)\n\
         # TYPE waypost_incident_notification_hours_left gauge\n",
    );
    for (id, deadline) in open {
        // Ids are `inc_` + ULID: nothing to escape in a label value.
        let hours = (deadline - now).num_seconds() as f64 / 3600.0;
        out.push_str(&format!(
            "waypost_incident_notification_hours_left{{incident=\"{id}\"}} {hours:.3}\n"
        ));
    }
    Ok(out)
}
