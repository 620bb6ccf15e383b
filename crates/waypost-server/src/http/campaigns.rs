//! Campaigns: drafts, their pre-flight, start (confirmed against the
//! pre-flight), pause, resume, cancel, live counters and the outcome export.
//! Every route needs `campaigns:manage`; the rules are in `ops::campaigns`
//! and `ops::campaign_runs`.

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
use crate::ops::campaign_outcomes;
use crate::ops::campaign_runs::{self, CampaignCounters, StartCampaign};
use crate::ops::campaigns::{self, Campaign, CampaignParameters, NewCampaign, Preflight};
use crate::ops::paging::page_limit;
use crate::state::{AppState, RequestOrigin};
use waypost_core::campaign::CampaignAction;

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
    /// Set at start: not before this time.
    pub start_at: Option<DateTime<Utc>>,
    /// Set at start: recipients' hours, quiet hours and their time zone.
    #[schema(value_type = Option<Object>)]
    pub send_window: Option<serde_json::Value>,
    /// The eligible count the start confirmed.
    pub confirmed_recipients: Option<i64>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// While paused: `manual`, `template_paused`, `quality_red`, `opt_out_rate` or `quota_exceeded`.
    pub pause_reason: Option<String>,
    /// Live counts by outcome (one campaign's read only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counters: Option<CampaignCounters>,
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
        start_at: r.start_at,
        send_window: r
            .send_window
            .as_deref()
            .and_then(|w| serde_json::from_str(w).ok()),
        confirmed_recipients: r.confirmed_recipients,
        started_at: r.started_at,
        finished_at: r.finished_at,
        pause_reason: r.pause_reason,
        counters: None,
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
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Saves a campaign draft: a segment, a template and where its parameters come from.
#[utoipa::path(operation_id = "create_campaign", post, path = "/v1/campaigns", tag = "campaigns",
    request_body = CreateCampaign,
    responses((status = 201, body = CampaignView),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "campaign-exists"),
        (status = 422, body = Problem, content_type = "application/problem+json",
            description = "template-unknown, template-parameters, or no such segment")),
    security(("api_key" = ["campaigns:manage"]), ("session" = [])))]
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
    params(CampaignPageQuery), responses((status = 200, body = CampaignPage)),
    security(("api_key" = ["campaigns:manage"]), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<act::CampaignsManage>,
    Query(q): Query<CampaignPageQuery>,
) -> Result<Json<CampaignPage>, ApiError> {
    let limit = page_limit(q.limit, 100, 500)?;
    let ws = auth.workspace_id.to_string();
    let (rows, next_cursor) =
        campaigns::list_campaigns(&state, &ws, q.after.as_deref(), limit).await?;
    Ok(Json(CampaignPage {
        data: rows.into_iter().map(view).collect(),
        next_cursor,
    }))
}

/// One campaign, with live counters of its recipients by outcome.
#[utoipa::path(operation_id = "get_campaign", get, path = "/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, body = CampaignView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["campaigns:manage"]), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<act::CampaignsManage>,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    let (c, counters) =
        campaign_runs::with_counters(&state, &auth.workspace_id.to_string(), &id).await?;
    let mut v = view(c);
    v.counters = Some(counters);
    Ok(Json(v))
}

/// The pre-flight: the segment read now, who would be sent the template, who
/// would be skipped and why, the template's category and the messages per cost category.
#[utoipa::path(operation_id = "campaign_preflight", get, path = "/v1/campaigns/{id}/preflight", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, body = Preflight), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "segment-gone")),
    security(("api_key" = ["campaigns:manage"]), ("session" = [])))]
pub async fn preflight(
    State(state): State<AppState>,
    auth: Authorized<act::CampaignsManage>,
    Path(id): Path<String>,
) -> Result<Json<Preflight>, ApiError> {
    Ok(Json(
        campaigns::preflight(&state, &auth.workspace_id.to_string(), &id).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Hours {
    /// 0 to 23.
    pub from_hour: u32,
    /// 1 to 24; before `from_hour` wraps past midnight.
    pub to_hour: u32,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The pre-flight's `eligible`, as read before starting: a start whose
    /// audience changed since is refused (`preflight-changed`) with the new counts.
    pub confirm_eligible: i64,
    /// Start later; now when absent.
    pub start_at: Option<DateTime<Utc>>,
    /// Send only within these hours of each recipient's time zone.
    pub recipient_hours: Option<Hours>,
    /// Send nothing within these hours of `time_zone`.
    pub quiet_hours: Option<Hours>,
    /// The zone of quiet hours and of recipients without one (IANA name); UTC when absent.
    pub time_zone: Option<String>,
}

/// Starts a draft after checking the confirmation against a fresh pre-flight:
/// every recipient is written down, the eligible ones are sent through the outbox.
#[utoipa::path(operation_id = "start_campaign", post, path = "/v1/campaigns/{id}/start", tag = "campaigns",
    params(("id" = String, Path)), request_body = StartRequest,
    responses((status = 200, body = CampaignView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "preflight-changed (with the new `preflight`), campaign-state"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "template-not-approved, no eligible recipient, bad hours")),
    security(("api_key" = ["campaigns:manage"]), ("session" = [])))]
pub async fn start(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::CampaignsManage>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<StartRequest>,
) -> Result<Json<CampaignView>, ApiError> {
    let input = StartCampaign::parse(
        req.confirm_eligible,
        req.start_at,
        req.recipient_hours.map(|h| (h.from_hour, h.to_hour)),
        req.quiet_hours.map(|h| (h.from_hour, h.to_hour)),
        req.time_zone,
    )?;
    let c = campaign_runs::start(&state, &Ctx::of(&auth, origin), &id, input).await?;
    Ok(Json(view(c)))
}

async fn act_on(
    state: AppState,
    origin: RequestOrigin,
    auth: Authorized<act::CampaignsManage>,
    id: String,
    action: CampaignAction,
) -> Result<Json<CampaignView>, ApiError> {
    let c = campaign_runs::act(&state, &Ctx::of(&auth, origin), &id, action).await?;
    Ok(Json(view(c)))
}

/// Pauses a scheduled or running campaign (a `campaign.paused` event says why).
#[utoipa::path(operation_id = "pause_campaign", post, path = "/v1/campaigns/{id}/pause", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, body = CampaignView), (status = 409, body = Problem, content_type = "application/problem+json", description = "campaign-state")),
    security(("api_key" = ["campaigns:manage"]), ("session" = [])))]
pub async fn pause(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::CampaignsManage>,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    act_on(state, origin, auth, id, CampaignAction::Pause).await
}

/// Resumes a paused campaign where it stopped.
#[utoipa::path(operation_id = "resume_campaign", post, path = "/v1/campaigns/{id}/resume", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, body = CampaignView), (status = 409, body = Problem, content_type = "application/problem+json", description = "campaign-state")),
    security(("api_key" = ["campaigns:manage"]), ("session" = [])))]
pub async fn resume(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::CampaignsManage>,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    act_on(state, origin, auth, id, CampaignAction::Resume).await
}

/// Cancels a campaign: recipients not yet queued are never sent.
#[utoipa::path(operation_id = "cancel_campaign", post, path = "/v1/campaigns/{id}/cancel", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, body = CampaignView), (status = 409, body = Problem, content_type = "application/problem+json", description = "campaign-state")),
    security(("api_key" = ["campaigns:manage"]), ("session" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::CampaignsManage>,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    act_on(state, origin, auth, id, CampaignAction::Cancel).await
}

/// Every recipient's outcome as CSV: `seq,contact_id,outcome,skip_reason,error_code,message_id,queued_at`
/// (contact ids only: no phone numbers or names), streamed page by page.
#[utoipa::path(operation_id = "export_campaign_outcomes", get, path = "/v1/campaigns/{id}/outcomes.csv", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["campaigns:manage"]), ("session" = [])))]
pub async fn export(
    State(state): State<AppState>,
    auth: Authorized<act::CampaignsManage>,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let csv = campaign_outcomes::export_csv(&state, &auth.workspace_id.to_string(), &id).await?;
    csv_download(csv)
}

/// A CSV stream as a download named `campaign-outcomes.csv`.
pub fn csv_download(
    csv: impl futures_util::Stream<Item = Result<String, std::io::Error>> + Send + 'static,
) -> Result<axum::response::Response, ApiError> {
    axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(
            axum::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"campaign-outcomes.csv\"",
        )
        .body(axum::body::Body::from_stream(csv))
        .map_err(|e| ApiError::Internal(e.into()))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessagingTierView {
    /// `250`, `1k`, `10k`, `100k` or `unlimited`: unique users the number may
    /// message in a rolling 24 hours; campaigns keep to it.
    pub tier: String,
}

/// The number's messaging tier.
#[utoipa::path(operation_id = "get_messaging_tier", get, path = "/v1/channels/{id}/messaging-tier", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, body = MessagingTierView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["campaigns:manage"]), ("session" = [])))]
pub async fn get_tier(
    State(state): State<AppState>,
    auth: Authorized<act::CampaignsManage>,
    Path(id): Path<String>,
) -> Result<Json<MessagingTierView>, ApiError> {
    let tier =
        crate::ops::channels::messaging_tier(&state, &auth.workspace_id.to_string(), &id).await?;
    Ok(Json(MessagingTierView {
        tier: tier.as_str().to_owned(),
    }))
}

/// Sets the number's messaging tier (as Meta shows it for the number).
#[utoipa::path(operation_id = "set_messaging_tier", put, path = "/v1/channels/{id}/messaging-tier", tag = "campaigns",
    params(("id" = String, Path)), request_body = MessagingTierView,
    responses((status = 200, body = MessagingTierView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["campaigns:manage"]), ("session" = [])))]
pub async fn set_tier(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::CampaignsManage>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<MessagingTierView>,
) -> Result<Json<MessagingTierView>, ApiError> {
    let tier =
        crate::ops::channels::set_messaging_tier(&state, &Ctx::of(&auth, origin), &id, &req.tier)
            .await?;
    Ok(Json(MessagingTierView {
        tier: tier.as_str().to_owned(),
    }))
}
