//! Channel operations: adding, changing and removing a workspace's WhatsApp
//! numbers. Secrets are validated, encrypted on arrival and never returned.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_core::{ChannelId, NewAuditEvent};
use waypost_store::messaging::ChannelRow;

use super::Ctx;
use crate::error::{ApiError, unprocessable as invalid};
use crate::guard::ssrf;
use crate::messaging::{ChannelSecret, provider_policy, seal_secret};
use crate::state::AppState;

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
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Cloud => "cloud",
            Provider::Sandbox => "sandbox",
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
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
    #[schema(minimum = 1, maximum = 10000)]
    pub throughput_mps: Option<u32>,
}

/// Fields to change; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannel {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    pub phone_number_id: Option<String>,
    pub waba_id: Option<String>,
    pub access_token: Option<String>,
    pub app_secret: Option<String>,
    pub verify_token: Option<String>,
    pub base_url: Option<String>,
    pub api_version: Option<String>,
    #[schema(minimum = 1, maximum = 10000)]
    pub throughput_mps: Option<u32>,
}

impl Provider {
    /// The provider of a stored channel row.
    pub fn of(row: &ChannelRow) -> Self {
        if row.provider == "sandbox" {
            Provider::Sandbox
        } else {
            Provider::Cloud
        }
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

/// The provider address rules (see [`crate::messaging::provider_policy`]):
/// syntax, scheme, and every address the host resolves to. The same rules hold
/// again when the client connects.
async fn check_base_url(
    state: &AppState,
    provider: Provider,
    url: Option<&str>,
) -> Result<(), ApiError> {
    let Some(u) = url else {
        return match provider {
            Provider::Sandbox => Err(invalid("`base_url` is required for a sandbox channel")),
            Provider::Cloud => Ok(()),
        };
    };
    let policy = provider_policy(&state.config, provider == Provider::Sandbox);
    if let Err(refused) = ssrf::check_url_syntax(u, policy) {
        let detail = if refused.0.contains("https") {
            "`base_url` must use https (plain http only for sandbox channels)".to_owned()
        } else {
            format!("`base_url`: {refused}")
        };
        return Err(invalid(detail));
    }
    ssrf::check_target(u, policy, &ssrf::system_lookup())
        .await
        .map_err(|refused| invalid(format!("`base_url`: {refused}")))?;
    if url::Url::parse(u).is_ok_and(|p| p.cannot_be_a_base()) {
        return Err(invalid("`base_url` must be an absolute URL"));
    }
    Ok(())
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

/// Adds a channel, audited.
pub async fn create(
    state: &AppState,
    ctx: &Ctx,
    req: CreateChannel,
) -> Result<ChannelRow, ApiError> {
    check_text("name", &req.name, 100)?;
    // Only a billed workspace's channels are counted (creating one is rare).
    if state.quotas.billing(&ctx.workspace).is_some() {
        let held = state.store.list_channels(&ctx.workspace).await?.len() as i64;
        state
            .quotas
            .check_held(&ctx.workspace, waypost_core::plan::Quota::Channels, held)?;
    }
    check_provider_id("phone_number_id", &req.phone_number_id)?;
    check_provider_id("waba_id", &req.waba_id)?;
    check_text("access_token", &req.access_token, 4096)?;
    check_text("app_secret", &req.app_secret, 512)?;
    check_text("verify_token", &req.verify_token, 512)?;
    check_base_url(state, req.provider, req.base_url.as_deref()).await?;
    check_version(req.api_version.as_deref())?;
    let mps = req.throughput_mps.unwrap_or(DEFAULT_THROUGHPUT_MPS);
    check_throughput(mps)?;
    let id = ChannelId::new().to_string();
    let now = state.clock.now();
    let row = ChannelRow {
        workspace_id: ctx.workspace.clone(),
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
    let event = NewAuditEvent::new(Some(ctx.workspace_id), ctx.actor.clone(), "channel.created")
        .target("channel", row.id.clone())
        .details(
            serde_json::json!({ "provider": row.provider, "phone_number_id": row.phone_number_id }),
        );
    state
        .store
        .create_channel(&row, ctx.origin.stamp(event))
        .await?;
    Ok(row)
}

/// Changes a channel; secrets given replace the stored ones.
pub async fn update(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    req: UpdateChannel,
) -> Result<ChannelRow, ApiError> {
    let mut row = state.store.get_channel(&ctx.workspace, id).await?;
    let provider = Provider::of(&row);
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
        check_base_url(state, provider, req.base_url.as_deref()).await?;
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
    let event = NewAuditEvent::new(Some(ctx.workspace_id), ctx.actor.clone(), "channel.updated")
        .target("channel", row.id.clone())
        .details(serde_json::json!({ "changed": changed }));
    state
        .store
        .update_channel(&row, ctx.origin.stamp(event))
        .await?;
    state.lookups.invalidate();
    Ok(row)
}

/// Removes a channel; its message history stays.
pub async fn delete(state: &AppState, ctx: &Ctx, id: &str) -> Result<(), ApiError> {
    let event = NewAuditEvent::new(Some(ctx.workspace_id), ctx.actor.clone(), "channel.deleted")
        .target("channel", id.to_owned());
    state
        .store
        .delete_channel(
            &ctx.workspace,
            id,
            state.clock.now(),
            ctx.origin.stamp(event),
        )
        .await?;
    state.lookups.invalidate();
    Ok(())
}

pub async fn list(state: &AppState, ctx: &Ctx) -> Result<Vec<ChannelRow>, ApiError> {
    Ok(state.store.list_channels(&ctx.workspace).await?)
}

pub async fn get(state: &AppState, ctx: &Ctx, id: &str) -> Result<ChannelRow, ApiError> {
    Ok(state.store.get_channel(&ctx.workspace, id).await?)
}

/// A number's messaging tier (Meta's unique users per rolling 24 hours);
/// `unlimited` until one is set.
pub async fn messaging_tier(
    state: &AppState,
    workspace_id: &str,
    channel_id: &str,
) -> Result<waypost_core::campaign::MessagingTier, ApiError> {
    use waypost_core::campaign::MessagingTier;
    state.store.get_channel(workspace_id, channel_id).await?;
    Ok(state
        .store
        .messaging_tier(channel_id)
        .await?
        .and_then(|t| MessagingTier::parse(&t))
        .unwrap_or(MessagingTier::Unlimited))
}

/// Sets the tier campaigns keep to (audited).
pub async fn set_messaging_tier(
    state: &AppState,
    ctx: &Ctx,
    channel_id: &str,
    tier: &str,
) -> Result<waypost_core::campaign::MessagingTier, ApiError> {
    let tier = waypost_core::campaign::MessagingTier::parse(tier)
        .ok_or_else(|| invalid("`tier` must be one of 250, 1k, 10k, 100k, unlimited"))?;
    state.store.get_channel(&ctx.workspace, channel_id).await?;
    let audit = ctx.origin.stamp(
        NewAuditEvent::new(
            Some(ctx.workspace_id),
            ctx.actor.clone(),
            "channel.messaging_tier_set",
        )
        .target("channel", channel_id.to_owned())
        .details(serde_json::json!({"tier": tier.as_str()})),
    );
    state
        .store
        .set_messaging_tier(
            &ctx.workspace,
            channel_id,
            tier.as_str(),
            state.clock.now(),
            audit,
        )
        .await?;
    Ok(tier)
}
