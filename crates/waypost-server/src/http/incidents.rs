//! The security incident register over HTTP, for platform operators
//! (`/v1/operator`, operator tokens only). The rules are in `ops::incidents`
//! and `ops::incident_changes`; affected workspaces read incidents through
//! `/v1/incidents` (see `incident_view`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Operator;
use crate::ops::incident_changes;
use crate::ops::incidents::{
    self as op, CloseIncident, CreateIncident, IncidentPage, IncidentQuery, IncidentView,
    UpdateIncident,
};
use crate::state::{AppState, RequestOrigin};

/// Records an incident and starts its 72-hour notification clock.
#[utoipa::path(operation_id = "create_incident", post, path = "/v1/operator/incidents", tag = "incidents",
    security(("operator_token" = [])), request_body = CreateIncident,
    responses((status = 201, body = IncidentView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    origin: RequestOrigin,
    operator: Operator,
    ApiJson(req): ApiJson<CreateIncident>,
) -> Result<(StatusCode, Json<IncidentView>), ApiError> {
    let view = op::create(&state, &origin, &operator, req).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Every incident, oldest first, optionally by status.
#[utoipa::path(operation_id = "list_incidents", get, path = "/v1/operator/incidents", tag = "incidents",
    security(("operator_token" = [])), params(IncidentQuery),
    responses((status = 200, body = IncidentPage)))]
pub async fn list(
    State(state): State<AppState>,
    _operator: Operator,
    Query(q): Query<IncidentQuery>,
) -> Result<Json<IncidentPage>, ApiError> {
    Ok(Json(op::list(&state, q).await?))
}

/// One incident with its description and affected workspaces.
#[utoipa::path(operation_id = "get_incident", get, path = "/v1/operator/incidents/{id}", tag = "incidents",
    security(("operator_token" = [])), params(("id" = String, Path)),
    responses((status = 200, body = IncidentView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<IncidentView>, ApiError> {
    Ok(Json(op::get(&state, &id).await?))
}

/// Changes severity, status, description or the affected workspaces. Newly
/// affected workspaces get `incident.opened`, removed ones `incident.updated`
/// with `affected: false`, the rest `incident.updated` when what they see changed.
#[utoipa::path(operation_id = "update_incident", patch, path = "/v1/operator/incidents/{id}", tag = "incidents",
    security(("operator_token" = [])), params(("id" = String, Path)), request_body = UpdateIncident,
    responses((status = 200, body = IncidentView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    origin: RequestOrigin,
    operator: Operator,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateIncident>,
) -> Result<Json<IncidentView>, ApiError> {
    let view = incident_changes::update(&state, &origin, &operator, &id, req).await?;
    Ok(Json(view))
}

/// Closes an incident, recording when affected customers and authorities were notified.
#[utoipa::path(operation_id = "close_incident", post, path = "/v1/operator/incidents/{id}/close", tag = "incidents",
    security(("operator_token" = [])), params(("id" = String, Path)), request_body = CloseIncident,
    responses((status = 200, body = IncidentView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn close(
    State(state): State<AppState>,
    origin: RequestOrigin,
    operator: Operator,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CloseIncident>,
) -> Result<Json<IncidentView>, ApiError> {
    let view = incident_changes::close(&state, &origin, &operator, &id, req).await?;
    Ok(Json(view))
}
