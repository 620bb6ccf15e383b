//! Template review status after submission: applied from the provider's
//! `message_template_status_update` webhooks ([`on_status_webhook`]) and from a
//! periodic sync that lists each channel's templates at the provider
//! ([`sync_worker`]). Both go through [`apply_status`], a compare-and-set that
//! writes `template.status_changed` only on a real change, so a webhook and a
//! sync (or several nodes) reporting the same change record it once.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize as _;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use waypost_cloudapi::manage::TemplateListQuery;
use waypost_cloudapi::webhook::TemplateStatusUpdate;
use waypost_core::events::EventType;
use waypost_core::{Actor, NewAuditEvent, WorkspaceId};
use waypost_store::StoreError;
use waypost_store::messaging::ChannelRow;
use waypost_store::templates::{TemplateRow, TemplateStatusChange};

use crate::messaging::client_for;
use crate::state::AppState;

/// Provider pages read per channel and sync (100 templates each).
const SYNC_MAX_PAGES: usize = 50;
const SYNC_PAGE: u32 = 100;
/// Local templates read per batch during a sync.
const SYNC_LOCAL_BATCH: u32 = 200;

/// Where a status change was learnt; recorded in the event and audit details.
#[derive(Debug, Clone, Copy)]
pub enum StatusSource {
    Webhook,
    Sync,
}

impl StatusSource {
    fn as_str(self) -> &'static str {
        match self {
            StatusSource::Webhook => "webhook",
            StatusSource::Sync => "sync",
        }
    }
}

/// The status Waypost stores for a provider status: Meta's upper-case name,
/// with `REINSTATED` read as the `APPROVED` it means. `None` for values that
/// are not a status name (never stored).
pub fn stored_status(provider: &str) -> Option<String> {
    let s = provider.trim().to_ascii_uppercase();
    if s.is_empty() || s.len() > 32 || !s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        return None;
    }
    Some(if s == "REINSTATED" {
        "APPROVED".into()
    } else {
        s
    })
}

/// A rejection reason worth storing (`NONE` and empty mean none).
fn reason(raw: Option<&str>) -> Option<String> {
    raw.map(str::trim)
        .filter(|r| !r.is_empty() && !r.eq_ignore_ascii_case("NONE"))
        .map(|r| r.chars().take(200).collect())
}

/// Moves a template to `to`, with its customer and audit events, unless it
/// already has that status. Retries on a concurrent change; returns whether
/// this call recorded the change.
pub async fn apply_status(
    state: &AppState,
    template: TemplateRow,
    to: &str,
    rejection_reason: Option<String>,
    source: StatusSource,
) -> anyhow::Result<bool> {
    let mut row = template;
    for _ in 0..3 {
        if row.status == to {
            return Ok(false);
        }
        let ws = WorkspaceId::parse(&row.workspace_id)?;
        let now = state.clock.now();
        let data = json!({
            "template_id": row.id,
            "channel_id": row.channel_id,
            "name": row.name,
            "language": row.language,
            "status": to,
            "previous_status": row.status,
            "rejection_reason": rejection_reason,
        });
        let event = crate::events::seal(
            &state.keys.current(),
            ws,
            EventType::TemplateStatusChanged,
            Some(row.id.clone()),
            &data,
            now,
        );
        let audit = NewAuditEvent::new(Some(ws), Actor::System, "template.status_changed")
            .target("template", row.id.clone())
            .details(json!({
                "from": row.status,
                "to": to,
                "reason": rejection_reason,
                "source": source.as_str(),
            }));
        let change = TemplateStatusChange {
            workspace_id: row.workspace_id.clone(),
            template_id: row.id.clone(),
            from_status: row.status.clone(),
            to_status: to.to_owned(),
            rejection_reason: rejection_reason.clone(),
            at: now,
            audit,
            events: vec![event],
        };
        if state.store.update_template_status(&change).await? {
            state.lookups.invalidate();
            tracing::info!(template = %row.id, from = %row.status, to, source = source.as_str(), "template status changed");
            return Ok(true);
        }
        row = match state.store.get_template(&row.workspace_id, &row.id).await {
            Ok(r) => r,
            Err(StoreError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
    }
    Ok(false)
}

/// How long after a status update for an unknown template its channel is synced.
const LATE_TEMPLATE_SYNC: std::time::Duration = std::time::Duration::from_secs(2);

/// Applies one `message_template_status_update` change value received on
/// `channel`'s webhook. A status for a template not stored yet leads to a sync of the channel.
pub async fn on_status_webhook(
    state: &AppState,
    channel: &ChannelRow,
    value: &serde_json::Value,
) -> anyhow::Result<()> {
    let update = TemplateStatusUpdate::deserialize(value)
        .map_err(|e| anyhow::anyhow!("malformed message_template_status_update: {e}"))?;
    let Some(status) = stored_status(update.event.as_str()) else {
        tracing::warn!(channel = %channel.id, "template status webhook without a usable status");
        return Ok(());
    };
    let found = state
        .store
        .template_by_name(
            &channel.workspace_id,
            &update.message_template_name,
            &update.message_template_language,
        )
        .await?;
    let provider_id = update.message_template_id.to_string();
    let Some(template) = found.filter(|t| {
        t.channel_id == channel.id && t.provider_id.as_deref().is_none_or(|p| p == provider_id)
    }) else {
        // The webhook can overtake the create that stores the template (a
        // review quicker than our write): sync the channel a moment later,
        // which also settles it for templates Waypost does not manage.
        tracing::debug!(channel = %channel.id, "status update for a template not stored (yet); syncing the channel shortly");
        let (state, channel) = (state.clone(), channel.clone());
        tokio::spawn(async move {
            tokio::time::sleep(LATE_TEMPLATE_SYNC).await;
            if let Err(e) = sync_channel(&state, &channel).await {
                tracing::warn!(channel = %channel.id, error = %e, "template sync after an early status update failed");
            }
        });
        return Ok(());
    };
    apply_status(
        state,
        template,
        &status,
        reason(update.reason.as_deref()),
        StatusSource::Webhook,
    )
    .await?;
    Ok(())
}

/// Statuses of one channel's templates at the provider, by provider id and
/// by `name:language` (for rows stored before the provider id was known).
async fn provider_statuses(
    state: &AppState,
    channel: &ChannelRow,
) -> anyhow::Result<HashMap<String, String>> {
    let client = client_for(&state.keys, &state.config, channel)?;
    let mut statuses = HashMap::new();
    let mut after = None;
    for _ in 0..SYNC_MAX_PAGES {
        let query = TemplateListQuery {
            limit: Some(SYNC_PAGE),
            after: after.clone(),
            fields: Some("id,name,language,status".into()),
            ..Default::default()
        };
        let page = client.list_templates(&channel.waba_id, &query).await?;
        for t in &page.data {
            let Some(status) = t.status.as_ref().and_then(|s| stored_status(s.as_str())) else {
                continue;
            };
            if let (Some(name), Some(lang)) = (&t.name, &t.language) {
                statuses.insert(format!("{name}:{lang}"), status.clone());
            }
            statuses.insert(t.id.clone(), status);
        }
        let next = page.paging.as_ref().filter(|p| p.next.is_some());
        after = next.and_then(|p| p.cursors.as_ref()?.after.clone());
        if after.is_none() || page.data.is_empty() {
            break;
        }
    }
    Ok(statuses)
}

/// Syncs one channel's templates; returns how many changed.
pub async fn sync_channel(state: &AppState, channel: &ChannelRow) -> anyhow::Result<u64> {
    let remote = provider_statuses(state, channel).await?;
    let mut changed = 0;
    let mut after: Option<String> = None;
    loop {
        let batch = state
            .store
            .channel_templates(&channel.id, after.as_deref(), SYNC_LOCAL_BATCH)
            .await?;
        let full = batch.len() as u32 == SYNC_LOCAL_BATCH;
        after = batch.last().map(|t| t.id.clone());
        for t in batch {
            let key = t
                .provider_id
                .clone()
                .unwrap_or_else(|| format!("{}:{}", t.name, t.language));
            let Some(status) = remote.get(&key).cloned() else {
                continue;
            };
            if status != t.status
                && apply_status(state, t, &status, None, StatusSource::Sync).await?
            {
                changed += 1;
            }
        }
        if !full {
            return Ok(changed);
        }
    }
}

/// One sync over every channel; a failing channel is logged and skipped.
pub async fn sync_once(state: &AppState, shutdown: &CancellationToken) -> anyhow::Result<u64> {
    let mut changed = 0;
    for channel in state.store.all_channels().await? {
        if shutdown.is_cancelled() {
            break;
        }
        match sync_channel(state, &channel).await {
            Ok(n) => changed += n,
            Err(e) => {
                tracing::warn!(channel = %channel.id, error = %e, "template sync failed; retrying next round")
            }
        }
    }
    Ok(changed)
}

/// Runs [`sync_once`] every `template_sync_interval_secs` until shutdown.
pub async fn sync_worker(state: AppState, shutdown: CancellationToken) {
    let interval = Duration::from_secs(state.config.template_sync_interval_secs.max(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match sync_once(&state, &shutdown).await {
            Ok(n) if n > 0 => tracing::info!(changed = n, "template statuses synced"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "template sync failed; retrying later"),
        }
    }
}
