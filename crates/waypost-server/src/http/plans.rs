//! Plans for operators (`/v1/operator/plans`, a workspace's plan and billing
//! status under `/v1/operator/workspaces/{id}/plan`), and a workspace's own
//! view of its plan and what it used of each quota (`GET /v1/plan`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_store::plans::{PlanRow, WorkspaceBilling};

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Operator;
use crate::auth::permission::{Authorized, act};
use crate::error::unprocessable;
use crate::ops::plans::{self, PlanInput};
use crate::state::{AppState, RequestOrigin};

#[derive(Deserialize, ToSchema)]
pub struct PutPlan {
    pub name: String,
    /// Quota name to limit: `messages.<category>`, `shield.scans`, `assistant.tokens`
    /// (per calendar month), `channels`, `members` (held at once). Absent: unlimited.
    #[serde(default)]
    pub quotas: BTreeMap<String, i64>,
    /// Included features: `campaigns`, `assistant`.
    #[serde(default)]
    pub features: Vec<String>,
    /// The recurring Stripe price a checkout for this plan subscribes to.
    pub stripe_price_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PlanView {
    pub id: String,
    pub name: String,
    pub quotas: BTreeMap<String, i64>,
    pub features: Vec<String>,
    pub stripe_price_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<PlanRow> for PlanView {
    fn from(p: PlanRow) -> Self {
        Self {
            quotas: serde_json::from_str(&p.quotas).unwrap_or_default(),
            features: serde_json::from_str(&p.features).unwrap_or_default(),
            id: p.id,
            name: p.name,
            stripe_price_id: p.stripe_price_id,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct AssignPlan {
    /// A plan id, or null for none (unlimited).
    pub plan_id: Option<String>,
    /// `active`, `past_due`, `grace`, `read_only` or `canceled`; default unchanged.
    pub status: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BillingView {
    pub workspace_id: String,
    pub plan_id: Option<String>,
    pub status: String,
    pub status_changed_at: DateTime<Utc>,
    pub grace_ends_at: Option<DateTime<Utc>>,
    pub stripe_customer_id: Option<String>,
}

impl From<WorkspaceBilling> for BillingView {
    fn from(b: WorkspaceBilling) -> Self {
        Self {
            workspace_id: b.workspace_id,
            plan_id: b.plan_id,
            status: b.status,
            status_changed_at: b.status_changed_at,
            grace_ends_at: b.grace_ends_at,
            stripe_customer_id: b.stripe_customer_id,
        }
    }
}

/// Creates or replaces a plan (operators).
#[utoipa::path(operation_id = "put_plan", put, path = "/v1/operator/plans/{id}", tag = "usage",
    security(("operator_token" = [])), params(("id" = String, Path)), request_body = PutPlan,
    responses((status = 200, body = PlanView), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_plan(
    State(state): State<AppState>,
    origin: RequestOrigin,
    operator: Operator,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PutPlan>,
) -> Result<Json<PlanView>, ApiError> {
    let input = PlanInput {
        id,
        name: req.name,
        quotas: req.quotas,
        features: req.features,
        stripe_price_id: req.stripe_price_id,
    };
    let row = plans::put_plan(&state, &origin, operator.actor(), input).await?;
    Ok(Json(row.into()))
}

/// Every plan (operators).
#[utoipa::path(operation_id = "list_plans", get, path = "/v1/operator/plans", tag = "usage",
    security(("operator_token" = [])), responses((status = 200, body = Vec<PlanView>)))]
pub async fn list_plans(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<Vec<PlanView>>, ApiError> {
    let rows = state.store.list_plans().await?;
    Ok(Json(rows.into_iter().map(PlanView::from).collect()))
}

/// Puts a workspace on a plan and optionally sets its billing status (operators).
#[utoipa::path(operation_id = "assign_plan", put, path = "/v1/operator/workspaces/{id}/plan", tag = "usage",
    security(("operator_token" = [])), params(("id" = String, Path)), request_body = AssignPlan,
    responses((status = 200, body = BillingView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn assign_plan(
    State(state): State<AppState>,
    origin: RequestOrigin,
    operator: Operator,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AssignPlan>,
) -> Result<Json<BillingView>, ApiError> {
    let status = req
        .status
        .map(|s| {
            s.parse()
                .map_err(|e: String| unprocessable(format!("`status`: {e}.")))
        })
        .transpose()?;
    let b = plans::assign(&state, &origin, operator.actor(), &id, req.plan_id, status).await?;
    Ok(Json(b.into()))
}

#[derive(Serialize, ToSchema)]
pub struct QuotaUse {
    pub limit: i64,
    /// This month's use (monthly quotas); null for limits on what is held.
    pub used: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct WorkspacePlanView {
    pub plan_id: Option<String>,
    pub status: String,
    pub features: Vec<String>,
    pub quotas: BTreeMap<String, QuotaUse>,
}

/// The workspace's plan, billing status and this month's use of each quota
/// (scope `usage:read`); a workspace without a plan is unlimited and `active`.
#[utoipa::path(operation_id = "get_workspace_plan", get, path = "/v1/plan", tag = "usage",
    responses((status = 200, body = WorkspacePlanView)),
    security(("api_key" = ["usage:read"]), ("session" = [])))]
pub async fn get_workspace_plan(
    State(state): State<AppState>,
    auth: Authorized<act::UsageRead>,
) -> Result<Json<WorkspacePlanView>, ApiError> {
    let ws = auth.workspace_id.to_string();
    let Some(b) = state.quotas.billing(&ws) else {
        return Ok(Json(WorkspacePlanView {
            plan_id: None,
            status: "active".into(),
            features: vec![],
            quotas: BTreeMap::new(),
        }));
    };
    let now = state.clock.now();
    let quotas = b
        .limits
        .quotas
        .iter()
        .map(|(q, limit)| {
            let used = q.counter().map(|m| state.quotas.used_now(&ws, &m, now));
            (
                q.to_string(),
                QuotaUse {
                    limit: *limit,
                    used,
                },
            )
        })
        .collect();
    Ok(Json(WorkspacePlanView {
        plan_id: b.plan_id,
        status: b.status.as_str().into(),
        features: b.limits.feature_names(),
        quotas,
    }))
}
