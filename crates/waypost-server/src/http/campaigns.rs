//! Campaigns: drafts and their pre-flight. Every route needs
//! `campaigns:manage`; the rules are in `ops::campaigns`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::ops::Ctx;
use crate::ops::campaigns::{self, Campaign, CampaignParameters, NewCampaign, Preflight};
use crate::state::{AppState, RequestOrigin};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateChoice {
    pub name: String,
    pub language: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    pub name: String,
    pub segment_id: String,
    /// A template of the workspace; its channel sends the campaign.
    pub template: TemplateChoice,
    #[serde(default)]
    pub parameters: CampaignParameters,
}

#[derive(Serialize, ToSchema)]
pub struct CampaignView {
    pub id: String,
    pub name: String,
    /// `draft`.
    pub status: String,
    pub segment_id: String,
    pub channel_id: String,
    pub template: TemplateView,
    pub parameters: CampaignParameters,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateView {
    pub name: String,
    pub language: String,
}

fn view(c: Campaign) -> CampaignView {
    let r = c.row;
    CampaignView {
        id: r.id,
        name: r.name,
        status: r.status,
        segment_id: r.segment_id,
        channel_id: r.channel_id,
        template: TemplateView {
            name: r.template_name,
            language: r.template_language,
        },
        parameters: c.parameters,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

#[derive(Serialize, ToSchema)]
pub struct CampaignPage {
    pub data: Vec<CampaignView>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct CampaignPageQuery {
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<u32>,
}

/// Saves a campaign draft: a segment, a template and where its parameters come from.
#[utoipa::path(operation_id = "create_campaign", post, path = "/v1/campaigns", tag = "campaigns",
    request_body = CreateCampaign,
    responses((status = 201, body = CampaignView),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "campaign-exists"),
        (status = 422, body = Problem, content_type = "application/problem+json",
            description = "template-unknown, template-parameters, or no such segment")))]
pub async fn create(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::CampaignsManage>,
    ApiJson(req): ApiJson<CreateCampaign>,
) -> Result<(StatusCode, Json<CampaignView>), ApiError> {
    let input = NewCampaign::parse(
        &req.name,
        &req.segment_id,
        &req.template.name,
        &req.template.language,
        req.parameters,
    )?;
    let campaign = campaigns::create_campaign(&state, &Ctx::of(&auth, origin), input).await?;
    Ok((StatusCode::CREATED, Json(view(campaign))))
}

/// The workspace's campaigns, in id order.
#[utoipa::path(operation_id = "list_campaigns", get, path = "/v1/campaigns", tag = "campaigns",
    params(CampaignPageQuery), responses((status = 200, body = CampaignPage)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<act::CampaignsManage>,
    Query(q): Query<CampaignPageQuery>,
) -> Result<Json<CampaignPage>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let ws = auth.workspace_id.to_string();
    let (rows, next_cursor) =
        campaigns::list_campaigns(&state, &ws, q.after.as_deref(), limit).await?;
    Ok(Json(CampaignPage {
        data: rows.into_iter().map(view).collect(),
        next_cursor,
    }))
}

/// One campaign.
#[utoipa::path(operation_id = "get_campaign", get, path = "/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, body = CampaignView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<act::CampaignsManage>,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    let c = campaigns::get_campaign(&state, &auth.workspace_id.to_string(), &id).await?;
    Ok(Json(view(c)))
}

/// The pre-flight: the segment read now, who would be sent the template, who
/// would be skipped and why, the template's category and the messages per cost category.
#[utoipa::path(operation_id = "campaign_preflight", get, path = "/v1/campaigns/{id}/preflight", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, body = Preflight), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "segment-gone")))]
pub async fn preflight(
    State(state): State<AppState>,
    auth: Authorized<act::CampaignsManage>,
    Path(id): Path<String>,
) -> Result<Json<Preflight>, ApiError> {
    Ok(Json(
        campaigns::preflight(&state, &auth.workspace_id.to_string(), &id).await?,
    ))
}
