//! Channels: a workspace's WhatsApp business numbers. Secrets (access token,
//! app secret, verify token) are encrypted at rest and never returned.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use waypost_store::messaging::ChannelRow;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::ops::Ctx;
use crate::ops::channel_check::{self, ChannelCheck};
use crate::ops::channels::{self, CreateChannel, Provider, UpdateChannel};
use crate::state::{AppState, RequestOrigin};

#[derive(Serialize, ToSchema)]
pub struct ChannelView {
    pub id: String,
    pub name: String,
    pub provider: Provider,
    pub phone_number_id: String,
    pub waba_id: String,
    pub base_url: Option<String>,
    pub api_version: Option<String>,
    pub throughput_mps: u32,
    /// Where the provider must send this channel's webhooks.
    pub inbound_url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn view(state: &AppState, c: ChannelRow) -> ChannelView {
    ChannelView {
        inbound_url: format!(
            "{}/webhooks/whatsapp/{}",
            state.config.public_url().trim_end_matches('/'),
            c.id
        ),
        provider: Provider::of(&c),
        id: c.id,
        name: c.name,
        phone_number_id: c.phone_number_id,
        waba_id: c.waba_id,
        base_url: c.base_url,
        api_version: c.api_version,
        throughput_mps: c.throughput_mps as u32,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

/// Adds a channel. Its secrets are encrypted and never shown again.
#[utoipa::path(operation_id = "create_channel", post, path = "/v1/channels", tag = "channels", request_body = CreateChannel,
    responses((status = 201, body = ChannelView), (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["channels:manage"]), ("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
    ApiJson(req): ApiJson<CreateChannel>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    let row = channels::create(&state, &Ctx::of(&auth, origin), req).await?;
    Ok((StatusCode::CREATED, Json(view(&state, row))))
}

/// The workspace's channels.
#[utoipa::path(operation_id = "list_channels", get, path = "/v1/channels", tag = "channels",
    responses((status = 200, body = Vec<ChannelView>)),
    security(("api_key" = ["channels:manage"]), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    let rows = channels::list(&state, &Ctx::of(&auth, origin)).await?;
    Ok(Json(rows.into_iter().map(|c| view(&state, c)).collect()))
}

/// One channel.
#[utoipa::path(operation_id = "get_channel", get, path = "/v1/channels/{id}", tag = "channels", params(("id" = String, Path)),
    responses((status = 200, body = ChannelView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["channels:manage"]), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
    Path(id): Path<String>,
) -> Result<Json<ChannelView>, ApiError> {
    let row = channels::get(&state, &Ctx::of(&auth, origin), &id).await?;
    Ok(Json(view(&state, row)))
}

/// Changes a channel; secrets given here replace the stored ones.
#[utoipa::path(operation_id = "update_channel", patch, path = "/v1/channels/{id}", tag = "channels", params(("id" = String, Path)),
    request_body = UpdateChannel,
    responses((status = 200, body = ChannelView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["channels:manage"]), ("session" = [])))]
pub async fn update(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateChannel>,
) -> Result<Json<ChannelView>, ApiError> {
    let row = channels::update(&state, &Ctx::of(&auth, origin), &id, req).await?;
    Ok(Json(view(&state, row)))
}

/// Removes a channel. Its message history stays; it no longer sends or receives.
#[utoipa::path(operation_id = "delete_channel", delete, path = "/v1/channels/{id}", tag = "channels", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["channels:manage"]), ("session" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    channels::delete(&state, &Ctx::of(&auth, origin), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks the provider about the channel's number: display number, quality and limits, or the provider's error.
#[utoipa::path(operation_id = "check_channel", post, path = "/v1/channels/{id}/check", tag = "channels", params(("id" = String, Path)),
    responses((status = 200, body = ChannelCheck), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["channels:manage"]), ("session" = [])))]
pub async fn check(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
    Path(id): Path<String>,
) -> Result<Json<ChannelCheck>, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    Ok(Json(channel_check::check(&state, &ctx, &id).await?))
}
