//! Plan enforcement without a per-request read: every node keeps each
//! billed workspace's plan, billing status and month-to-date usage totals in
//! memory, reloaded every [`REFRESH`] from the store (one query for the plans,
//! one for the month-to-date totals, a few rows per billed workspace), plus
//! what this node itself used since the
//! last reload. Checks are map lookups; a send that would go past a quota is
//! refused, and one that crosses 80 % or 100 % gets its warning recorded
//! (once per workspace, period, quota and level, whichever node sees it first).
//!
//! Another node's use shows here after its next reload, so across a cluster a
//! quota can be overshot by what the other nodes use within [`REFRESH`].
//! Workspaces without a plan are unlimited.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;
use waypost_core::plan::{BillingStatus, Feature, PlanLimits, Quota, crossed_levels};
use waypost_core::usage::{month_of, next_month_start};
use waypost_store::{Store, StoreError};

use crate::error::{ApiError, Problem};

/// How often plans and totals are reloaded.
pub const REFRESH: Duration = Duration::from_secs(2);

/// A billed workspace's plan.
#[derive(Debug, Clone)]
pub struct Billing {
    pub plan_id: Option<String>,
    pub status: BillingStatus,
    pub limits: PlanLimits,
}

#[derive(Default)]
struct Inner {
    /// The month (`YYYY-MM`) `totals` count.
    month: String,
    billing: HashMap<String, Billing>,
    /// Month-to-date usage per workspace and counter, as last read.
    totals: HashMap<(String, String), i64>,
    /// What this node used since `totals` was read.
    local: HashMap<(String, String), i64>,
}

/// A refused use: the billing status, a missing feature, or a spent quota.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    Billing(BillingStatus),
    Feature(Feature),
    Quota {
        quota: Quota,
        limit: i64,
        used: i64,
        resets_at: Option<NaiveDate>,
    },
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Billing(status) => Problem::new(
                StatusCode::PAYMENT_REQUIRED,
                "quota-exceeded",
                "Billing required",
                format!(
                    "The workspace's subscription is {}: its data can be read, but nothing new can be sent or created until it is paid.",
                    status.as_str()
                ),
            )
            .with("quota", "billing_status".into())
            .with("billing_status", status.as_str().into()),
            Refusal::Feature(f) => Problem::new(
                StatusCode::PAYMENT_REQUIRED,
                "quota-exceeded",
                "Not in plan",
                format!("The workspace's plan does not include {}.", f.as_str()),
            )
            .with("quota", format!("feature.{}", f.as_str()).into()),
            Refusal::Quota {
                quota,
                limit,
                used,
                resets_at,
            } => {
                let resets = resets_at.map(|d| format!("{d}T00:00:00Z"));
                let when = match &resets {
                    Some(at) => format!("; it resets at {at}"),
                    None => "; remove some to make room".into(),
                };
                let mut p = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "quota-exceeded",
                    "Quota exceeded",
                    format!("The plan's quota `{quota}` ({limit}) is used up ({used} used){when}."),
                )
                .with("quota", quota.to_string().into())
                .with("limit", limit.into())
                .with("used", used.into());
                if let Some(at) = resets {
                    p = p.with("resets_at", at.into());
                }
                p
            }
        }
        .into()
    }
}

/// A warning level a use crossed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    pub quota: Quota,
    pub level: u8,
    pub limit: i64,
    pub used: i64,
    pub period: String,
}

pub struct Quotas {
    store: Arc<dyn Store>,
    inner: RwLock<Inner>,
}

impl Quotas {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            inner: RwLock::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Reloads plans and the month's totals. What this node used while the
    /// totals were read stays counted on top of them.
    pub async fn refresh(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let before = self.read().local.clone();
        let month = month_of(now);
        let snapshot = self.store.billing_snapshot().await?;
        let mut billing = HashMap::new();
        for b in snapshot {
            let limits = parse_limits(b.quotas.as_deref(), b.features.as_deref());
            let status = b.status.parse().unwrap_or(BillingStatus::Active);
            billing.insert(
                b.workspace_id,
                Billing {
                    plan_id: b.plan_id,
                    status,
                    limits,
                },
            );
        }
        let mut totals = HashMap::new();
        for (ws, metric, amount) in self.store.month_totals(&month).await? {
            if billing.contains_key(&ws) && Quota::for_counter(&metric).is_some() {
                totals.insert((ws, metric), amount);
            }
        }
        let mut inner = self.write();
        for (k, v) in before {
            if let Some(left) = inner.local.get_mut(&k) {
                *left -= v;
            }
        }
        inner.local.retain(|_, v| *v != 0);
        if inner.month != month {
            inner.local.clear();
        }
        inner.month = month;
        inner.billing = billing;
        inner.totals = totals;
        Ok(())
    }

    /// Reloads every [`REFRESH`] until shutdown.
    pub async fn watch(
        self: Arc<Self>,
        clock: Arc<dyn crate::guard::Clock>,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.refresh(clock.now()).await {
                tracing::warn!(error = %e, "cannot reload plans and usage; enforcing the last copy");
            }
        }
    }

    pub fn billing(&self, workspace_id: &str) -> Option<Billing> {
        self.read().billing.get(workspace_id).cloned()
    }

    fn used(inner: &Inner, workspace_id: &str, metric: &str) -> i64 {
        let key = (workspace_id.to_owned(), metric.to_owned());
        inner.totals.get(&key).copied().unwrap_or(0) + inner.local.get(&key).copied().unwrap_or(0)
    }

    /// This month's use of a usage counter as this node knows it.
    pub fn used_now(&self, workspace_id: &str, metric: &str, now: DateTime<Utc>) -> i64 {
        let inner = self.read();
        if inner.month == month_of(now) {
            Self::used(&inner, workspace_id, metric)
        } else {
            0
        }
    }

    /// How many more of the usage counter `metric` the month's quota allows
    /// (`None`: no quota on it).
    pub fn remaining(&self, workspace_id: &str, metric: &str, now: DateTime<Utc>) -> Option<i64> {
        let quota = Quota::for_counter(metric)?;
        let inner = self.read();
        let limit = *inner.billing.get(workspace_id)?.limits.quotas.get(&quota)?;
        let used = if inner.month == month_of(now) {
            Self::used(&inner, workspace_id, metric)
        } else {
            0
        };
        Some((limit - used).max(0))
    }

    /// Whether the workspace may use anything (its billing status).
    pub fn check_status(&self, workspace_id: &str) -> Result<(), Refusal> {
        match self.read().billing.get(workspace_id) {
            Some(b) if !b.status.may_use() => Err(Refusal::Billing(b.status)),
            _ => Ok(()),
        }
    }

    /// Whether the plan includes `feature` (and the status allows use).
    pub fn check_feature(&self, workspace_id: &str, feature: Feature) -> Result<(), Refusal> {
        self.check_status(workspace_id)?;
        match self.read().billing.get(workspace_id) {
            Some(b) if b.plan_id.is_some() && !b.limits.features.contains(&feature) => {
                Err(Refusal::Feature(feature))
            }
            _ => Ok(()),
        }
    }

    /// Whether `amount` more of the usage counter `metric` fits the month's quota.
    pub fn check(
        &self,
        workspace_id: &str,
        metric: &str,
        amount: i64,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        self.check_status(workspace_id)?;
        let Some(quota) = Quota::for_counter(metric) else {
            return Ok(());
        };
        let inner = self.read();
        let Some(limit) = inner
            .billing
            .get(workspace_id)
            .and_then(|b| b.limits.quotas.get(&quota).copied())
        else {
            return Ok(());
        };
        let used = if inner.month == month_of(now) {
            Self::used(&inner, workspace_id, metric)
        } else {
            0
        };
        if used + amount > limit {
            return Err(Refusal::Quota {
                quota,
                limit,
                used,
                resets_at: Some(next_month_start(now.date_naive())),
            });
        }
        Ok(())
    }

    /// The plan's limit on a held thing, if it has one.
    pub fn held_limit(&self, workspace_id: &str, quota: Quota) -> Option<i64> {
        let inner = self.read();
        inner
            .billing
            .get(workspace_id)?
            .limits
            .quotas
            .get(&quota)
            .copied()
    }

    /// Whether one more of a held thing (`channels`, `members`, `contacts`) fits, given how many there are.
    pub fn check_held(&self, workspace_id: &str, quota: Quota, held: i64) -> Result<(), Refusal> {
        self.check_status(workspace_id)?;
        let limit = self
            .read()
            .billing
            .get(workspace_id)
            .and_then(|b| b.limits.quotas.get(&quota).copied());
        match limit {
            Some(limit) if held >= limit => Err(Refusal::Quota {
                quota,
                limit,
                used: held,
                resets_at: None,
            }),
            _ => Ok(()),
        }
    }

    /// Counts a committed use on this node; returns the warning levels it crossed.
    pub fn record(
        &self,
        workspace_id: &str,
        metric: &str,
        amount: i64,
        now: DateTime<Utc>,
    ) -> Vec<Crossing> {
        let Some(quota) = Quota::for_counter(metric) else {
            return Vec::new();
        };
        let mut inner = self.write();
        let Some(limit) = inner
            .billing
            .get(workspace_id)
            .and_then(|b| b.limits.quotas.get(&quota).copied())
        else {
            return Vec::new();
        };
        if inner.month != month_of(now) {
            return Vec::new();
        }
        let before = Self::used(&inner, workspace_id, metric);
        *inner
            .local
            .entry((workspace_id.to_owned(), metric.to_owned()))
            .or_default() += amount;
        crossed_levels(before, before + amount, limit)
            .into_iter()
            .map(|level| Crossing {
                quota,
                level,
                limit,
                used: before + amount,
                period: inner.month.clone(),
            })
            .collect()
    }
}

fn parse_limits(quotas: Option<&str>, features: Option<&str>) -> PlanLimits {
    let quotas: std::collections::BTreeMap<String, i64> = quotas
        .and_then(|q| serde_json::from_str(q).ok())
        .unwrap_or_default();
    let features: Vec<String> = features
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or_default();
    // Stored plans were validated when written; anything unknown is left out.
    let mut limits = PlanLimits::default();
    for (name, limit) in quotas {
        if let Ok(q) = name.parse() {
            limits.quotas.insert(q, limit);
        }
    }
    for f in features {
        if let Ok(f) = f.parse() {
            limits.features.insert(f);
        }
    }
    limits
}
