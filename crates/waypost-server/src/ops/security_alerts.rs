//! Security alerts: a detector's finding about a workspace, key, channel,
//! user or network, with counts as evidence (never content). Raising one
//! records it with its audit event and a `security.alert` customer event in
//! one transaction, logs it for operators (and counts it in `/metrics`), and
//! — for a high-severity finding about a key or channel of a workspace whose
//! policy allows it — suspends that key or channel at once.

use waypost_core::audit::Actor;
use waypost_core::events::EventType;
use waypost_core::trust::{Severity, SuspensionTarget};
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_store::trust::AlertRow;

use super::suspensions::{self, Source, Suspend};
use crate::error::ApiError;
use crate::state::{AppState, RequestOrigin};

/// A finding, before it is stored.
#[derive(Debug, Clone)]
pub struct Finding {
    pub detector: &'static str,
    pub severity: Severity,
    pub workspace_id: Option<String>,
    /// `workspace`, `channel`, `api_key`, `user` or `network`.
    pub entity_kind: &'static str,
    pub entity_id: String,
    /// The minute (unix minutes) the finding is about; one alert per detector, entity and minute.
    pub minute: i64,
    pub evidence: serde_json::Value,
}

/// The alert's public shape, as the API and the customer event show it.
pub fn alert_json(a: &AlertRow) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "detector": a.detector,
        "severity": a.severity,
        "entity": { "kind": a.entity_kind, "id": a.entity_id },
        "workspace_id": a.workspace_id,
        "evidence": serde_json::from_str::<serde_json::Value>(&a.evidence).unwrap_or_default(),
        "created_at": a.created_at,
        "acknowledged_at": a.acknowledged_at,
        "acknowledged_by": a.acknowledged_by,
    })
}

/// Records a finding; returns the alert when it is new (a repeat for the same
/// detector, entity and minute is dropped).
pub async fn raise(state: &AppState, f: Finding) -> Result<Option<AlertRow>, ApiError> {
    let now = state.clock.now();
    let row = AlertRow {
        id: format!("sal_{}", ulid::Ulid::new()),
        workspace_id: f.workspace_id.clone(),
        detector: f.detector.to_owned(),
        severity: f.severity.as_str().to_owned(),
        entity_kind: f.entity_kind.to_owned(),
        entity_id: f.entity_id.clone(),
        minute: f.minute,
        evidence: f.evidence.to_string(),
        created_at: now,
        acknowledged_at: None,
        acknowledged_by: None,
    };
    let ws_id = f
        .workspace_id
        .as_deref()
        .and_then(|w| WorkspaceId::parse(w).ok());
    let audit = NewAuditEvent::new(ws_id, Actor::System, "security.alert")
        .target(f.entity_kind, f.entity_id.clone())
        .details(serde_json::json!({
            "alert_id": row.id, "detector": row.detector, "severity": row.severity, "evidence": f.evidence,
        }));
    let event = ws_id.map(|ws| {
        crate::events::seal(
            &state.keys.current(),
            ws,
            EventType::SecurityAlert,
            Some(row.id.clone()),
            &alert_json(&row),
            now,
        )
    });
    if !state.store.insert_alert(&row, audit, event).await? {
        return Ok(None);
    }
    metrics::counter!("waypost_security_alerts_total", "detector" => f.detector, "severity" => f.severity.as_str())
        .increment(1);
    // The operators' copy: a log line (no content, only ids and counts).
    tracing::warn!(alert_id = %row.id, detector = f.detector, severity = f.severity.as_str(),
        entity_kind = f.entity_kind, entity_id = %f.entity_id, workspace_id = ?f.workspace_id,
        evidence = %row.evidence, "security alert");
    if f.severity == Severity::High {
        auto_suspend(state, &f, &row).await?;
    }
    Ok(Some(row))
}

/// Suspends the key or channel of a high-severity finding when the workspace allows it.
async fn auto_suspend(state: &AppState, f: &Finding, alert: &AlertRow) -> Result<(), ApiError> {
    let target = match f.entity_kind {
        "api_key" => SuspensionTarget::ApiKey,
        "channel" => SuspensionTarget::Channel,
        _ => return Ok(()),
    };
    let Some(ws) = &f.workspace_id else {
        return Ok(());
    };
    if !state.store.auto_suspend(ws).await? {
        return Ok(());
    }
    let origin = RequestOrigin {
        ip: None,
        user_agent: None,
        rate_limit: None,
    };
    let input = Suspend {
        target,
        target_id: f.entity_id.clone(),
        workspace_id: Some(ws.clone()),
        reason: format!("automatic: {} ({})", f.detector, alert.id),
    };
    let source = Source::Automatic {
        alert_id: alert.id.clone(),
    };
    match suspensions::suspend(state, &origin, input, source).await {
        // Already suspended: nothing more to do.
        Err(ApiError::Problem(p)) if p.status == 409 => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Acknowledges an open alert (of `workspace`, when given); audited.
pub async fn acknowledge(
    state: &AppState,
    origin: &RequestOrigin,
    actor: Actor,
    workspace: Option<WorkspaceId>,
    id: &str,
) -> Result<AlertRow, ApiError> {
    let by = match &actor {
        Actor::User(id) | Actor::ApiKey(id) | Actor::Operator(id) => id.clone(),
        Actor::System => "system".to_owned(),
    };
    let ws = workspace.map(|w| w.to_string());
    let audit = NewAuditEvent::new(workspace, actor, "security.alert_acknowledged")
        .target("security_alert", id.to_owned());
    Ok(state
        .store
        .acknowledge_alert(
            ws.as_deref(),
            id,
            &by,
            state.clock.now(),
            origin.stamp(audit),
        )
        .await?)
}
