//! The campaign sender's step: feeds one campaign's due recipients to the
//! outbox through `ops::messages::accept`, the path of `POST /v1/messages`
//! (consent, restriction, template and shield checks run again at that
//! moment), with one idempotency key per recipient. A crash after the accept
//! but before the recipient row says `queued` is harmless: the next step's
//! accept with the same key answers with the message already queued.
//!
//! Pacing: the sender keeps at most `campaign_window` of a campaign's
//! messages waiting in the outbox (the dispatcher holds the number's
//! throughput and pair limits), feeds nothing while the provider throttles
//! them (130429), and never more than the number's messaging tier allows
//! in a rolling 24 hours, nor past the plan's monthly quota for the
//! template's category. It pauses the campaign by itself when Meta pauses
//! the template, too many recipients opt out, or the quota is used up. A recipient who opts out
//! while their message waits in the outbox (not yet claimed) has it withdrawn:
//! the dispatcher gives it up as failed instead of sending it.

use chrono::Duration;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use waypost_cloudapi::OutboundContent;
use waypost_core::campaign::{
    CampaignAction, CampaignStatus, MessagingTier, ParameterSource, PauseReason, SendWindow,
    SkipReason,
};
use waypost_core::policy::Category;
use waypost_core::usage::accepted_metric;
use waypost_core::{Actor, WorkspaceId};
use waypost_store::StoreError;
use waypost_store::campaign_reports::consent_column;
use waypost_store::campaign_sends::{DueRecipient, RecipientUpdate};
use waypost_store::campaigns::CampaignRow;

use super::Ctx;
use super::campaign_runs::{counters, transition};
use super::campaigns::{Campaign, open, parameter_values};
use super::idempotency::IdempotencyKey;
use super::messages::{Answer, SendMessage, accept};
use crate::error::ApiError;
use crate::state::{AppState, RequestOrigin};

/// Recipients read per step.
const STEP_MAX: u32 = 500;
/// Accepts in flight at once (the acceptor commits them in groups).
const IN_FLIGHT: usize = 64;

/// What one step did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FeedReport {
    pub queued: usize,
    pub skipped: usize,
    pub deferred: usize,
    /// Whether the step read as many recipients as it could (more may be due).
    pub full: bool,
}

/// The sender's context: the workspace, acting as the system.
fn system_ctx(row: &CampaignRow) -> Result<Ctx, ApiError> {
    let workspace_id: WorkspaceId = row
        .workspace_id
        .parse()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("campaign workspace id: {e:?}")))?;
    Ok(Ctx::new(
        workspace_id,
        Actor::System,
        RequestOrigin {
            ip: None,
            user_agent: None,
            rate_limit: None,
        },
    ))
}

/// The per-recipient key: one send per campaign and recipient, whatever the
/// contact's data says by the time of a retry.
fn recipient_key(campaign_id: &str, seq: i64) -> IdempotencyKey {
    let key = format!("campaign:{campaign_id}:{seq}");
    IdempotencyKey {
        request_hash: Sha256::digest(key.as_bytes()).to_vec(),
        key,
    }
}

/// Pauses the campaign by itself, with a `campaign.paused` event saying why.
async fn auto_pause(
    state: &AppState,
    ctx: &Ctx,
    c: &Campaign,
    reason: PauseReason,
    detail: &str,
) -> Result<(), ApiError> {
    if transition(state, ctx, c, CampaignAction::Pause, Some((reason, detail))).await? {
        tracing::warn!(campaign = %c.row.id, reason = reason.as_str(), "campaign paused itself");
    }
    Ok(())
}

/// How many more recipients the number's tier allows now (`None`: no limit).
async fn tier_room(state: &AppState, channel_id: &str) -> Result<Option<i64>, ApiError> {
    let tier = state
        .store
        .messaging_tier(channel_id)
        .await?
        .and_then(|t| MessagingTier::parse(&t))
        .unwrap_or(MessagingTier::Unlimited);
    let Some(limit) = tier.limit() else {
        return Ok(None);
    };
    let since = state.clock.now() - Duration::hours(24);
    let used = state
        .store
        .unique_outbound_contacts(channel_id, since)
        .await?;
    Ok(Some((limit - used).max(0)))
}

/// One step for one campaign the caller holds the lease of. `check_quality`
/// also reads the opt-out rate (a heavier query, not needed every step).
pub async fn feed_once(
    state: &AppState,
    row: CampaignRow,
    check_quality: bool,
) -> Result<FeedReport, ApiError> {
    let ctx = system_ctx(&row)?;
    let c = open(row)?;
    let now = state.clock.now();
    if c.row.start_at.is_some_and(|at| at > now) {
        return Ok(FeedReport::default());
    }
    if CampaignStatus::parse(&c.row.status) == Some(CampaignStatus::Scheduled) {
        transition(state, &ctx, &c, CampaignAction::Begin, None).await?;
    }
    let template = state
        .store
        .find_template(
            &c.row.workspace_id,
            &c.row.template_name,
            &c.row.template_language,
        )
        .await?;
    match template.as_ref().map(|t| t.status.as_str()) {
        Some("APPROVED") => {}
        Some(status) => {
            let detail = format!("the template's status is {status}");
            auto_pause(state, &ctx, &c, PauseReason::TemplatePaused, &detail).await?;
            return Ok(FeedReport::default());
        }
        None => {
            auto_pause(
                state,
                &ctx,
                &c,
                PauseReason::TemplatePaused,
                "the template was deleted",
            )
            .await?;
            return Ok(FeedReport::default());
        }
    }
    if check_quality && opt_out_rate_exceeded(state, &ctx, &c).await? {
        return Ok(FeedReport::default());
    }
    if check_quality
        && state
            .store
            .channel_quality(&c.row.channel_id)
            .await?
            .as_deref()
            == Some("RED")
    {
        let detail = "Meta rated the number's quality red";
        auto_pause(state, &ctx, &c, PauseReason::QualityRed, detail).await?;
        return Ok(FeedReport::default());
    }
    let category = template.map(|t| t.category).unwrap_or_default();
    let withdrawn = state
        .store
        .withdraw_opted_out(
            &c.row.id,
            &c.row.channel_id,
            consent_column(&category),
            "recipient opted out before the send",
            now,
        )
        .await?;
    if withdrawn > 0 {
        tracing::info!(campaign = %c.row.id, withdrawn, "campaign sender: withdrew sends to recipients who opted out");
    }
    let (waiting, throttled) = state
        .store
        .campaign_outbox(&c.row.id, &c.row.channel_id)
        .await?;
    if throttled > 0 {
        // The provider said 130429: let the dispatcher's backoff drain these first.
        return Ok(FeedReport::default());
    }
    let mut room = i64::from(state.config.campaign_window) - waiting;
    if let Some(tier) = tier_room(state, &c.row.channel_id).await? {
        room = room.min(tier);
    }
    let quota = quota_room(state, &ctx.workspace, &category);
    if let Ok(Some(left)) = quota {
        room = room.min(left);
    }
    if room <= 0 && quota.is_ok() {
        return Ok(FeedReport::default());
    }
    let limit = (room.max(1) as u32).min(STEP_MAX);
    let due = state
        .store
        .due_campaign_recipients(&c.row.id, now, limit)
        .await?;
    if due.is_empty() {
        // Completed once every recipient was fed and the provider has every message.
        if waiting == 0 && state.store.pending_campaign_recipients(&c.row.id).await? == 0 {
            complete(state, &ctx, &c).await?;
        }
        return Ok(FeedReport::default());
    }
    if let Err(detail) = quota {
        // Recipients are due but the plan allows no more: they wait for a resume.
        auto_pause(state, &ctx, &c, PauseReason::QuotaExceeded, &detail).await?;
        return Ok(FeedReport::default());
    }
    let full = due.len() as u32 == limit;
    let window: SendWindow = c
        .row
        .send_window
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| ApiError::Internal(e.into()))?
        .unwrap_or_default();
    let results: Vec<Step> = futures_util::stream::iter(due)
        .map(|r| feed_one(state, &ctx, &c, &window, r))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut report = FeedReport {
        full,
        ..Default::default()
    };
    let mut updates = Vec::with_capacity(results.len());
    let mut stop = None;
    for step in results {
        match step {
            Step::Update(u) => {
                match &u {
                    RecipientUpdate::Queued { .. } => report.queued += 1,
                    RecipientUpdate::Skipped { .. } => report.skipped += 1,
                    RecipientUpdate::Deferred { .. } => report.deferred += 1,
                }
                updates.push(u);
            }
            Step::TemplateRefused(detail) => stop = Some((PauseReason::TemplatePaused, detail)),
            Step::QuotaReached(detail) => {
                stop.get_or_insert((PauseReason::QuotaExceeded, detail));
            }
            Step::Retry(e) => {
                tracing::warn!(campaign = %c.row.id, error = %e, "campaign sender: a recipient will be tried again");
            }
        }
    }
    state
        .store
        .update_campaign_recipients(&c.row.id, &updates, state.clock.now())
        .await?;
    metrics::counter!("waypost_campaign_queued_total").increment(report.queued as u64);
    if let Some((reason, detail)) = stop {
        auto_pause(state, &ctx, &c, reason, &detail).await?;
    }
    Ok(report)
}

async fn complete(state: &AppState, ctx: &Ctx, c: &Campaign) -> Result<(), ApiError> {
    let audit = waypost_core::NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "campaign.completed",
    )
    .target("campaign", c.row.id.clone());
    state
        .store
        .transition_campaign(
            &waypost_store::campaign_sends::CampaignTransition {
                workspace_id: ctx.workspace.clone(),
                id: c.row.id.clone(),
                from: vec![CampaignStatus::Running.as_str()],
                to: CampaignStatus::Completed.as_str(),
                pause_reason: None,
                start: None,
                cancel_pending: false,
                now: state.clock.now(),
            },
            Some(audit),
            &[],
        )
        .await?;
    Ok(())
}

/// How many more messages the plan lets the workspace send this month in
/// the template's category (`None`: no quota); `Err` with the reason when
/// none is left or the subscription is unpaid.
fn quota_room(state: &AppState, workspace: &str, category: &str) -> Result<Option<i64>, String> {
    // The category `accept` counts the send in.
    let category = Category::parse(category).unwrap_or(Category::Marketing);
    let metric = accepted_metric(Some(category.as_str()));
    let now = state.clock.now();
    match state.quotas.check(workspace, &metric, 1, now) {
        Ok(()) => Ok(state.quotas.remaining(workspace, &metric, now)),
        Err(refusal) => Err(match ApiError::from(refusal) {
            ApiError::Problem(p) => p.detail,
            _ => "the plan's quota is used up".to_owned(),
        }),
    }
}

/// Pauses the campaign when too many of those sent it opted out or blocked
/// marketing since; `true` when it did.
async fn opt_out_rate_exceeded(
    state: &AppState,
    ctx: &Ctx,
    c: &Campaign,
) -> Result<bool, ApiError> {
    let counts = counters(state, c).await?;
    let lost = counts.opted_out_or_blocked();
    let reached = counts.sent + counts.failed_codes.values().sum::<i64>();
    if reached < i64::from(state.config.campaign_opt_out_min_sent) || reached == 0 {
        return Ok(false);
    }
    let rate = lost as f64 / reached as f64;
    if rate <= state.config.campaign_opt_out_threshold {
        return Ok(false);
    }
    let detail = format!(
        "{lost} of {reached} recipients opted out or blocked marketing ({:.1}%, above the {:.1}% threshold)",
        rate * 100.0,
        state.config.campaign_opt_out_threshold * 100.0
    );
    auto_pause(state, ctx, c, PauseReason::OptOutRate, &detail).await?;
    Ok(true)
}

enum Step {
    Update(RecipientUpdate),
    /// The template cannot be sent any more: pause.
    TemplateRefused(String),
    /// The plan's quota (or billing status) refused the send: pause, the
    /// recipient stays pending for a resume.
    QuotaReached(String),
    /// Left pending for the next step.
    Retry(String),
}

fn skipped(seq: i64, reason: SkipReason, detail: Option<&str>) -> Step {
    Step::Update(RecipientUpdate::Skipped {
        seq,
        reason: reason.as_str(),
        detail: detail.map(str::to_owned),
    })
}

/// The template message for one recipient.
fn template_content(c: &Campaign, values: &[String]) -> Result<OutboundContent, ApiError> {
    let (header, body) = values.split_at(c.parameters.header.len().min(values.len()));
    let text = |v: &[String]| -> Vec<serde_json::Value> {
        v.iter()
            .map(|t| serde_json::json!({"type": "text", "text": t}))
            .collect()
    };
    let mut components = Vec::new();
    if !header.is_empty() {
        components.push(serde_json::json!({"type": "header", "parameters": text(header)}));
    }
    if !body.is_empty() {
        components.push(serde_json::json!({"type": "body", "parameters": text(body)}));
    }
    serde_json::from_value(serde_json::json!({
        "type": "template",
        "template": {
            "name": c.row.template_name,
            "language": {"code": c.row.template_language},
            "components": components,
        }
    }))
    .map_err(|e| ApiError::Internal(e.into()))
}

async fn feed_one(
    state: &AppState,
    ctx: &Ctx,
    c: &Campaign,
    window: &SendWindow,
    r: DueRecipient,
) -> Step {
    let contact = match state.store.get_contact(&ctx.workspace, &r.contact_id).await {
        Ok(contact) => contact,
        Err(StoreError::NotFound(_)) => {
            return skipped(r.seq, SkipReason::Refused, Some("contact-gone"));
        }
        Err(e) => return Step::Retry(e.to_string()),
    };
    if let Some(at) = window.next_allowed(state.clock.now(), contact.time_zone.as_deref()) {
        return Step::Update(RecipientUpdate::Deferred {
            seq: r.seq,
            due_at: at,
        });
    }
    let sources: Vec<&ParameterSource> = c
        .parameters
        .header
        .iter()
        .chain(&c.parameters.body)
        .collect();
    let values = match parameter_values(state, &contact, &sources) {
        Ok(Some(v)) => v,
        Ok(None) => return skipped(r.seq, SkipReason::InvalidParameters, None),
        Err(e) => return Step::Retry(e.to_string()),
    };
    let content = match template_content(c, &values) {
        Ok(content) => content,
        Err(e) => return Step::Retry(e.to_string()),
    };
    let req = SendMessage {
        channel_id: c.row.channel_id.clone(),
        to: None,
        user_id: None,
        contact_id: Some(contact.id.clone()),
        context: None,
        content,
        media_id: None,
    };
    let key = recipient_key(&c.row.id, r.seq);
    match accept(state, ctx, req, Some(&key)).await {
        Ok(Answer::Accepted(a)) => Step::Update(RecipientUpdate::Queued {
            seq: r.seq,
            message_id: a.id,
        }),
        Ok(Answer::Replayed(stored)) => {
            match serde_json::from_slice::<super::messages::Accepted>(&stored.body) {
                Ok(a) => Step::Update(RecipientUpdate::Queued {
                    seq: r.seq,
                    message_id: a.id,
                }),
                Err(e) => Step::Retry(format!("a stored answer did not read: {e}")),
            }
        }
        Err(ApiError::Problem(p)) if p.kind.ends_with("/quota-exceeded") => {
            Step::QuotaReached(p.detail)
        }
        Err(ApiError::Problem(p)) if p.status == 422 => {
            let slug = p.kind.rsplit('/').next().unwrap_or_default().to_owned();
            match slug.as_str() {
                "recipient-opted-out" => skipped(r.seq, SkipReason::OptedOut, None),
                "marketing-consent-required" => skipped(r.seq, SkipReason::NoConsent, None),
                "recipient-restricted" => skipped(r.seq, SkipReason::Restricted, None),
                "phone-required" => skipped(r.seq, SkipReason::NoPhone, None),
                "template-not-approved" | "template-unknown" => Step::TemplateRefused(p.detail),
                _ => skipped(r.seq, SkipReason::Refused, Some(&slug)),
            }
        }
        Err(e) => Step::Retry(e.to_string()),
    }
}
