//! Background work of every node: picking up new data keys, re-encrypting old
//! ciphertexts in batches, purging expired WebAuthn challenges, lapsing
//! elevations, signing audit checkpoints, and reloading the shield's operator
//! lists when their files change (retention has its own worker). Each step
//! is short and checks the shutdown token between batches.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::keys;
use crate::state::AppState;

const CHALLENGE_PURGE_BATCH: u32 = 1000;

pub async fn maintenance(state: AppState, shutdown: CancellationToken) {
    let interval = Duration::from_secs(state.config.key_rotation_interval_secs.max(1));
    let checkpoint_every = Duration::from_secs(state.config.audit_checkpoint_interval_secs.max(1));
    let mut last_checkpoint = std::time::Instant::now();
    // The first pass waits one interval: start-up has just opened the key ring.
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if let Err(e) = maintenance_step(&state, &shutdown).await {
            tracing::warn!(error = %e, "maintenance step failed; retrying later");
        }
        if last_checkpoint.elapsed() >= checkpoint_every {
            last_checkpoint = std::time::Instant::now();
            let key = state.keys.audit_signing_key();
            match crate::audit_chain::checkpoint_chains(
                state.store.as_ref(),
                &key,
                state.clock.now(),
            )
            .await
            {
                Ok(n) => {
                    metrics::gauge!("waypost_audit_checkpoint_last_success_timestamp_seconds")
                        .set(state.clock.now().timestamp() as f64);
                    if n > 0 {
                        tracing::info!(chains = n, "signed audit checkpoints");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot sign audit checkpoints; retrying later")
                }
            }
        }
    }
}

async fn maintenance_step(state: &AppState, shutdown: &CancellationToken) -> anyhow::Result<()> {
    state
        .keys
        .reload(state.store.as_ref())
        .await
        .map_err(|e| anyhow::anyhow!(e.0))?;
    while !shutdown.is_cancelled() {
        let report = keys::reencrypt_batch(
            state.store.as_ref(),
            &state.keys,
            state.config.reencryption_batch_size,
        )
        .await?;
        if report.moved > 0 || report.failed > 0 {
            tracing::info!(
                moved = report.moved,
                failed = report.failed,
                "re-encrypted a batch to the current data key"
            );
        }
        if report.finished {
            break;
        }
    }
    state.limits.shrink();
    lapse_elevations(state, shutdown).await?;
    while !shutdown.is_cancelled() {
        let purged = state
            .store
            .purge_expired_webauthn_challenges(state.clock.now(), CHALLENGE_PURGE_BATCH)
            .await?;
        if purged < CHALLENGE_PURGE_BATCH as u64 {
            break;
        }
    }
    crate::shield::reload_operator_lists(&state.config, &state.shield);
    let deleted = crate::ops::account::run_due_deletions(state)
        .await
        .map_err(|e| anyhow::anyhow!("account deletions: {e:?}"))?;
    if deleted > 0 {
        tracing::info!(deleted, "deleted accounts whose grace period ended");
    }
    crate::ops::workspace_deletion::run_due(state)
        .await
        .map_err(|e| anyhow::anyhow!("workspace deletions: {e:?}"))?;
    Ok(())
}

const ELEVATION_BATCH: u32 = 200;

/// Records each just-in-time elevation that ran out. The role check itself
/// already ignores lapsed elevations; this makes the lapse visible and audited.
pub async fn lapse_elevations(
    state: &AppState,
    shutdown: &CancellationToken,
) -> anyhow::Result<u64> {
    let mut lapsed_total = 0;
    while !shutdown.is_cancelled() {
        let lapsed = state
            .store
            .lapsed_elevations(state.clock.now(), ELEVATION_BATCH)
            .await?;
        for l in &lapsed {
            let workspace = waypost_core::WorkspaceId::parse(&l.workspace_id).ok();
            let event = waypost_core::NewAuditEvent::new(
                workspace,
                waypost_core::audit::Actor::System,
                "member.elevation_lapsed",
            )
            .target("user", l.user_id.clone())
            .details(serde_json::json!({ "role": l.elevated_role, "until": l.elevated_until }));
            if state.store.clear_lapsed_elevation(l, event).await? {
                lapsed_total += 1;
            }
        }
        if (lapsed.len() as u32) < ELEVATION_BATCH {
            break;
        }
    }
    Ok(lapsed_total)
}
