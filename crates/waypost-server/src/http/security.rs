//! Trust and safety routes: operators suspend and reinstate keys, channels,
//! users and workspaces and read every security alert; a workspace reads its
//! own alerts and suspensions, acknowledges alerts, sets whether findings may
//! suspend automatically, and (owners, with MFA) lifts key and channel suspensions.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use waypost_core::NewAuditEvent;
use waypost_core::trust::SuspensionTarget;
use waypost_store::trust::{AlertRow, SuspensionRow};

use super::json::ApiJson;
use super::{ApiError, Problem, unprocessable};
use crate::auth::permission::act;
use crate::auth::{Authorized, Operator};
use crate::ops::Ctx;
use crate::ops::paging::page_limit;
use crate::ops::security_alerts::{acknowledge, alert_json};
use crate::ops::suspensions::{self, Source, Suspend};
use crate::state::{AppState, RequestOrigin};

#[derive(Deserialize, ToSchema)]
pub struct CreateSuspension {
    /// `api_key`, `channel`, `user` or `workspace`.
    pub target_kind: String,
    pub target_id: String,
    /// The key's or channel's workspace (required for those two).
    pub workspace_id: Option<String>,
    /// Why (1 to 500 characters); told to the workspace's owners.
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct SuspensionView {
    pub id: String,
    pub workspace_id: Option<String>,
    pub target_kind: String,
    pub target_id: String,
    pub reason: String,
    /// `operator` or `automatic`.
    pub source: String,
    pub alert_id: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub lifted_at: Option<DateTime<Utc>>,
    pub lifted_by: Option<String>,
}

impl From<SuspensionRow> for SuspensionView {
    fn from(s: SuspensionRow) -> Self {
        Self {
            id: s.id,
            workspace_id: s.workspace_id,
            target_kind: s.target_kind,
            target_id: s.target_id,
            reason: s.reason,
            source: s.source,
            alert_id: s.alert_id,
            created_by: s.created_by,
            created_at: s.created_at,
            lifted_at: s.lifted_at,
            lifted_by: s.lifted_by,
        }
    }
}

/// A security alert: `{id, detector, severity, entity: {kind, id}, workspace_id,
/// evidence (counts and thresholds), created_at, acknowledged_at, acknowledged_by}`.
#[derive(Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct AlertView(serde_json::Value);

impl From<AlertRow> for AlertView {
    fn from(a: AlertRow) -> Self {
        Self(alert_json(&a))
    }
}

#[derive(Deserialize, IntoParams)]
pub struct AlertQuery {
    /// Only unacknowledged alerts.
    #[serde(default)]
    pub open: bool,
    /// 1 to 500 (default 100), newest first.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Deserialize, Serialize, ToSchema)]
pub struct SecurityPolicy {
    /// Whether a high-severity finding suspends the key or channel it is about by itself.
    pub auto_suspend: bool,
}

fn target(kind: &str) -> Result<SuspensionTarget, ApiError> {
    kind.parse()
        .map_err(|e: waypost_core::trust::UnknownTarget| unprocessable(e.to_string()))
}

fn limit(l: Option<u32>) -> Result<u32, ApiError> {
    page_limit(l, 100, 500)
}

/// Suspends an API key, a channel (its outbox is held), a user or a workspace.
#[utoipa::path(operation_id = "create_suspension", post, path = "/v1/operator/suspensions", tag = "security",
    security(("operator_token" = [])), request_body = CreateSuspension,
    responses((status = 201, body = SuspensionView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_suspension(
    State(state): State<AppState>,
    origin: RequestOrigin,
    operator: Operator,
    ApiJson(req): ApiJson<CreateSuspension>,
) -> Result<(StatusCode, Json<SuspensionView>), ApiError> {
    let input = Suspend {
        target: target(&req.target_kind)?,
        target_id: req.target_id,
        workspace_id: req.workspace_id,
        reason: req.reason,
    };
    let row =
        suspensions::suspend(&state, &origin, input, Source::Operator(operator.actor())).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Every suspension, newest first (active and lifted).
#[utoipa::path(operation_id = "list_all_suspensions", get, path = "/v1/operator/suspensions", tag = "security",
    security(("operator_token" = [])), params(AlertQuery), responses((status = 200, body = Vec<SuspensionView>)))]
pub async fn list_all_suspensions(
    State(state): State<AppState>,
    _operator: Operator,
    Query(q): Query<AlertQuery>,
) -> Result<Json<Vec<SuspensionView>>, ApiError> {
    let rows = state.store.list_suspensions(None, limit(q.limit)?).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// Lifts a suspension.
#[utoipa::path(operation_id = "lift_suspension", delete, path = "/v1/operator/suspensions/{target_kind}/{target_id}", tag = "security",
    security(("operator_token" = [])), params(("target_kind" = String, Path), ("target_id" = String, Path)),
    responses((status = 200, body = SuspensionView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn lift_suspension(
    State(state): State<AppState>,
    origin: RequestOrigin,
    operator: Operator,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Json<SuspensionView>, ApiError> {
    let row = suspensions::lift(&state, &origin, operator.actor(), target(&kind)?, &id).await?;
    Ok(Json(row.into()))
}

/// Every workspace's security alerts, newest first.
#[utoipa::path(operation_id = "list_all_security_alerts", get, path = "/v1/operator/security/alerts", tag = "security",
    security(("operator_token" = [])), params(AlertQuery), responses((status = 200, body = Vec<AlertView>)))]
pub async fn list_all_alerts(
    State(state): State<AppState>,
    _operator: Operator,
    Query(q): Query<AlertQuery>,
) -> Result<Json<Vec<AlertView>>, ApiError> {
    let rows = state
        .store
        .list_alerts(None, q.open, limit(q.limit)?)
        .await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// Acknowledges any alert.
#[utoipa::path(operation_id = "operator_acknowledge_alert", post, path = "/v1/operator/security/alerts/{id}/acknowledge", tag = "security",
    security(("operator_token" = [])), params(("id" = String, Path)),
    responses((status = 200, body = AlertView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn operator_acknowledge(
    State(state): State<AppState>,
    origin: RequestOrigin,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<AlertView>, ApiError> {
    Ok(Json(
        acknowledge(&state, &origin, operator.actor(), None, &id)
            .await?
            .into(),
    ))
}

/// The workspace's security alerts, newest first.
#[utoipa::path(operation_id = "list_security_alerts", get, path = "/v1/security/alerts", tag = "security",
    params(AlertQuery), responses((status = 200, body = Vec<AlertView>)),
    security(("api_key" = ["audit:read"]), ("session" = [])))]
pub async fn list_alerts(
    State(state): State<AppState>,
    auth: Authorized<act::AuditRead>,
    Query(q): Query<AlertQuery>,
) -> Result<Json<Vec<AlertView>>, ApiError> {
    let ws = auth.workspace_id.to_string();
    let rows = state
        .store
        .list_alerts(Some(&ws), q.open, limit(q.limit)?)
        .await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// Acknowledges one of the workspace's alerts (audited).
#[utoipa::path(operation_id = "acknowledge_security_alert", post, path = "/v1/security/alerts/{id}/acknowledge", tag = "security",
    params(("id" = String, Path)),
    responses((status = 200, body = AlertView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn acknowledge_alert(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WorkspaceManage>,
    Path(id): Path<String>,
) -> Result<Json<AlertView>, ApiError> {
    let row = acknowledge(
        &state,
        &origin,
        auth.caller.actor(),
        Some(auth.workspace_id),
        &id,
    )
    .await?;
    Ok(Json(row.into()))
}

/// The workspace's suspensions, newest first.
#[utoipa::path(operation_id = "list_suspensions", get, path = "/v1/security/suspensions", tag = "security",
    params(AlertQuery), responses((status = 200, body = Vec<SuspensionView>)),
    security(("api_key" = ["audit:read"]), ("session" = [])))]
pub async fn list_suspensions(
    State(state): State<AppState>,
    auth: Authorized<act::AuditRead>,
    Query(q): Query<AlertQuery>,
) -> Result<Json<Vec<SuspensionView>>, ApiError> {
    let ws = auth.workspace_id.to_string();
    let rows = state
        .store
        .list_suspensions(Some(&ws), limit(q.limit)?)
        .await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// An owner lifts a key or channel suspension (needs MFA and a re-authentication within 5 minutes).
#[utoipa::path(operation_id = "owner_lift_suspension", delete, path = "/v1/security/suspensions/{target_kind}/{target_id}", tag = "security",
    params(("target_kind" = String, Path), ("target_id" = String, Path)),
    responses((status = 200, body = SuspensionView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn owner_lift(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WorkspaceManage>,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Json<SuspensionView>, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let row =
        suspensions::lift_by_owner(&state, &ctx, &auth.caller, auth.role, target(&kind)?, &id)
            .await?;
    Ok(Json(row.into()))
}

/// Whether findings may suspend by themselves.
#[utoipa::path(operation_id = "get_security_policy", get, path = "/v1/security/policy", tag = "security",
    responses((status = 200, body = SecurityPolicy)),
    security(("api_key" = ["audit:read"]), ("session" = [])))]
pub async fn get_policy(
    State(state): State<AppState>,
    auth: Authorized<act::AuditRead>,
) -> Result<Json<SecurityPolicy>, ApiError> {
    let on = state
        .store
        .auto_suspend(&auth.workspace_id.to_string())
        .await?;
    Ok(Json(SecurityPolicy { auto_suspend: on }))
}

/// Sets whether a high-severity finding suspends the key or channel it is about (audited).
#[utoipa::path(operation_id = "set_security_policy", put, path = "/v1/security/policy", tag = "security",
    request_body = SecurityPolicy, responses((status = 200, body = SecurityPolicy)),
    security(("session" = [])))]
pub async fn set_policy(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WorkspaceManage>,
    ApiJson(req): ApiJson<SecurityPolicy>,
) -> Result<Json<SecurityPolicy>, ApiError> {
    let event = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "security.policy_changed",
    )
    .details(serde_json::json!({ "auto_suspend": req.auto_suspend }));
    state
        .store
        .set_auto_suspend(
            &auth.workspace_id.to_string(),
            req.auto_suspend,
            origin.stamp(event),
        )
        .await?;
    Ok(Json(req))
}
