//! Channels: a workspace's WhatsApp business numbers. Secrets (access token,
//! app secret, verify token) are encrypted at rest and never returned.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_core::{ChannelId, NewAuditEvent};
use waypost_store::messaging::ChannelRow;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::error::unprocessable as invalid;
use crate::messaging::{ChannelSecret, client_for, seal_secret};
use crate::state::{AppState, RequestOrigin};

/// Meta's default per-number throughput.
const DEFAULT_THROUGHPUT_MPS: u32 = 80;
const MAX_THROUGHPUT_MPS: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Meta's WhatsApp Cloud API.
    Cloud,
    /// The built-in emulator (`waypost sandbox`).
    Sandbox,
}

impl Provider {
    fn as_str(self) -> &'static str {
        match self {
            Provider::Cloud => "cloud",
            Provider::Sandbox => "sandbox",
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    pub name: String,
    pub provider: Provider,
    pub phone_number_id: String,
    pub waba_id: String,
    pub access_token: String,
    /// The Meta app secret that signs inbound webhooks.
    pub app_secret: String,
    /// What Meta echoes in the webhook verify handshake.
    pub verify_token: String,
    /// Defaults to `https://graph.facebook.com/`; required for `sandbox`.
    pub base_url: Option<String>,
    /// e.g. `v21.0`.
    pub api_version: Option<String>,
    /// Messages per second this number may send (default 80).
    pub throughput_mps: Option<u32>,
}

/// Fields to change; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannel {
    pub name: Option<String>,
    pub phone_number_id: Option<String>,
    pub waba_id: Option<String>,
    pub access_token: Option<String>,
    pub app_secret: Option<String>,
    pub verify_token: Option<String>,
    pub base_url: Option<String>,
    pub api_version: Option<String>,
    pub throughput_mps: Option<u32>,
}

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

fn view(state: &AppState, c: ChannelRow) -> ChannelView {
    ChannelView {
        inbound_url: format!(
            "{}/webhooks/whatsapp/{}",
            state.config.public_url().trim_end_matches('/'),
            c.id
        ),
        provider: if c.provider == "sandbox" {
            Provider::Sandbox
        } else {
            Provider::Cloud
        },
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

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() || value.len() > max {
        return Err(invalid(format!("`{field}` must be 1 to {max} characters")));
    }
    Ok(())
}

fn check_provider_id(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > 64 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!("`{field}` must be Meta's numeric id")));
    }
    Ok(())
}

fn check_base_url(provider: Provider, url: Option<&str>) -> Result<(), ApiError> {
    match url {
        None if provider == Provider::Sandbox => {
            Err(invalid("`base_url` is required for a sandbox channel"))
        }
        None => Ok(()),
        Some(u) => {
            let parsed =
                url::Url::parse(u).map_err(|_| invalid("`base_url` must be an absolute URL"))?;
            match (parsed.scheme(), provider) {
                ("https", _) | ("http", Provider::Sandbox) => Ok(()),
                _ => Err(invalid(
                    "`base_url` must use https (plain http only for sandbox channels)",
                )),
            }
        }
    }
}

fn check_throughput(mps: u32) -> Result<(), ApiError> {
    if mps == 0 || mps > MAX_THROUGHPUT_MPS {
        return Err(invalid(format!(
            "`throughput_mps` must be 1 to {MAX_THROUGHPUT_MPS}"
        )));
    }
    Ok(())
}

fn check_version(version: Option<&str>) -> Result<(), ApiError> {
    if let Some(v) = version {
        waypost_cloudapi::ClientConfig::new(
            "https://graph.facebook.com/",
            Some(v),
            secrecy::SecretString::from(String::new()),
        )
        .map_err(|_| invalid("`api_version` must look like v21.0"))?;
    }
    Ok(())
}

/// Adds a channel. Its secrets are encrypted and never shown again.
#[utoipa::path(operation_id = "create_channel", post, path = "/v1/channels", tag = "channels", request_body = CreateChannel,
    responses((status = 201, body = ChannelView), (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
    ApiJson(req): ApiJson<CreateChannel>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    check_text("name", &req.name, 100)?;
    check_provider_id("phone_number_id", &req.phone_number_id)?;
    check_provider_id("waba_id", &req.waba_id)?;
    check_text("access_token", &req.access_token, 4096)?;
    check_text("app_secret", &req.app_secret, 512)?;
    check_text("verify_token", &req.verify_token, 512)?;
    check_base_url(req.provider, req.base_url.as_deref())?;
    check_version(req.api_version.as_deref())?;
    let mps = req.throughput_mps.unwrap_or(DEFAULT_THROUGHPUT_MPS);
    check_throughput(mps)?;
    let id = ChannelId::new().to_string();
    let now = state.clock.now();
    let row = ChannelRow {
        workspace_id: auth.workspace_id.to_string(),
        name: req.name.trim().to_owned(),
        provider: req.provider.as_str().to_owned(),
        phone_number_id: req.phone_number_id,
        waba_id: req.waba_id,
        access_token: seal_secret(
            &state.keys,
            &id,
            ChannelSecret::AccessToken,
            &req.access_token,
        ),
        app_secret: seal_secret(&state.keys, &id, ChannelSecret::AppSecret, &req.app_secret),
        verify_token: seal_secret(
            &state.keys,
            &id,
            ChannelSecret::VerifyToken,
            &req.verify_token,
        ),
        base_url: req.base_url,
        api_version: req.api_version,
        throughput_mps: mps as i64,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        id,
    };
    let event = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "channel.created",
    )
    .target("channel", row.id.clone())
    .details(
        serde_json::json!({ "provider": row.provider, "phone_number_id": row.phone_number_id }),
    );
    state
        .store
        .create_channel(&row, origin.stamp(event))
        .await?;
    Ok((StatusCode::CREATED, Json(view(&state, row))))
}

/// The workspace's channels.
#[utoipa::path(operation_id = "list_channels", get, path = "/v1/channels", tag = "channels",
    responses((status = 200, body = Vec<ChannelView>)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<act::ChannelsManage>,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    let rows = state
        .store
        .list_channels(&auth.workspace_id.to_string())
        .await?;
    Ok(Json(rows.into_iter().map(|c| view(&state, c)).collect()))
}

/// One channel.
#[utoipa::path(operation_id = "get_channel", get, path = "/v1/channels/{id}", tag = "channels", params(("id" = String, Path)),
    responses((status = 200, body = ChannelView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<act::ChannelsManage>,
    Path(id): Path<String>,
) -> Result<Json<ChannelView>, ApiError> {
    let row = state
        .store
        .get_channel(&auth.workspace_id.to_string(), &id)
        .await?;
    Ok(Json(view(&state, row)))
}

/// Changes a channel; secrets given here replace the stored ones.
#[utoipa::path(operation_id = "update_channel", patch, path = "/v1/channels/{id}", tag = "channels", params(("id" = String, Path)),
    request_body = UpdateChannel,
    responses((status = 200, body = ChannelView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateChannel>,
) -> Result<Json<ChannelView>, ApiError> {
    let mut row = state
        .store
        .get_channel(&auth.workspace_id.to_string(), &id)
        .await?;
    let provider = if row.provider == "sandbox" {
        Provider::Sandbox
    } else {
        Provider::Cloud
    };
    let mut changed = Vec::new();
    if let Some(name) = req.name {
        check_text("name", &name, 100)?;
        row.name = name.trim().to_owned();
        changed.push("name");
    }
    if let Some(v) = req.phone_number_id {
        check_provider_id("phone_number_id", &v)?;
        row.phone_number_id = v;
        changed.push("phone_number_id");
    }
    if let Some(v) = req.waba_id {
        check_provider_id("waba_id", &v)?;
        row.waba_id = v;
        changed.push("waba_id");
    }
    for (field, value, which) in [
        ("access_token", req.access_token, ChannelSecret::AccessToken),
        ("app_secret", req.app_secret, ChannelSecret::AppSecret),
        ("verify_token", req.verify_token, ChannelSecret::VerifyToken),
    ] {
        if let Some(v) = value {
            check_text(field, &v, 4096)?;
            let sealed = seal_secret(&state.keys, &row.id, which, &v);
            match which {
                ChannelSecret::AccessToken => row.access_token = sealed,
                ChannelSecret::AppSecret => row.app_secret = sealed,
                ChannelSecret::VerifyToken => row.verify_token = sealed,
            }
            changed.push(field);
        }
    }
    if req.base_url.is_some() {
        check_base_url(provider, req.base_url.as_deref())?;
        row.base_url = req.base_url;
        changed.push("base_url");
    }
    if req.api_version.is_some() {
        check_version(req.api_version.as_deref())?;
        row.api_version = req.api_version;
        changed.push("api_version");
    }
    if let Some(mps) = req.throughput_mps {
        check_throughput(mps)?;
        row.throughput_mps = mps as i64;
        changed.push("throughput_mps");
    }
    row.updated_at = state.clock.now();
    let event = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "channel.updated",
    )
    .target("channel", row.id.clone())
    .details(serde_json::json!({ "changed": changed }));
    state
        .store
        .update_channel(&row, origin.stamp(event))
        .await?;
    Ok(Json(view(&state, row)))
}

/// Removes a channel. Its message history stays; it no longer sends or receives.
#[utoipa::path(operation_id = "delete_channel", delete, path = "/v1/channels/{id}", tag = "channels", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let event = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "channel.deleted",
    )
    .target("channel", id.clone());
    state
        .store
        .delete_channel(
            &auth.workspace_id.to_string(),
            &id,
            state.clock.now(),
            origin.stamp(event),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct ChannelCheck {
    /// Whether the provider answered for this number.
    pub ok: bool,
    pub display_phone_number: Option<String>,
    pub verified_name: Option<String>,
    pub quality_rating: Option<String>,
    /// The messaging limit tier, e.g. `TIER_1K`.
    pub messaging_limit_tier: Option<String>,
    pub throughput_level: Option<String>,
    /// The provider's error code and message when `ok` is false.
    pub error_code: Option<i64>,
    pub error: Option<String>,
}

/// Asks the provider about the channel's number: display number, quality and limits, or the provider's error.
#[utoipa::path(operation_id = "check_channel", post, path = "/v1/channels/{id}/check", tag = "channels", params(("id" = String, Path)),
    responses((status = 200, body = ChannelCheck), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn check(
    State(state): State<AppState>,
    auth: Authorized<act::ChannelsManage>,
    Path(id): Path<String>,
) -> Result<Json<ChannelCheck>, ApiError> {
    let row = state
        .store
        .get_channel(&auth.workspace_id.to_string(), &id)
        .await?;
    let client = client_for(&state.keys, &row).map_err(ApiError::Internal)?;
    Ok(Json(
        match client.phone_number(&row.phone_number_id).await {
            Ok(info) => ChannelCheck {
                ok: true,
                display_phone_number: info.display_phone_number,
                verified_name: info.verified_name,
                quality_rating: info
                    .quality_rating
                    .and_then(|q| serde_json::to_value(q).ok())
                    .and_then(|v| v.as_str().map(str::to_owned)),
                messaging_limit_tier: info.messaging_limit_tier,
                throughput_level: info.throughput.map(|t| t.level),
                error_code: None,
                error: None,
            },
            Err(e) => ChannelCheck {
                ok: false,
                display_phone_number: None,
                verified_name: None,
                quality_rating: None,
                messaging_limit_tier: None,
                throughput_level: None,
                error_code: e.meta().map(|m| m.code),
                error: Some(e.to_string()),
            },
        },
    ))
}
