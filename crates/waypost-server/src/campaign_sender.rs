//! The campaign sender: every node looks for running campaigns, takes a
//! campaign's lease (table `campaigns`, so with several nodes one feeds it at
//! a time and a dead node's campaigns move after the lease), and runs
//! `ops::campaign_feed::feed_once` until the campaign has no due recipient.
//! Everything it knows is in the database: a restart resumes where it stopped
//! (a stopping node gives its leases up; a killed one's run out).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::ops::campaign_feed::feed_once;
use crate::state::AppState;

/// Campaigns looked at per pass.
const CAMPAIGNS_PER_PASS: u32 = 100;
/// How often a campaign's opt-out rate is read.
const QUALITY_EVERY: Duration = Duration::from_secs(2);

pub async fn run(state: AppState, shutdown: CancellationToken) {
    if !state.config.campaigns_enabled {
        return;
    }
    let owner = format!("node_{}", ulid::Ulid::new());
    let poll = Duration::from_millis(state.config.campaign_poll_ms);
    let mut checked: HashMap<String, Instant> = HashMap::new();
    while !shutdown.is_cancelled() {
        let busy = match pass(&state, &owner, &mut checked, &shutdown).await {
            Ok(busy) => busy,
            Err(e) => {
                tracing::warn!(error = %e, "campaign sender: pass failed; retrying");
                false
            }
        };
        if !busy {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
    for id in checked.keys() {
        let _ = state.store.release_campaign_lease(id, &owner).await;
    }
}

/// One step for each sending campaign this node can lease; `true` when one
/// of them had more due recipients than a step takes.
async fn pass(
    state: &AppState,
    owner: &str,
    checked: &mut HashMap<String, Instant>,
    shutdown: &CancellationToken,
) -> anyhow::Result<bool> {
    let campaigns = state.store.sending_campaigns(CAMPAIGNS_PER_PASS).await?;
    checked.retain(|id, _| campaigns.iter().any(|c| &c.id == id));
    let lease = chrono::Duration::seconds(state.config.campaign_lease_secs as i64);
    let mut busy = false;
    for c in campaigns {
        if shutdown.is_cancelled() {
            break;
        }
        let now = state.clock.now();
        if !state
            .store
            .lease_campaign(&c.id, owner, now, now + lease)
            .await?
        {
            continue;
        }
        let check = checked
            .get(&c.id)
            .is_none_or(|t| t.elapsed() >= QUALITY_EVERY);
        if check {
            checked.insert(c.id.clone(), Instant::now());
        }
        let id = c.id.clone();
        match feed_once(state, c, check).await {
            Ok(report) => busy |= report.full,
            Err(e) => tracing::warn!(campaign = %id, error = ?e, "campaign sender: step failed"),
        }
    }
    Ok(busy)
}
