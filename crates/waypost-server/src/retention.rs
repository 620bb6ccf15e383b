//! The retention purge: every kind of record past its period goes, in bounded
//! batches so no lock is held long, and audit chains lose their oldest events
//! only after a signed start record says where the kept part begins.
//!
//! Runs in `serve` every `retention_interval_secs`, and on demand through
//! `waypost retention run [--dry-run]`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use tokio_util::sync::CancellationToken;
use waypost_store::retention::RetentionKind;
use waypost_store::{Store, StoreError};

use crate::config::Config;
use crate::state::AppState;

const BATCH: u32 = 1000;
/// Trust and safety signal counters are kept this long (the detectors look back at most a day).
pub const SIGNAL_RETENTION_DAYS: i64 = 30;

/// How long each kind of record is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub message_metadata_days: u32,
    pub inbound_record_days: u32,
    pub delivery_attempt_days: u32,
    pub operational_days: u32,
    pub shield_usage_days: u32,
    pub audit_days: u32,
}

impl Policy {
    pub fn from_config(c: &Config) -> Self {
        Self {
            message_metadata_days: c.message_metadata_retention_days,
            inbound_record_days: c.inbound_record_retention_days,
            delivery_attempt_days: c.webhook_history_retention_days,
            operational_days: c.operational_retention_days,
            shield_usage_days: c.shield_usage_retention_days,
            audit_days: c.audit_retention_days,
        }
    }

    /// Records of `kind` older than this go.
    fn cutoff(&self, kind: RetentionKind, now: DateTime<Utc>) -> DateTime<Utc> {
        let days = match kind {
            // These carry their own expiry time.
            RetentionKind::MessageContent
            | RetentionKind::IdempotencyRecords
            | RetentionKind::MediaBlobs
            | RetentionKind::ConversationNotes => return now,
            RetentionKind::MessageMetadata | RetentionKind::MediaRecords => {
                self.message_metadata_days
            }
            RetentionKind::InboundRecords => self.inbound_record_days,
            RetentionKind::DeliveryAttempts => self.delivery_attempt_days,
            RetentionKind::CustomerEvents | RetentionKind::Sessions => self.operational_days,
            RetentionKind::ShieldScans => self.shield_usage_days,
        };
        now - chrono::Duration::days(days.into())
    }
}

/// What one kind of record came to in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindReport {
    pub kind: &'static str,
    pub cutoff: DateTime<Utc>,
    /// Rows that would go (dry run) or went.
    pub rows: u64,
}

/// Counts (`dry_run`) or removes everything past its retention period.
/// Content goes first: a message whose retained content has expired is then
/// no longer held back from the metadata purge.
pub async fn run(
    store: &dyn Store,
    audit_key: &SigningKey,
    policy: &Policy,
    now: DateTime<Utc>,
    dry_run: bool,
    shutdown: &CancellationToken,
) -> Result<Vec<KindReport>, StoreError> {
    let mut reports = Vec::with_capacity(RetentionKind::ALL.len() + 1);
    for kind in RetentionKind::ALL {
        let cutoff = policy.cutoff(kind, now);
        let rows = if dry_run {
            store.retention_count(kind, cutoff).await?
        } else {
            let mut total = 0;
            while !shutdown.is_cancelled() {
                let n = store.retention_purge(kind, cutoff, BATCH).await?;
                total += n;
                if n < u64::from(BATCH) {
                    break;
                }
            }
            total
        };
        reports.push(KindReport {
            kind: kind.as_str(),
            cutoff,
            rows,
        });
    }
    let cutoff = now - chrono::Duration::days(SIGNAL_RETENTION_DAYS);
    let before = crate::signals::minute_of(cutoff);
    let rows = if dry_run {
        store.count_signals_before(before).await?
    } else {
        store.purge_signals(before).await?
    };
    reports.push(KindReport {
        kind: "signal_counters",
        cutoff,
        rows,
    });
    if !dry_run {
        // What is held after the purge is the day's retained content (the
        // last pass of the day sets it).
        store
            .snapshot_storage(&waypost_core::usage::day_of(now))
            .await?;
        // Active-contact markers only tell whether a contact was already
        // counted today or this month; the counters themselves stay.
        let keep_from = waypost_core::usage::previous_month_start(now);
        while !shutdown.is_cancelled()
            && store.purge_usage_markers(&keep_from, BATCH).await? == u64::from(BATCH)
        {}
    }
    let cutoff = now - chrono::Duration::days(policy.audit_days.into());
    let rows = purge_audit(store, audit_key, cutoff, now, dry_run, shutdown).await?;
    reports.push(KindReport {
        kind: "audit_events",
        cutoff,
        rows,
    });
    Ok(reports)
}

/// Cuts every chain at `cutoff`: first the signed start record, then the
/// events before it in batches, so a crash between the two leaves a chain
/// that still verifies (older leftovers are ignored and go next time).
async fn purge_audit(
    store: &dyn Store,
    key: &SigningKey,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
    dry_run: bool,
    shutdown: &CancellationToken,
) -> Result<u64, StoreError> {
    let mut total = 0;
    for chain in store.audit_chains().await? {
        let Some(cut) = store.audit_cut(&chain, cutoff).await? else {
            continue;
        };
        if dry_run {
            total += cut.removable;
            continue;
        }
        if cut.first_kept_seq <= 1 {
            continue;
        }
        let current = store.audit_chain_start(&chain).await?;
        if current.as_ref().is_none_or(|s| s.seq < cut.first_kept_seq) {
            let start = crate::audit_chain::sign_chain_start(
                key,
                &chain,
                cut.first_kept_seq,
                &cut.prev_hash,
                now,
            );
            store.set_audit_chain_start(&start).await?;
        }
        while !shutdown.is_cancelled() {
            let n = store
                .delete_audit_events_before(&chain, cut.first_kept_seq, BATCH)
                .await?;
            total += n;
            if n < u64::from(BATCH) {
                break;
            }
        }
    }
    Ok(total)
}

/// The purge in `serve`: one pass every `retention_interval_secs` (the first
/// after one interval), counted in `waypost_retention_purged_total`.
pub async fn worker(state: AppState, shutdown: CancellationToken) {
    let interval = Duration::from_secs(state.config.retention_interval_secs.max(1));
    let policy = Policy::from_config(&state.config);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let key = state.keys.audit_signing_key();
        match run(
            state.store.as_ref(),
            &key,
            &policy,
            state.clock.now(),
            false,
            &shutdown,
        )
        .await
        {
            Ok(reports) => {
                for r in reports.iter().filter(|r| r.rows > 0) {
                    metrics::counter!("waypost_retention_purged_total", "kind" => r.kind)
                        .increment(r.rows);
                    tracing::info!(kind = r.kind, rows = r.rows, "retention purge");
                }
            }
            Err(e) => {
                metrics::counter!("waypost_retention_failures_total").increment(1);
                tracing::warn!(error = %e, "retention purge failed; retrying next interval");
            }
        }
    }
}
