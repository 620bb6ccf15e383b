//! The detector worker: once the application clock has passed a minute (and
//! [`GRACE_SECS`] for every node's counters to be flushed), one node claims
//! it through the database cursor and evaluates every detector over it,
//! reading the counters of the minutes evaluated (plus each detector's
//! window) in one query per scope kind. Rules and thresholds are in
//! `waypost_core::trust`; this module only gathers counts, keeps the EWMA
//! baselines and raises findings through `ops::security_alerts`. A detector
//! that fired for an entity stays quiet for it for [`COOLDOWN_MINUTES`].

mod accounts;
mod counts;

use std::collections::HashSet;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use waypost_core::trust::{self, RatioRule, SpikeRule, signal};

use crate::ops::security_alerts::{self, Finding};
use crate::signals::minute_of;
use crate::state::AppState;
use counts::{Counts, Memory};

/// How often the worker looks for a finished minute.
pub const TICK: Duration = Duration::from_millis(500);
/// Seconds after a minute ends before it is evaluated (counters flush every second).
pub const GRACE_SECS: i64 = 3;
/// Minutes evaluated per step at most.
const MAX_MINUTES_PER_STEP: i64 = 24 * 60;
pub use counts::COOLDOWN_MINUTES;

/// Evaluates finished minutes until shutdown (only with detection on).
pub async fn run(state: AppState, shutdown: CancellationToken) {
    if !state.config.detection {
        return;
    }
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = step(&state).await {
            tracing::warn!(error = %e, "detectors: step failed; retrying");
        }
    }
}

/// Claims and evaluates the finished minutes not evaluated yet; returns how many.
pub async fn step(state: &AppState) -> anyhow::Result<i64> {
    let now = state.clock.now() - chrono::Duration::seconds(GRACE_SECS);
    let last = minute_of(now) - 1;
    let cursor = state.store.detector_cursor().await?;
    // A fresh database starts with the current minute, not at the epoch.
    let from_cursor = if cursor == 0 { last - 1 } else { cursor };
    if last <= from_cursor {
        return Ok(0);
    }
    let to = last.min(from_cursor + MAX_MINUTES_PER_STEP);
    if !state.store.advance_detector_cursor(cursor, to).await? {
        return Ok(0);
    }
    evaluate(state, from_cursor + 1, to).await?;
    state.store.finish_detector_minutes(to).await?;
    Ok(to - from_cursor)
}

/// Every detector over minutes `from..=to`.
pub async fn evaluate(state: &AppState, from: i64, to: i64) -> anyhow::Result<()> {
    let read = |kind: trust::ScopeKind, back: i64| async move {
        anyhow::Ok(Counts::from_rows(
            state
                .store
                .signals_between(kind.as_str(), from - back, to)
                .await?,
        ))
    };
    let mut findings = Vec::new();
    let workspaces = read(trust::ScopeKind::Workspace, 60).await?;
    let keys = read(trust::ScopeKind::ApiKey, 0).await?;
    let channels = read(trust::ScopeKind::Channel, 15).await?;
    spike(
        state,
        &trust::SEND_SPIKE,
        "workspace",
        &workspaces,
        signal::SEND,
        from,
        to,
        &mut findings,
    )
    .await?;
    spike(
        state,
        &trust::API_BURST,
        "api_key",
        &keys,
        signal::API_REQUEST,
        from,
        to,
        &mut findings,
    )
    .await?;
    ratio(
        state,
        &trust::FAILURE_RATE,
        "channel",
        &channels,
        signal::PROVIDER_FAILURE,
        from,
        to,
        &mut findings,
    )
    .await?;
    ratio(
        state,
        &trust::OPT_OUT_RATE,
        "workspace",
        &workspaces,
        signal::OPT_OUT,
        from,
        to,
        &mut findings,
    )
    .await?;
    ratio(
        state,
        &trust::SHIELD_RATIO,
        "workspace",
        &workspaces,
        signal::SHIELD_FLAGGED,
        from,
        to,
        &mut findings,
    )
    .await?;
    let pairs = read(
        trust::ScopeKind::NetworkUser,
        trust::STUFFING_WINDOW_MINUTES,
    )
    .await?;
    let users = read(trust::ScopeKind::User, trust::BOT_WINDOW_MINUTES).await?;
    accounts::stuffing(state, &pairs, from, to, &mut findings).await?;
    accounts::bot_timing(state, &users, from, to, &mut findings).await?;
    accounts::new_network_after_change(state, from, to, &mut findings).await?;
    for f in findings {
        security_alerts::raise(state, f)
            .await
            .map_err(|e| anyhow::anyhow!("raising a security alert: {e:?}"))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn spike(
    state: &AppState,
    rule: &SpikeRule,
    scope_kind: &'static str,
    counts: &Counts,
    name: &str,
    from: i64,
    to: i64,
    out: &mut Vec<Finding>,
) -> anyhow::Result<()> {
    let mut memory = Memory::load(state, rule.detector, scope_kind).await?;
    for id in counts.ids_with(name) {
        let Some(series) = counts.series(id, name) else {
            continue;
        };
        for (&minute, &n) in series.range(from..=to) {
            let base = *memory.baseline(id, minute);
            let judged = rule.judge(n as f64, &base);
            memory
                .baseline(id, minute)
                .update(minute, n as f64, rule.alpha);
            let Some(severity) = judged else { continue };
            if !memory.may_fire(id, minute) {
                continue;
            }
            out.push(Finding {
                detector: rule.detector,
                severity,
                workspace_id: counts.workspace.get(id).cloned(),
                entity_kind: scope_kind,
                entity_id: id.to_owned(),
                minute,
                evidence: serde_json::json!({
                    "signal": name, "count": n, "baseline": (base.mean * 100.0).round() / 100.0,
                    "floor": rule.floor, "threshold": rule.threshold(&base), "minute": minute,
                }),
            });
        }
    }
    memory.save(state).await
}

#[allow(clippy::too_many_arguments)]
async fn ratio(
    state: &AppState,
    rule: &RatioRule,
    scope_kind: &'static str,
    counts: &Counts,
    bad_signal: &str,
    from: i64,
    to: i64,
    out: &mut Vec<Finding>,
) -> anyhow::Result<()> {
    let mut memory = Memory::load(state, rule.detector, scope_kind).await?;
    let ids: HashSet<&str> = counts.ids_with(signal::SEND).into_iter().collect();
    for id in ids {
        let Some(sends) = counts.series(id, signal::SEND) else {
            continue;
        };
        for (&minute, &total_m) in sends.range(from..=to) {
            let bad_m = counts.sum(id, bad_signal, minute, minute);
            let usual = *memory.baseline(id, minute);
            let w0 = minute - rule.window_minutes + 1;
            let (bad, total) = (
                counts.sum(id, bad_signal, w0, minute),
                counts.sum(id, signal::SEND, w0, minute),
            );
            let judged = (bad_m > 0)
                .then(|| rule.judge(bad, total, &usual))
                .flatten();
            memory.baseline(id, minute).update(
                minute,
                (bad_m as f64 / total_m.max(1) as f64).min(1.0),
                rule.alpha,
            );
            let Some(severity) = judged else { continue };
            if !memory.may_fire(id, minute) {
                continue;
            }
            out.push(Finding {
                detector: rule.detector,
                severity,
                workspace_id: counts.workspace.get(id).cloned(),
                entity_kind: scope_kind,
                entity_id: id.to_owned(),
                minute,
                evidence: serde_json::json!({
                    "signal": bad_signal, "count": bad, "sends": total, "window_minutes": rule.window_minutes,
                    "usual_ratio": (usual.mean * 1000.0).round() / 1000.0, "min_ratio": rule.min_ratio,
                }),
            });
        }
    }
    memory.save(state).await
}
