//! Changing and closing security incidents (see `incidents`): every change
//! tells the affected workspaces what they may see, in the same transaction.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use chrono::SubsecRound;
use serde_json::json;
use waypost_core::events::EventType;

use super::incidents::{
    CloseIncident, IncidentView, UpdateIncident, affected_workspaces, as_str, check_text, invalid,
    not_in_future, on_time, open_text, platform_audit, seal_text, tell_workspace, view,
};
use crate::auth::Operator;
use crate::error::{ApiError, Problem};
use crate::state::{AppState, RequestOrigin};
use waypost_store::incidents::IncidentWrite;

/// Changes severity, status, description or the affected workspaces. Newly
/// affected workspaces get `incident.opened`, removed ones `incident.updated`
/// with `affected: false`, the rest `incident.updated` when what they see changed.
pub async fn update(
    state: &AppState,
    origin: &RequestOrigin,
    operator: &Operator,
    id: &str,
    req: UpdateIncident,
) -> Result<IncidentView, ApiError> {
    if let Some(d) = &req.description {
        check_text("description", d)?;
    }
    let old = state.store.get_incident(id).await?;
    if old.status == "closed" {
        return Err(closed());
    }
    let old_ws: BTreeSet<String> = state
        .store
        .incident_workspaces(&[id.to_owned()])
        .await?
        .into_iter()
        .map(|(_, w)| w)
        .collect();
    let new_ws: BTreeSet<String> = match &req.affected_workspaces {
        Some(ids) => affected_workspaces(state, ids).await?.into_iter().collect(),
        None => old_ws.clone(),
    };
    let mut row = old.clone();
    if let Some(s) = req.severity {
        row.severity = as_str(s);
    }
    if let Some(s) = req.status {
        row.status = as_str(s);
    }
    let description_changed = match &req.description {
        Some(d) => *d != open_text(state, "description", id, &old.description).await?,
        None => false,
    };
    if description_changed {
        let text = req.description.as_deref().unwrap_or_default();
        row.description = seal_text(state, "description", id, text);
    }
    let visible_change = row.severity != old.severity || row.status != old.status;
    if !visible_change && !description_changed && new_ws == old_ws {
        return view(state, old, old_ws.into_iter().collect()).await;
    }
    row.updated_at = state.clock.now().trunc_subsecs(6);
    row.version += 1;
    let added: Vec<&String> = new_ws.difference(&old_ws).collect();
    let removed: Vec<&String> = old_ws.difference(&new_ws).collect();
    let mut write = IncidentWrite {
        incident: row.clone(),
        workspaces: new_ws.iter().cloned().collect(),
        events: Vec::new(),
        audits: vec![platform_audit(
            origin,
            operator,
            "incident.updated",
            id,
            json!({ "severity": [old.severity, row.severity], "status": [old.status, row.status],
                "description_changed": description_changed,
                "workspaces_added": added, "workspaces_removed": removed }),
        )],
    };
    let mut tell = |ws: &str, kind: EventType, affected: bool| {
        tell_workspace(state, origin, operator, &mut write, ws, kind, affected)
    };
    for ws in &new_ws {
        if !old_ws.contains(ws) {
            tell(ws, EventType::IncidentOpened, true)?;
        } else if visible_change {
            tell(ws, EventType::IncidentUpdated, true)?;
        }
    }
    for ws in &removed {
        tell(ws, EventType::IncidentUpdated, false)?;
    }
    state.store.update_incident(&write).await?;
    view(state, row, write.workspaces).await
}

fn closed() -> ApiError {
    Problem::new(
        StatusCode::CONFLICT,
        "incident-closed",
        "Incident closed",
        "The incident is closed and can no longer change.",
    )
    .into()
}

/// Closes an incident, recording when affected customers and authorities were notified.
pub async fn close(
    state: &AppState,
    origin: &RequestOrigin,
    operator: &Operator,
    id: &str,
    req: CloseIncident,
) -> Result<IncidentView, ApiError> {
    let old = state.store.get_incident(id).await?;
    if old.status == "closed" {
        return Err(closed());
    }
    let Some(notified_at) = req.notified_at else {
        return Err(invalid(
            "notified_at",
            format!(
                "`notified_at` is required: closing records when affected customers and authorities \
                 were notified (the deadline is {}).",
                old.deadline_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ));
    };
    not_in_future(state, "notified_at", notified_at)?;
    if notified_at < old.detected_at {
        return Err(invalid(
            "notified_at",
            "`notified_at` is before `detected_at`",
        ));
    }
    if let Some(r) = &req.resolution {
        check_text("resolution", r)?;
    }
    let workspaces: Vec<String> = state
        .store
        .incident_workspaces(&[id.to_owned()])
        .await?
        .into_iter()
        .map(|(_, w)| w)
        .collect();
    let now = state.clock.now().trunc_subsecs(6);
    let mut row = old;
    row.status = "closed".into();
    row.notified_at = Some(notified_at.trunc_subsecs(6));
    row.closed_at = Some(now);
    row.updated_at = now;
    row.version += 1;
    row.resolution = req
        .resolution
        .as_deref()
        .map(|r| seal_text(state, "resolution", id, r));
    let mut write = IncidentWrite {
        incident: row.clone(),
        workspaces: workspaces.clone(),
        events: Vec::new(),
        audits: vec![platform_audit(
            origin,
            operator,
            "incident.closed",
            id,
            json!({ "notified_at": row.notified_at, "notification_deadline": row.deadline_at,
                "notified_within_deadline": on_time(&row) }),
        )],
    };
    for ws in &workspaces {
        tell_workspace(
            state,
            origin,
            operator,
            &mut write,
            ws,
            EventType::IncidentClosed,
            true,
        )?;
    }
    state.store.update_incident(&write).await?;
    view(state, row, workspaces).await
}
