//! Stripe billing operations: an owner's Checkout and Billing Portal links,
//! and the webhook events that move a workspace's plan and billing status
//! (verified, applied once per event id, never deleting data).

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use waypost_core::audit::Actor;
use waypost_core::events::EventType;
use waypost_core::plan::{BillingStatus, in_grace, status_for_subscription};
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_store::plans::WorkspaceBilling;
use waypost_store::stripe::BillingChange;

use super::Ctx;
use crate::error::{ApiError, Problem, unprocessable};
use crate::state::AppState;
use crate::stripe_api::{StripeApi, StripeError};

fn disabled() -> ApiError {
    Problem::new(
        StatusCode::NOT_FOUND,
        "billing-disabled",
        "Billing disabled",
        "Stripe billing is not configured on this server (WAYPOST_STRIPE_SECRET_KEY, WAYPOST_STRIPE_WEBHOOK_SECRET).",
    )
    .into()
}

fn unavailable(e: StripeError) -> ApiError {
    tracing::warn!(error = %e, "Stripe call failed");
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "stripe-unavailable",
        "Stripe unavailable",
        "Stripe did not create the link; try again shortly.",
    )
    .into()
}

fn api(state: &AppState) -> Result<StripeApi, ApiError> {
    StripeApi::from_config(&state.config).ok_or_else(disabled)
}

fn check_url(field: &str, url: &str) -> Result<(), ApiError> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && url.len() <= 2048 => Ok(()),
        _ => Err(unprocessable(format!("`{field}` must be an http(s) URL."))),
    }
}

/// A link the owner follows to pay on Stripe's page.
#[derive(Debug, Clone)]
pub struct Link {
    pub id: Option<String>,
    pub url: String,
}

/// A Checkout session subscribing the workspace to `plan_id`'s Stripe price.
pub async fn checkout(
    state: &AppState,
    ctx: &Ctx,
    plan_id: &str,
    success_url: &str,
    cancel_url: &str,
) -> Result<Link, ApiError> {
    let api = api(state)?;
    check_url("success_url", success_url)?;
    check_url("cancel_url", cancel_url)?;
    let plan = state.store.get_plan(plan_id).await?;
    let price = plan.stripe_price_id.ok_or_else(|| {
        unprocessable("This plan has no Stripe price; an operator sets `stripe_price_id`.")
    })?;
    let billing = state.store.workspace_billing(&ctx.workspace).await?;
    let customer = billing
        .as_ref()
        .and_then(|b| b.stripe_customer_id.as_deref());
    let (id, url) = api
        .checkout_session(
            &ctx.workspace,
            plan_id,
            &price,
            customer,
            success_url,
            cancel_url,
        )
        .await
        .map_err(unavailable)?;
    state
        .audit(
            ctx.origin.stamp(
                NewAuditEvent::new(
                    Some(ctx.workspace_id),
                    ctx.actor.clone(),
                    "billing.checkout_started",
                )
                .details(json!({"plan_id": plan_id, "session": id})),
            ),
        )
        .await?;
    Ok(Link { id: Some(id), url })
}

/// A Billing Portal session for the workspace's Stripe customer.
pub async fn portal(state: &AppState, ctx: &Ctx, return_url: &str) -> Result<Link, ApiError> {
    let api = api(state)?;
    check_url("return_url", return_url)?;
    let customer = state
        .store
        .workspace_billing(&ctx.workspace)
        .await?
        .and_then(|b| b.stripe_customer_id)
        .ok_or_else(|| {
            ApiError::from(Problem::new(
                StatusCode::CONFLICT,
                "no-subscription",
                "No subscription",
                "The workspace has no Stripe customer yet; start a subscription through checkout first.",
            ))
        })?;
    let url = api
        .portal_session(&customer, return_url)
        .await
        .map_err(unavailable)?;
    Ok(Link { id: None, url })
}

fn refused(detail: &str) -> ApiError {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-signature",
        "Invalid signature",
        detail,
    )
    .into()
}

/// What a webhook delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOutcome {
    pub event_id: String,
    /// `false` for an event applied before (a redelivery).
    pub applied: bool,
}

/// Verifies and applies one Stripe webhook delivery.
pub async fn handle_webhook(
    state: &AppState,
    signature: Option<&str>,
    body: &[u8],
) -> Result<WebhookOutcome, ApiError> {
    let secret = state
        .config
        .stripe_webhook_secret
        .as_ref()
        .ok_or_else(disabled)?;
    let now = state.clock.now();
    let header = signature.ok_or_else(|| refused("The Stripe-Signature header is missing."))?;
    waypost_crypto::stripe::verify(
        secret.expose_secret(),
        header,
        body,
        now.timestamp(),
        waypost_crypto::stripe::TOLERANCE_SECS,
    )
    .map_err(|e| refused(&format!("{e}.")))?;
    let event: Value =
        serde_json::from_slice(body).map_err(|_| unprocessable("The event is not JSON."))?;
    let (Some(id), Some(kind)) = (event["id"].as_str(), event["type"].as_str()) else {
        return Err(unprocessable("The event has no `id` or `type`."));
    };
    let change = change_for(state, kind, &event["data"]["object"], now).await?;
    let applied = state
        .store
        .apply_stripe_event(id, kind, change.as_ref(), now)
        .await?;
    if applied && change.is_some() {
        state.quotas.refresh(now).await?;
    }
    Ok(WebhookOutcome {
        event_id: id.chars().take(255).collect(),
        applied,
    })
}

/// The workspace an event's object belongs to: by Stripe customer, else by
/// the workspace id Waypost put in its metadata.
async fn billing_of(state: &AppState, obj: &Value) -> Result<Option<WorkspaceBilling>, ApiError> {
    if let Some(c) = obj["customer"].as_str()
        && let Some(b) = state.store.billing_by_customer(c).await?
    {
        return Ok(Some(b));
    }
    let Some(ws) = obj["metadata"]["workspace_id"]
        .as_str()
        .or(obj["client_reference_id"].as_str())
    else {
        return Ok(None);
    };
    let Ok(id) = WorkspaceId::parse(ws) else {
        return Ok(None);
    };
    match state.store.get_workspace(id).await {
        Ok(_) => {}
        Err(waypost_store::StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let current = state.store.workspace_billing(ws).await?;
    Ok(Some(current.unwrap_or(WorkspaceBilling {
        workspace_id: ws.to_owned(),
        plan_id: None,
        status: BillingStatus::Active.as_str().into(),
        status_changed_at: DateTime::<Utc>::UNIX_EPOCH,
        grace_ends_at: None,
        stripe_customer_id: None,
        stripe_subscription_id: None,
        updated_at: DateTime::<Utc>::UNIX_EPOCH,
    })))
}

/// A plan named in the object's metadata, if it exists.
async fn plan_of(state: &AppState, obj: &Value) -> Result<Option<String>, ApiError> {
    let Some(p) = obj["metadata"]["plan_id"].as_str() else {
        return Ok(None);
    };
    match state.store.get_plan(p).await {
        Ok(plan) => Ok(Some(plan.id)),
        Err(waypost_store::StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The billing change an event makes, if any.
async fn change_for(
    state: &AppState,
    kind: &str,
    obj: &Value,
    now: DateTime<Utc>,
) -> Result<Option<BillingChange>, ApiError> {
    let relevant = matches!(
        kind,
        "checkout.session.completed" | "invoice.paid" | "invoice.payment_failed"
    ) || kind.starts_with("customer.subscription.");
    if !relevant {
        return Ok(None);
    }
    let Some(mut b) = billing_of(state, obj).await? else {
        tracing::warn!(event_type = kind, "Stripe event for no known workspace");
        return Ok(None);
    };
    let before = b.clone();
    let current: BillingStatus = b.status.parse().unwrap_or(BillingStatus::Active);
    let grace_over = b.grace_ends_at.is_some_and(|at| at <= now);
    let status = match kind {
        "checkout.session.completed" => {
            b.stripe_customer_id = obj["customer"]
                .as_str()
                .map(str::to_owned)
                .or(b.stripe_customer_id);
            b.stripe_subscription_id = obj["subscription"]
                .as_str()
                .map(str::to_owned)
                .or(b.stripe_subscription_id);
            BillingStatus::Active
        }
        "invoice.paid" => BillingStatus::Active,
        "invoice.payment_failed" if current == BillingStatus::Active => BillingStatus::PastDue,
        "invoice.payment_failed" => current,
        "customer.subscription.deleted" => BillingStatus::Canceled,
        _ => {
            if let Some(s) = obj["id"].as_str() {
                b.stripe_subscription_id = Some(s.to_owned());
            }
            status_for_subscription(obj["status"].as_str().unwrap_or(""), current, grace_over)
        }
    };
    if let Some(p) = plan_of(state, obj).await? {
        b.plan_id = Some(p);
    }
    if b.stripe_customer_id.is_none() {
        b.stripe_customer_id = obj["customer"].as_str().map(str::to_owned);
    }
    b.grace_ends_at = match status {
        s if in_grace(s) => b.grace_ends_at.or(Some(
            now + Duration::days(state.config.stripe_grace_days.into()),
        )),
        BillingStatus::ReadOnly => b.grace_ends_at,
        _ => None,
    };
    if status != current || b.status_changed_at == DateTime::<Utc>::UNIX_EPOCH {
        b.status_changed_at = now;
    }
    b.status = status.as_str().to_owned();
    b.updated_at = now;
    if b == (WorkspaceBilling {
        updated_at: now,
        ..before
    }) {
        return Ok(None);
    }
    Ok(Some(change(state, b, Actor::System, kind)?))
}

/// A billing row with its audit and `usage.billing_updated` event.
pub fn change(
    state: &AppState,
    billing: WorkspaceBilling,
    actor: Actor,
    cause: &str,
) -> Result<BillingChange, ApiError> {
    let ws = WorkspaceId::parse(&billing.workspace_id)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    let audit = NewAuditEvent::new(Some(ws), actor, "billing.updated")
        .target("workspace", billing.workspace_id.clone())
        .details(json!({"cause": cause, "plan_id": billing.plan_id, "status": billing.status}));
    let event = crate::events::seal(
        &state.keys.current(),
        ws,
        EventType::BillingUpdated,
        None,
        &super::plans::billing_json(&billing),
        billing.updated_at,
    );
    Ok(BillingChange {
        billing,
        audit,
        event,
    })
}
