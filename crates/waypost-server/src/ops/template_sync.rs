//! Syncing template review statuses on demand: the same provider listing the
//! periodic sync runs (`crate::templates::sync_channel`), for one channel of
//! the workspace or all of them, so a member need not wait for the next round
//! or a webhook. Each change is recorded once, as by the worker.

use axum::http::StatusCode;
use serde_json::json;
use waypost_cloudapi::ClientError;
use waypost_core::NewAuditEvent;
use waypost_store::messaging::ChannelRow;

use super::Ctx;
use super::templates::provider_problem;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// One channel's sync.
pub struct ChannelSync {
    pub channel_id: String,
    pub channel_name: String,
    /// Templates whose status changed.
    pub updated: u64,
    /// Why the provider could not be asked, when it could not.
    pub error: Option<String>,
}

pub struct SyncOutcome {
    pub channels: Vec<ChannelSync>,
    /// Templates whose status changed, over every channel.
    pub updated: u64,
}

/// Asks the provider for the statuses of the templates of `channel_id` (or of
/// every channel of the workspace) and applies the changes (audited
/// `templates.synced`). Fails only when no channel could be synced.
pub async fn sync(
    state: &AppState,
    ctx: &Ctx,
    channel_id: Option<&str>,
) -> Result<SyncOutcome, ApiError> {
    let channels: Vec<ChannelRow> = match channel_id {
        Some(id) => vec![state.store.get_channel(&ctx.workspace, id).await?],
        None => state.store.list_channels(&ctx.workspace).await?,
    };
    if channels.is_empty() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no-channel",
            "No channel",
            "The workspace has no channel yet: connect a WhatsApp number first.",
        )
        .into());
    }
    let mut out = Vec::with_capacity(channels.len());
    let mut first_failure = None;
    for channel in &channels {
        let (updated, error) = match crate::templates::sync_channel(state, channel).await {
            Ok(n) => (n, None),
            Err(e) => {
                let problem = match e.downcast_ref::<ClientError>() {
                    Some(client) => provider_problem(client),
                    None => {
                        tracing::warn!(channel = %channel.id, error = %e, "template sync failed");
                        Problem::new(
                            StatusCode::BAD_GATEWAY,
                            "provider-error",
                            "Provider error",
                            "The templates could not be synced; try again later.",
                        )
                        .into()
                    }
                };
                let detail = match &problem {
                    ApiError::Problem(p) => p.detail.clone(),
                    ApiError::Internal(_) => "The templates could not be synced.".into(),
                };
                first_failure.get_or_insert(problem);
                (0, Some(detail))
            }
        };
        out.push(ChannelSync {
            channel_id: channel.id.clone(),
            channel_name: channel.name.clone(),
            updated,
            error,
        });
    }
    if let Some(failure) = first_failure
        && out.iter().all(|c| c.error.is_some())
    {
        return Err(failure);
    }
    let updated = out.iter().map(|c| c.updated).sum();
    let event = NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "templates.synced",
    )
    .details(json!({
        "channels": out.iter().map(|c| json!({
            "channel_id": c.channel_id, "updated": c.updated, "failed": c.error.is_some(),
        })).collect::<Vec<_>>(),
        "updated": updated,
    }));
    state.audit(ctx.origin.stamp(event)).await?;
    Ok(SyncOutcome {
        channels: out,
        updated,
    })
}
