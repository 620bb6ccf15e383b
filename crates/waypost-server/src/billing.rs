//! The Stripe billing worker (only when Stripe is configured): makes
//! workspaces whose grace period ended read-only, and reports each Stripe
//! customer's billable messages per closed day through the usage-report
//! outbox. A report's id (`{workspace}:{day}:{counter}`) is queued once and
//! sent as both the meter event's `identifier` and the `Idempotency-Key`, so
//! a crash or a lost answer followed by a retry never bills twice.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use tokio_util::sync::CancellationToken;
use waypost_core::audit::Actor;
use waypost_core::plan::BillingStatus;
use waypost_store::stripe::UsageReportRow;

use crate::state::AppState;
use crate::stripe_api::StripeApi;

/// Days after its end a day is reported, so late status webhooks are counted.
pub const REPORT_LAG_DAYS: i64 = 2;
/// How far back unreported days are looked for (Stripe takes 35 days).
pub const REPORT_WINDOW_DAYS: i64 = 7;
const BATCH: u32 = 100;

/// Runs every `stripe_poll_secs` until shutdown.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let Some(api) = StripeApi::from_config(&state.config) else {
        return;
    };
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(
        state.config.stripe_poll_secs,
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Err(e) = end_grace_periods(&state).await {
            tracing::warn!(error = ?e, "ending grace periods failed; retrying");
        }
        if let Err(e) = queue_usage_reports(&state).await {
            tracing::warn!(error = ?e, "queueing usage reports failed; retrying");
        }
        if let Err(e) = send_usage_reports(&state, &api).await {
            tracing::warn!(error = ?e, "sending usage reports failed; retrying");
        }
    }
}

/// Past-due and grace workspaces whose grace period ended become read-only.
pub async fn end_grace_periods(state: &AppState) -> anyhow::Result<usize> {
    let now = state.clock.now();
    let due = state.store.grace_expired(now, BATCH).await?;
    for mut b in due.iter().cloned() {
        b.status = BillingStatus::ReadOnly.as_str().into();
        b.status_changed_at = now;
        b.updated_at = now;
        let c = crate::ops::billing::change(state, b, Actor::System, "grace_period_ended")
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        state
            .store
            .put_workspace_billing(&c.billing, c.audit, c.event)
            .await?;
    }
    if !due.is_empty() {
        state.quotas.refresh(now).await?;
    }
    Ok(due.len())
}

/// Queues the billable messages of every closed day in the window, per
/// customer, day and category; days queued before are left as they are.
pub async fn queue_usage_reports(state: &AppState) -> anyhow::Result<u64> {
    let now = state.clock.now();
    let today = now.date_naive();
    let last = today - Duration::days(REPORT_LAG_DAYS);
    let first = today - Duration::days(REPORT_WINDOW_DAYS);
    let mut added = 0;
    for (ws, customer) in state.store.stripe_customers().await? {
        let totals = state
            .store
            .usage_totals(&ws, &first.to_string(), &last.to_string(), false)
            .await?;
        let rows: Vec<UsageReportRow> = totals
            .into_iter()
            .filter(|t| t.metric.starts_with("billable.") && t.amount > 0)
            .map(|t| UsageReportRow {
                id: format!("{ws}:{}:{}", t.day, t.metric),
                workspace_id: ws.clone(),
                customer_id: customer.clone(),
                day: t.day,
                metric: t.metric,
                quantity: t.amount,
                attempts: 0,
                next_attempt_at: now,
                reported_at: None,
                last_error: None,
                created_at: now,
            })
            .collect();
        if !rows.is_empty() {
            added += state.store.enqueue_usage_reports(&rows).await?;
        }
    }
    Ok(added)
}

/// The backoff after `attempts` failed sends: 1, 2, 4 … minutes, at most an hour.
fn backoff(attempts: i64) -> Duration {
    Duration::minutes(1i64 << attempts.clamp(0, 6)).min(Duration::hours(1))
}

/// The meter event time of a day's usage: its noon (UTC).
fn noon(day: &str) -> Option<DateTime<Utc>> {
    let d = waypost_core::usage::parse_day(day)?;
    Some(d.and_time(NaiveTime::from_hms_opt(12, 0, 0)?).and_utc())
}

/// Sends due reports; each is marked sent only after Stripe accepted it.
pub async fn send_usage_reports(state: &AppState, api: &StripeApi) -> anyhow::Result<usize> {
    let now = state.clock.now();
    let mut sent = 0;
    for r in state.store.due_usage_reports(now, BATCH).await? {
        let category = r.metric.trim_start_matches("billable.");
        let event_name = format!("{}_{category}", state.config.stripe_meter_prefix);
        let at = noon(&r.day).unwrap_or(now).timestamp();
        match api
            .meter_event(&event_name, &r.customer_id, r.quantity, &r.id, at)
            .await
        {
            Ok(()) => {
                state
                    .store
                    .usage_report_sent(&r.id, state.clock.now())
                    .await?;
                sent += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, report = %r.id, "usage report not accepted; retrying later");
                let next = state.clock.now() + backoff(r.attempts);
                state
                    .store
                    .usage_report_failed(&r.id, next, &e.to_string())
                    .await?;
            }
        }
    }
    Ok(sent)
}
