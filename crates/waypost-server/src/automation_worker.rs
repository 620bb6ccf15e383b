//! The automation worker: leases inbound messages' work items, runs the rules
//! and the assistant on each (`ops::automation::handle`), deletes handled
//! items, and retries failed ones with a growing delay up to a limit (then
//! drops them: a late answer is worse than none). The lease outlives the
//! provider's timeout with retries, so no two nodes answer the same message.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::AppState;

const BATCH: u32 = 64;
/// Longer than the longest assistant call with retries.
const LEASE_SECS: i64 = 900;
const MAX_ATTEMPTS: i64 = 5;

pub async fn run(state: AppState, shutdown: CancellationToken) {
    let poll = Duration::from_millis(state.config.automation_poll_ms.max(10));
    loop {
        match step(&state).await {
            Ok(n) if n == BATCH as usize => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "automation step failed; retrying later"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// Handles one batch of due items; returns how many were claimed.
pub async fn step(state: &AppState) -> anyhow::Result<usize> {
    let now = state.clock.now();
    let claimed = state
        .store
        .claim_automation_work(now, now + chrono::Duration::seconds(LEASE_SECS), BATCH)
        .await?;
    let n = claimed.len();
    // Handled items go in one delete: one handled again after a crash sends
    // nothing twice (replies carry idempotency keys).
    let mut finished = Vec::with_capacity(n);
    let mut memo = crate::ops::automation::StepMemo::default();
    for work in claimed {
        let (id, attempts) = (work.id.clone(), work.attempts);
        match crate::ops::automation::handle(state, work, &mut memo).await {
            Ok(()) => finished.push(id),
            Err(e) if attempts + 1 >= MAX_ATTEMPTS => {
                tracing::warn!(error = %e, item = %id, "automation item failed for the last time; dropped");
                metrics::counter!("waypost_automation_dropped_total").increment(1);
                finished.push(id);
            }
            Err(e) => {
                tracing::warn!(error = %e, item = %id, "automation item failed; retrying");
                let delay = chrono::Duration::seconds(5 << attempts.min(6));
                state
                    .store
                    .retry_automation_work(&id, state.clock.now() + delay)
                    .await?;
            }
        }
    }
    state.store.finish_automation_work(&finished).await?;
    Ok(n)
}
