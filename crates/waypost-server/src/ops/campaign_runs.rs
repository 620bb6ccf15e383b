//! Running a campaign: a start confirmed against the pre-flight (the caller
//! echoes the eligible count it saw, so an audience that changed since is
//! noticed) materialises the recipients and hands the campaign to the sender
//! (`ops::campaign_feed`); pause, resume and cancel move it between states,
//! each audited; the report counts recipients by outcome (each recipient's
//! outcome and the export are `ops::campaign_outcomes`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use waypost_core::audience::TimeZoneName;
use waypost_core::campaign::{
    CampaignAction, CampaignStatus, HourWindow, MARKETING_BLOCKED_CODE, PauseReason,
    RecipientOutcome, SendWindow,
};
use waypost_core::events::EventType;
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_store::campaign_reports::consent_column;
use waypost_store::campaign_sends::{
    CampaignStartFields, CampaignTransition, NewCampaignRecipient,
};

use super::Ctx;
use super::campaigns::{Campaign, Preflight, evaluate, get_campaign, open, summarise};
use crate::error::{ApiError, Problem, unprocessable};
use crate::state::AppState;

/// Recipients written per transaction at start.
const START_BATCH: usize = 1000;

/// What a start asks for.
#[derive(Debug, Clone)]
pub struct StartCampaign {
    /// The pre-flight's `eligible` as the caller saw it.
    pub confirm_eligible: i64,
    /// Not before this time; now when unset.
    pub start_at: Option<DateTime<Utc>>,
    pub window: SendWindow,
}

impl StartCampaign {
    /// Checks hours and the time zone.
    pub fn parse(
        confirm_eligible: i64,
        start_at: Option<DateTime<Utc>>,
        recipient_hours: Option<(u32, u32)>,
        quiet_hours: Option<(u32, u32)>,
        time_zone: Option<String>,
    ) -> Result<Self, ApiError> {
        let hours = |(from, to): (u32, u32), field: &str| {
            HourWindow::parse(from, to).map_err(|e| unprocessable(format!("`{field}`: {e}")))
        };
        let time_zone = time_zone
            .map(|z| {
                TimeZoneName::parse(&z)
                    .map(|z| z.as_str().to_owned())
                    .map_err(|_| {
                        unprocessable("`time_zone` must be an IANA zone such as Europe/Berlin")
                    })
            })
            .transpose()?;
        Ok(Self {
            confirm_eligible,
            start_at,
            window: SendWindow {
                recipient_hours: recipient_hours
                    .map(|h| hours(h, "recipient_hours"))
                    .transpose()?,
                quiet_hours: quiet_hours.map(|h| hours(h, "quiet_hours")).transpose()?,
                time_zone,
            },
        })
    }
}

fn state_problem(c: &Campaign, wanted: &str) -> ApiError {
    Problem::new(
        axum::http::StatusCode::CONFLICT,
        "campaign-state",
        "Campaign state",
        format!("The campaign is {}; it cannot be {wanted}.", c.row.status),
    )
    .into()
}

/// Starts a draft: checks the confirmation against a fresh pre-flight, writes
/// every recipient (eligible ones pending, the others skipped with their
/// reason), then moves the campaign to `running` (or `scheduled`).
pub async fn start(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    input: StartCampaign,
) -> Result<Campaign, ApiError> {
    state
        .quotas
        .check_feature(&ctx.workspace, waypost_core::plan::Feature::Campaigns)?;
    let current = get_campaign(state, &ctx.workspace, id).await?;
    if CampaignStatus::parse(&current.row.status) != Some(CampaignStatus::Draft) {
        return Err(state_problem(&current, "started (only a draft can)"));
    }
    let evaluation = evaluate(state, &ctx.workspace, id).await?;
    let pre: Preflight = summarise(state, &evaluation);
    if pre.template.status != "APPROVED" {
        return Err(Problem::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "template-not-approved",
            "Template not approved",
            format!("the template's status is {}", pre.template.status),
        )
        .into());
    }
    if pre.eligible != input.confirm_eligible {
        return Err(Problem::new(
            axum::http::StatusCode::CONFLICT,
            "preflight-changed",
            "Pre-flight changed",
            format!(
                "the audience changed: {} recipients are eligible now, the start confirmed {}; read the pre-flight again and confirm its count",
                pre.eligible, input.confirm_eligible
            ),
        )
        .with("preflight", serde_json::to_value(&pre).map_err(|e| ApiError::Internal(e.into()))?)
        .into());
    }
    if pre.eligible == 0 {
        return Err(unprocessable("no recipient is eligible; nothing to send"));
    }
    // A start that crashed midway left some rows: begin again.
    state.store.reset_campaign_recipients(id).await?;
    let rows: Vec<NewCampaignRecipient> = evaluation
        .recipients
        .into_iter()
        .enumerate()
        .map(|(i, (contact_id, reason))| NewCampaignRecipient {
            seq: i as i64 + 1,
            contact_id,
            state: if reason.is_some() {
                "skipped"
            } else {
                "pending"
            },
            skip_reason: reason.map(|r| r.as_str()),
        })
        .collect();
    for chunk in rows.chunks(START_BATCH) {
        state.store.insert_campaign_recipients(id, chunk).await?;
    }
    let now = state.clock.now();
    let to = match input.start_at {
        Some(at) if at > now => CampaignStatus::Scheduled,
        _ => CampaignStatus::Running,
    };
    let window = serde_json::to_string(&input.window).expect("windows serialise");
    let audit = ctx.origin.stamp(
        NewAuditEvent::new(
            Some(ctx.workspace_id),
            ctx.actor.clone(),
            "campaign.started",
        )
        .target("campaign", id.to_owned())
        .details(serde_json::json!({
            "eligible": pre.eligible,
            "skipped": pre.skipped,
            "start_at": input.start_at,
            "window": input.window,
        })),
    );
    let moved = state
        .store
        .transition_campaign(
            &CampaignTransition {
                workspace_id: ctx.workspace.clone(),
                id: id.to_owned(),
                from: vec![CampaignStatus::Draft.as_str()],
                to: to.as_str(),
                pause_reason: None,
                start: Some(CampaignStartFields {
                    send_window: Some(window),
                    start_at: input.start_at,
                    confirmed_recipients: pre.eligible,
                }),
                cancel_pending: false,
                now,
            },
            Some(audit),
            &[],
        )
        .await?;
    let after = get_campaign(state, &ctx.workspace, id).await?;
    if !moved {
        return Err(state_problem(&after, "started (only a draft can)"));
    }
    Ok(after)
}

/// The `campaign.paused` event of a pause.
pub(crate) fn paused_event(
    state: &AppState,
    workspace_id: WorkspaceId,
    id: &str,
    reason: PauseReason,
    detail: &str,
    now: DateTime<Utc>,
) -> waypost_store::NewCustomerEvent {
    crate::events::seal(
        &state.keys.current(),
        workspace_id,
        EventType::CampaignPaused,
        Some(id.to_owned()),
        &serde_json::json!({"campaign_id": id, "reason": reason.as_str(), "detail": detail}),
        now,
    )
}

/// Moves a campaign from one of `from` to `to`, audited as `action` (a
/// `campaign.paused` event goes with a pause). `false` when it was not in
/// one of `from`.
pub(crate) async fn transition(
    state: &AppState,
    ctx: &Ctx,
    c: &Campaign,
    action: CampaignAction,
    reason: Option<(PauseReason, &str)>,
) -> Result<bool, ApiError> {
    let now = state.clock.now();
    let to = match action {
        CampaignAction::Pause => CampaignStatus::Paused,
        CampaignAction::Cancel => CampaignStatus::Cancelled,
        CampaignAction::Resume if c.row.start_at.is_some_and(|at| at > now) => {
            CampaignStatus::Scheduled
        }
        CampaignAction::Resume | CampaignAction::Start | CampaignAction::Begin => {
            CampaignStatus::Running
        }
    };
    let events = match reason {
        Some((r, detail)) => vec![paused_event(
            state,
            ctx.workspace_id,
            &c.row.id,
            r,
            detail,
            now,
        )],
        None => vec![],
    };
    let verb = match action {
        CampaignAction::Pause => "campaign.paused",
        CampaignAction::Resume => "campaign.resumed",
        CampaignAction::Cancel => "campaign.cancelled",
        CampaignAction::Start => "campaign.started",
        CampaignAction::Begin => "campaign.began",
    };
    let mut details = serde_json::json!({"from": c.row.status, "to": to.as_str()});
    if let Some((r, _)) = reason {
        details["reason"] = r.as_str().into();
    }
    let audit = ctx.origin.stamp(
        NewAuditEvent::new(Some(ctx.workspace_id), ctx.actor.clone(), verb)
            .target("campaign", c.row.id.clone())
            .details(details),
    );
    let change = CampaignTransition {
        workspace_id: ctx.workspace.clone(),
        id: c.row.id.clone(),
        from: CampaignStatus::sources(action)
            .iter()
            .map(|s| s.as_str())
            .collect(),
        to: to.as_str(),
        pause_reason: reason.map(|(r, _)| r.as_str()),
        start: None,
        cancel_pending: action == CampaignAction::Cancel,
        now,
    };
    // A cancel withdraws rows the dispatcher and webhooks write at the same
    // time; PostgreSQL may pick it as a deadlock's victim, which wrote nothing.
    let mut attempt = 1;
    loop {
        match state
            .store
            .transition_campaign(&change, Some(audit.clone()), &events)
            .await
        {
            Err(e) if e.is_deadlock() && attempt < 3 => attempt += 1,
            other => return Ok(other?),
        }
    }
}

/// Pause, resume or cancel, as a person asks.
pub async fn act(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    action: CampaignAction,
) -> Result<Campaign, ApiError> {
    let c = get_campaign(state, &ctx.workspace, id).await?;
    let reason =
        (action == CampaignAction::Pause).then_some((PauseReason::Manual, "paused by a member"));
    if !transition(state, ctx, &c, action, reason).await? {
        let now = get_campaign(state, &ctx.workspace, id).await?;
        let wanted = match action {
            CampaignAction::Pause => "paused",
            CampaignAction::Resume => "resumed",
            CampaignAction::Cancel => "cancelled",
            CampaignAction::Start => "started",
            CampaignAction::Begin => "begun",
        };
        return Err(state_problem(&now, wanted));
    }
    get_campaign(state, &ctx.workspace, id).await
}

/// Live counters of a campaign's recipients.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct CampaignCounters {
    pub recipients: i64,
    /// By outcome: `pending`, `skipped`, `cancelled`, `queued`, `sent`,
    /// `delivered`, `read`, `failed`, `replied`, `opted_out` (each recipient once).
    pub outcomes: BTreeMap<String, i64>,
    /// The provider has the message (sent, delivered, read, replied or opted out since).
    pub sent: i64,
    /// Skipped recipients by reason.
    pub skipped: BTreeMap<String, i64>,
    /// Failed recipients by the provider's error code.
    pub failed_codes: BTreeMap<String, i64>,
}

impl CampaignCounters {
    /// Recipients who opted out or blocked marketing since they were sent it.
    pub fn opted_out_or_blocked(&self) -> i64 {
        self.outcomes.get("opted_out").copied().unwrap_or(0)
            + self
                .failed_codes
                .get(&MARKETING_BLOCKED_CODE.to_string())
                .copied()
                .unwrap_or(0)
    }
}

/// Counts the campaign's recipients by outcome.
pub async fn counters(state: &AppState, c: &Campaign) -> Result<CampaignCounters, ApiError> {
    let category = template_category(state, c).await?;
    let rows = state
        .store
        .campaign_outcome_counts(&c.row.id, consent_column(&category))
        .await?;
    let mut out = CampaignCounters {
        outcomes: RecipientOutcome::ALL
            .iter()
            .map(|o| (o.as_str().to_owned(), 0))
            .collect(),
        ..Default::default()
    };
    for r in rows {
        let o = RecipientOutcome::of(
            &r.state,
            r.message_status.as_deref(),
            r.replied == 1,
            r.opted_out == 1,
        );
        out.recipients += r.n;
        *out.outcomes.entry(o.as_str().to_owned()).or_default() += r.n;
        if o.was_sent() {
            out.sent += r.n;
        }
        if let (RecipientOutcome::Skipped, Some(reason)) = (o, &r.skip_reason) {
            *out.skipped.entry(reason.clone()).or_default() += r.n;
        }
        if let (RecipientOutcome::Failed, Some(code)) = (o, r.error_code) {
            *out.failed_codes.entry(code.to_string()).or_default() += r.n;
        }
    }
    Ok(out)
}

pub(crate) async fn template_category(state: &AppState, c: &Campaign) -> Result<String, ApiError> {
    Ok(state
        .store
        .find_template(
            &c.row.workspace_id,
            &c.row.template_name,
            &c.row.template_language,
        )
        .await?
        .map(|t| t.category)
        .unwrap_or_else(|| "marketing".into()))
}

/// A campaign read with its counters, as the API shows it.
pub async fn with_counters(
    state: &AppState,
    workspace_id: &str,
    id: &str,
) -> Result<(Campaign, CampaignCounters), ApiError> {
    let row = state.store.get_campaign(workspace_id, id).await?;
    let c = open(row)?;
    let counts = counters(state, &c).await?;
    Ok((c, counts))
}
