//! Plans (operator-defined limits and features), assigning one to a
//! workspace with its billing status, and counting a use against the plan:
//! the `usage.quota_warning` event at 80 % and 100 % of a monthly quota,
//! once each per period.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use waypost_core::audit::Actor;
use waypost_core::events::EventType;
use waypost_core::plan::{BillingStatus, PlanLimits, Quota};
use waypost_core::usage::next_month_start;
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_store::audiences::ContactQuery;
use waypost_store::plans::{PlanRow, WorkspaceBilling};

use crate::error::{ApiError, unprocessable};
use crate::quota::Crossing;
use crate::state::{AppState, RequestOrigin};

/// A plan as an operator writes it.
#[derive(Debug, Clone)]
pub struct PlanInput {
    pub id: String,
    pub name: String,
    pub quotas: BTreeMap<String, i64>,
    pub features: Vec<String>,
    pub stripe_price_id: Option<String>,
}

fn check_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(unprocessable(
            "A plan id is 1 to 64 characters: lower-case letters, digits, `-` and `_`.",
        ))
    }
}

/// Creates or replaces a plan; workspaces on it get the new limits on every node within seconds.
pub async fn put_plan(
    state: &AppState,
    origin: &RequestOrigin,
    actor: Actor,
    input: PlanInput,
) -> Result<PlanRow, ApiError> {
    check_id(&input.id)?;
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(unprocessable("`name` must be 1 to 100 characters."));
    }
    let limits = PlanLimits::parse(&input.quotas, &input.features)
        .map_err(|e| unprocessable(format!("{e}.")))?;
    let now = state.clock.now();
    let created_at = match state.store.get_plan(&input.id).await {
        Ok(p) => p.created_at,
        Err(waypost_store::StoreError::NotFound(_)) => now,
        Err(e) => return Err(e.into()),
    };
    let row = PlanRow {
        id: input.id,
        name: name.to_owned(),
        quotas: serde_json::to_string(&limits.quota_names()).unwrap_or_default(),
        features: serde_json::to_string(&limits.feature_names()).unwrap_or_default(),
        stripe_price_id: input.stripe_price_id,
        created_at,
        updated_at: now,
    };
    let audit = origin.stamp(
        NewAuditEvent::new(None, actor, "plan.saved")
            .target("plan", row.id.clone())
            .details(json!({"quotas": limits.quota_names(), "features": limits.feature_names()})),
    );
    state.store.put_plan(&row, audit).await?;
    state.quotas.refresh(now).await?;
    Ok(row)
}

/// The workspace's billing state as its customer event tells it.
pub fn billing_json(b: &WorkspaceBilling) -> serde_json::Value {
    json!({
        "workspace_id": b.workspace_id,
        "plan_id": b.plan_id,
        "status": b.status,
        "status_changed_at": b.status_changed_at,
        "grace_ends_at": b.grace_ends_at,
    })
}

/// Writes a workspace's billing row with its audit event and `usage.billing_updated`
/// event, and reloads this node's copy of plans.
pub async fn save_billing(
    state: &AppState,
    audit: NewAuditEvent,
    billing: WorkspaceBilling,
) -> Result<WorkspaceBilling, ApiError> {
    let ws = WorkspaceId::parse(&billing.workspace_id)
        .map_err(|_| unprocessable("not a workspace id"))?;
    let event = crate::events::seal(
        &state.keys.current(),
        ws,
        EventType::BillingUpdated,
        None,
        &billing_json(&billing),
        billing.updated_at,
    );
    state
        .store
        .put_workspace_billing(&billing, audit, event)
        .await?;
    state.quotas.refresh(billing.updated_at).await?;
    Ok(billing)
}

/// Puts a workspace on a plan (or none), optionally setting its billing status.
pub async fn assign(
    state: &AppState,
    origin: &RequestOrigin,
    actor: Actor,
    workspace_id: &str,
    plan_id: Option<String>,
    status: Option<BillingStatus>,
) -> Result<WorkspaceBilling, ApiError> {
    let ws = WorkspaceId::parse(workspace_id).map_err(|_| unprocessable("not a workspace id"))?;
    state.store.get_workspace(ws).await?;
    if let Some(p) = &plan_id {
        state.store.get_plan(p).await?;
    }
    let now = state.clock.now();
    let current = state.store.workspace_billing(workspace_id).await?;
    let old_status = current.as_ref().map(|b| b.status.clone());
    let new_status = status.map(|s| s.as_str().to_owned());
    let changed = new_status.is_some() && new_status != old_status;
    let billing = WorkspaceBilling {
        workspace_id: workspace_id.to_owned(),
        plan_id: plan_id.clone(),
        status: new_status
            .or(old_status)
            .unwrap_or_else(|| BillingStatus::Active.as_str().to_owned()),
        status_changed_at: match &current {
            Some(c) if !changed => c.status_changed_at,
            _ => now,
        },
        grace_ends_at: current.as_ref().and_then(|c| c.grace_ends_at),
        stripe_customer_id: current.as_ref().and_then(|c| c.stripe_customer_id.clone()),
        stripe_subscription_id: current
            .as_ref()
            .and_then(|c| c.stripe_subscription_id.clone()),
        updated_at: now,
    };
    let audit = origin.stamp(
        NewAuditEvent::new(Some(ws), actor, "workspace.plan_assigned")
            .target("workspace", workspace_id.to_owned())
            .details(json!({"plan_id": plan_id, "status": billing.status})),
    );
    save_billing(state, audit, billing).await
}

/// Room for new contacts under the plan's `contacts` limit: `None` without
/// one, else `(limit, held)` (one count, only for workspaces with the limit).
/// The billing status is checked too: a read-only workspace creates nothing.
pub async fn contacts_room(
    state: &AppState,
    workspace_id: &str,
) -> Result<Option<(i64, i64)>, ApiError> {
    state.quotas.check_status(workspace_id)?;
    let Some(limit) = state.quotas.held_limit(workspace_id, Quota::Contacts) else {
        return Ok(None);
    };
    let held = state
        .store
        .count_contacts(workspace_id, &ContactQuery::default())
        .await?
        .contacts;
    Ok(Some((limit, held)))
}

/// Refuses a contact the business adds when the plan's `contacts` limit is reached.
pub async fn check_new_contact(state: &AppState, workspace_id: &str) -> Result<(), ApiError> {
    if let Some((_, held)) = contacts_room(state, workspace_id).await? {
        state
            .quotas
            .check_held(workspace_id, Quota::Contacts, held)?;
    }
    Ok(())
}

/// Counts a committed use against the workspace's plan on this node and
/// records the warnings it crosses. A warning that cannot be recorded is
/// logged; the use itself already happened.
pub async fn record_use(state: &AppState, workspace_id: &str, metric: &str, amount: i64) {
    let now = state.clock.now();
    for c in state.quotas.record(workspace_id, metric, amount, now) {
        if let Err(e) = warn(state, workspace_id, &c, now).await {
            tracing::warn!(error = ?e, workspace_id, quota = %c.quota, "cannot record a quota warning");
        }
    }
}

async fn warn(
    state: &AppState,
    workspace_id: &str,
    c: &Crossing,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let ws = WorkspaceId::parse(workspace_id)?;
    let resets_at = format!("{}T00:00:00Z", next_month_start(now.date_naive()));
    let event = crate::events::seal(
        &state.keys.current(),
        ws,
        EventType::QuotaWarning,
        None,
        &json!({
            "quota": c.quota.to_string(), "level": c.level, "limit": c.limit,
            "used": c.used, "period": c.period, "resets_at": resets_at,
        }),
        now,
    );
    let quota = c.quota.to_string();
    state
        .store
        .record_quota_warning(workspace_id, &c.period, &quota, i64::from(c.level), event)
        .await?;
    Ok(())
}
