//! The account detectors: credential stuffing (many accounts failing from
//! one network), bot-like sign-in timing, and a user appearing from a new
//! network right after a password or second-factor change.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use waypost_core::trust::{self, Severity, signal};

use super::counts::{Counts, Memory, finding};
use crate::ops::security_alerts::Finding;
use crate::state::AppState;

const DAY: i64 = 24 * 60;

/// Sign-in failures for many distinct accounts from one network within the window.
pub(super) async fn stuffing(
    state: &AppState,
    pairs: &Counts,
    from: i64,
    to: i64,
    out: &mut Vec<Finding>,
) -> anyhow::Result<()> {
    // network → minute → accounts that failed then.
    let mut by_net: HashMap<&str, BTreeMap<i64, Vec<&str>>> = HashMap::new();
    for ((pair, name), series) in &pairs.by {
        if name != signal::SIGN_IN_FAILURE {
            continue;
        }
        let Some((net, account)) = pair.split_once(' ') else {
            continue;
        };
        for &minute in series.keys() {
            by_net
                .entry(net)
                .or_default()
                .entry(minute)
                .or_default()
                .push(account);
        }
    }
    let mut memory = Memory::load(state, "credential_stuffing", "network").await?;
    let mut nets: Vec<_> = by_net.into_iter().collect();
    nets.sort_by(|a, b| a.0.cmp(b.0));
    for (net, minutes) in nets {
        for &minute in minutes.range(from..=to).map(|(m, _)| m) {
            let w0 = minute - trust::STUFFING_WINDOW_MINUTES + 1;
            let accounts: BTreeSet<&str> = minutes
                .range(w0..=minute)
                .flat_map(|(_, a)| a.iter().copied())
                .collect();
            let Some(severity) = trust::judge_stuffing(accounts.len()) else {
                continue;
            };
            if memory.may_fire(net, minute) {
                out.push(finding(
                    "credential_stuffing",
                    severity,
                    "network",
                    net,
                    minute,
                    serde_json::json!({
                        "network": net, "accounts": accounts.len(),
                        "window_minutes": trust::STUFFING_WINDOW_MINUTES,
                        "min_accounts": trust::STUFFING_MIN_ACCOUNTS,
                    }),
                ));
            }
        }
    }
    memory.save(state).await
}

/// Sign-in attempts of one user in most minutes of an hour, at a steady rate.
pub(super) async fn bot_timing(
    state: &AppState,
    users: &Counts,
    from: i64,
    to: i64,
    out: &mut Vec<Finding>,
) -> anyhow::Result<()> {
    let mut attempts: HashMap<&str, BTreeMap<i64, i64>> = HashMap::new();
    for ((user, name), series) in &users.by {
        if name == signal::SIGN_IN || name == signal::SIGN_IN_FAILURE {
            let a = attempts.entry(user.as_str()).or_default();
            for (&m, &n) in series {
                *a.entry(m).or_default() += n;
            }
        }
    }
    let mut memory = Memory::load(state, "bot_sign_in_timing", "user").await?;
    let mut sorted: Vec<_> = attempts.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (user, series) in sorted {
        for &minute in series.range(from..=to).map(|(m, _)| m) {
            let w0 = minute - trust::BOT_WINDOW_MINUTES + 1;
            let counts: Vec<i64> = series.range(w0..=minute).map(|(_, n)| *n).collect();
            let Some(severity) = trust::judge_bot_timing(&counts) else {
                continue;
            };
            if memory.may_fire(user, minute) {
                out.push(finding(
                    "bot_sign_in_timing",
                    severity,
                    "user",
                    user,
                    minute,
                    serde_json::json!({
                        "active_minutes": counts.len(), "attempts": counts.iter().sum::<i64>(),
                        "window_minutes": trust::BOT_WINDOW_MINUTES,
                    }),
                ));
            }
        }
    }
    memory.save(state).await
}

/// A user signing in from a network not seen in 30 days, within a day after
/// a password or second-factor change (users with no earlier network are new
/// accounts, not takeovers).
pub(super) async fn new_network_after_change(
    state: &AppState,
    from: i64,
    to: i64,
    out: &mut Vec<Finding>,
) -> anyhow::Result<()> {
    let kind = trust::ScopeKind::User.as_str();
    let recent = state.store.signals_between(kind, from - DAY, to).await?;
    let changed: HashMap<String, Vec<i64>> = recent
        .iter()
        .filter(|r| r.signal == signal::CREDENTIAL_CHANGE)
        .fold(HashMap::new(), |mut m, r| {
            m.entry(r.scope_id.clone()).or_default().push(r.minute);
            m
        });
    if changed.is_empty() {
        return Ok(());
    }
    let history = state
        .store
        .signals_between(kind, from - 30 * DAY, to)
        .await?;
    // user → network → first minute seen.
    let mut first: HashMap<&str, HashMap<&str, i64>> = HashMap::new();
    for r in &history {
        let Some(net) = r.signal.strip_prefix(signal::NETWORK_PREFIX) else {
            continue;
        };
        if !changed.contains_key(&r.scope_id) {
            continue;
        }
        let seen = first
            .entry(&r.scope_id)
            .or_default()
            .entry(net)
            .or_insert(r.minute);
        *seen = (*seen).min(r.minute);
    }
    for (user, nets) in first {
        let changes = &changed[user];
        for (&net, &seen) in &nets {
            if !(from..=to).contains(&seen) {
                continue;
            }
            let Some(&change) = changes
                .iter()
                .filter(|&&c| c <= seen && seen - c <= DAY)
                .max()
            else {
                continue;
            };
            let known_before = nets.values().any(|&m| m < change);
            if known_before {
                out.push(finding(
                    "new_network_after_credential_change",
                    Severity::High,
                    "user",
                    user,
                    seen,
                    serde_json::json!({
                        "network": net, "minutes_after_change": seen - change,
                        "window_minutes": trust::NEW_NETWORK_AFTER_CHANGE_MINUTES,
                    }),
                ));
            }
        }
    }
    Ok(())
}
