//! One campaign's page: a draft shows its pre-flight (who would be sent the
//! template, who is skipped and why) and a start confirmed against it; a
//! started one shows its status, why it paused, counters that refresh while
//! it sends (htmx polls the live region, and less often the recipients
//! table), pause / resume / cancel buttons, each recipient's outcome a page
//! at a time and the CSV download. The same
//! operations as `/v1/campaigns` (`ops::campaign_runs`, `ops::campaign_outcomes`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use waypost_core::auth::Action;
use waypost_core::campaign::{CampaignAction, CampaignStatus, PauseReason};

use super::campaigns::{parse_start_at, status_badge};
use super::form::{Button, PageForm};
use super::page::{Chrome, Page, PageError, render};
use crate::auth::permission::act;
use crate::error::ApiError;
use crate::http::campaigns::csv_download;
use crate::ops::campaign_outcomes::{self, OutcomeLine};
use crate::ops::campaign_runs::{self, StartCampaign};
use crate::ops::campaigns::{self, Campaign, Preflight};
use crate::ops::segments;
use crate::state::AppState;

/// Recipients per page of the outcomes table.
const OUTCOMES_PAGE: u32 = 50;
/// Seconds between refreshes of the live region while the campaign can change.
const POLL_SECS: u32 = 2;

/// The part of the page that refreshes: status, counters and actions.
pub struct Live {
    pub id: String,
    pub status: String,
    pub badge: &'static str,
    pub pause_reason: Option<&'static str>,
    /// Whether the region asks for itself again (not once the campaign is over or a draft).
    pub polling: bool,
    pub poll_secs: u32,
    pub recipients: i64,
    pub sent: i64,
    /// (outcome, count) in the order of `RecipientOutcome::ALL`.
    pub outcomes: Vec<(String, i64)>,
    pub skipped: Vec<(String, i64)>,
    pub failed_codes: Vec<(String, i64)>,
    pub can_pause: bool,
    pub can_resume: bool,
    pub can_cancel: bool,
}

async fn live_of(state: &AppState, c: &Campaign, may_manage: bool) -> Result<Live, ApiError> {
    let counters = campaign_runs::counters(state, c).await?;
    let status = CampaignStatus::parse(&c.row.status);
    let allowed =
        |action| may_manage && status.is_some_and(|s| CampaignStatus::sources(action).contains(&s));
    let outcomes = waypost_core::campaign::RecipientOutcome::ALL
        .iter()
        .map(|o| {
            let n = counters.outcomes.get(o.as_str()).copied().unwrap_or(0);
            (o.as_str().replace('_', " "), n)
        })
        .collect();
    Ok(Live {
        id: c.row.id.clone(),
        badge: status_badge(&c.row.status),
        status: c.row.status.clone(),
        pause_reason: c
            .row
            .pause_reason
            .as_deref()
            .filter(|_| status == Some(CampaignStatus::Paused))
            .and_then(PauseReason::parse)
            .map(PauseReason::description),
        polling: matches!(
            status,
            Some(CampaignStatus::Scheduled | CampaignStatus::Running | CampaignStatus::Paused)
        ),
        poll_secs: POLL_SECS,
        recipients: counters.recipients,
        sent: counters.sent,
        outcomes,
        skipped: counters.skipped.into_iter().collect(),
        failed_codes: counters.failed_codes.into_iter().collect(),
        can_pause: allowed(CampaignAction::Pause),
        can_resume: allowed(CampaignAction::Resume),
        can_cancel: allowed(CampaignAction::Cancel),
    })
}

/// The campaign as the page describes it.
pub struct Summary {
    pub id: String,
    pub name: String,
    pub template: String,
    pub segment: String,
    pub created: String,
    pub start_at: Option<String>,
    pub started: Option<String>,
    pub finished: Option<String>,
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[derive(Template)]
#[template(path = "campaign.html")]
struct CampaignPage {
    chrome: Chrome,
    csrf: String,
    c: Summary,
    live: Live,
    preflight: Option<Preflight>,
    /// What the start form's time field holds.
    start_at: String,
    outcomes: Vec<OutcomeLine>,
    next: Option<i64>,
    /// The page's cursor, for the table's own refresh.
    after: Option<i64>,
    paged: bool,
    can_open_contacts: bool,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Default, Deserialize)]
pub struct ShowQuery {
    after: Option<i64>,
    /// The start time chosen on the new-campaign form.
    start_at: Option<String>,
    /// The action that just succeeded.
    done: Option<String>,
}

async fn campaign_page(
    state: &AppState,
    page: Page<act::CampaignsManage>,
    id: &str,
    status: StatusCode,
    q: ShowQuery,
    error: Option<String>,
) -> Result<Response, PageError> {
    let ws = page.workspace_id.to_string();
    let c = campaigns::get_campaign(state, &ws, id).await?;
    let live = live_of(state, &c, page.chrome.may(Action::CampaignsManage)).await?;
    let is_draft = CampaignStatus::parse(&c.row.status) == Some(CampaignStatus::Draft);
    let preflight = if is_draft {
        Some(campaigns::preflight(state, &ws, id).await?)
    } else {
        None
    };
    let segment = match segments::get_segment(state, &ws, &c.row.segment_id).await {
        Ok(s) => s.row.name,
        Err(_) => format!("{} (deleted)", c.row.segment_id),
    };
    let after = q.after.filter(|a| *a > 0);
    let (outcomes, next) = if is_draft {
        (Vec::new(), None)
    } else {
        campaign_outcomes::outcomes(state, &ws, id, after, OUTCOMES_PAGE).await?
    };
    let notice = q.done.as_deref().and_then(|d| match d {
        "started" => Some("Started: recipients are fed to the outbox at the number's pace."),
        "scheduled" => Some("Scheduled: sending begins at the start time."),
        "paused" => Some("Paused: nothing more is fed; messages already queued still go."),
        "resumed" => Some("Resumed where it stopped."),
        "cancelled" => Some("Cancelled: recipients not yet queued will not be sent it."),
        _ => None,
    });
    let r = &c.row;
    let summary = Summary {
        id: r.id.clone(),
        name: r.name.clone(),
        template: format!("{} ({})", r.template_name, r.template_language),
        segment,
        created: when(r.created_at),
        start_at: r.start_at.map(when),
        started: r.started_at.map(when),
        finished: r.finished_at.map(when),
    };
    Ok(render(
        status,
        &CampaignPage {
            csrf: page.chrome.csrf.clone(),
            can_open_contacts: page.chrome.may(Action::ContactsRead),
            chrome: page.chrome,
            c: summary,
            live,
            preflight,
            start_at: q.start_at.unwrap_or_default(),
            outcomes,
            next,
            after,
            paged: after.is_some(),
            notice: notice.map(str::to_owned),
            error,
        },
    ))
}

/// `GET /campaigns/{id}`.
pub async fn show(
    State(state): State<AppState>,
    page: Page<act::CampaignsManage>,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, PageError> {
    campaign_page(&state, page, &id, StatusCode::OK, q, None).await
}

#[derive(Template)]
#[template(path = "campaign_live.html")]
struct LivePartial {
    csrf: String,
    live: Live,
}

/// `GET /campaigns/{id}/live`: the live region alone, for htmx's polling.
pub async fn live(
    State(state): State<AppState>,
    page: Page<act::CampaignsManage>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let c = campaigns::get_campaign(&state, &page.workspace_id.to_string(), &id).await?;
    let live = live_of(&state, &c, page.chrome.may(Action::CampaignsManage)).await?;
    Ok(render(
        StatusCode::OK,
        &LivePartial {
            csrf: page.chrome.csrf,
            live,
        },
    ))
}

/// The page again with a refusal (the API's status and detail).
async fn refused(
    state: &AppState,
    page: Page<act::CampaignsManage>,
    id: &str,
    e: ApiError,
) -> Result<Response, PageError> {
    let status = match &e {
        ApiError::Problem(p) if p.status == 404 => return Err(PageError(e)),
        ApiError::Problem(p) => p.status_code(),
        ApiError::Internal(_) => return Err(PageError(e)),
    };
    let detail = PageError(e).detail();
    campaign_page(state, page, id, status, ShowQuery::default(), Some(detail)).await
}

#[derive(Deserialize)]
pub struct StartForm {
    /// The pre-flight's eligible count the member saw.
    confirm_eligible: String,
    #[serde(default)]
    start_at: String,
    /// Each recipient's local hours to send within (both or neither).
    #[serde(default)]
    recipient_from: String,
    #[serde(default)]
    recipient_to: String,
    /// Hours of `time_zone` to send nothing in (both or neither).
    #[serde(default)]
    quiet_from: String,
    #[serde(default)]
    quiet_to: String,
    #[serde(default)]
    time_zone: String,
}

/// Two hour fields: both empty is no window; one alone, or not a number, is refused.
fn hours(from: &str, to: &str, what: &str) -> Result<Option<(u32, u32)>, ApiError> {
    match (from.trim(), to.trim()) {
        ("", "") => Ok(None),
        (f, t) => match (f.parse::<u32>(), t.parse::<u32>()) {
            (Ok(f), Ok(t)) => Ok(Some((f, t))),
            _ => Err(crate::error::unprocessable(format!(
                "Give both hours of the {what}, as whole hours (0 to 24), or neither."
            ))),
        },
    }
}

impl StartForm {
    fn parse(&self) -> Result<StartCampaign, ApiError> {
        let confirm = self.confirm_eligible.trim().parse::<i64>().map_err(|_| {
            crate::error::unprocessable("The confirmation is missing; reload the page.")
        })?;
        let zone = self.time_zone.trim();
        StartCampaign::parse(
            confirm,
            parse_start_at(&self.start_at)?,
            hours(
                &self.recipient_from,
                &self.recipient_to,
                "recipients' hours",
            )?,
            hours(&self.quiet_from, &self.quiet_to, "quiet hours")?,
            (!zone.is_empty()).then(|| zone.to_owned()),
        )
    }
}

/// `POST /campaigns/{id}/start`: starts the draft, confirmed against the pre-flight shown.
pub async fn start(
    State(state): State<AppState>,
    page: Page<act::CampaignsManage>,
    Path(id): Path<String>,
    PageForm(f): PageForm<StartForm>,
) -> Result<Response, PageError> {
    let outcome = match f.parse() {
        Ok(input) => campaign_runs::start(&state, &page.ctx(), &id, input).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(c) => {
            let done = if c.row.status == CampaignStatus::Scheduled.as_str() {
                "scheduled"
            } else {
                "started"
            };
            Ok(Redirect::to(&format!("/campaigns/{id}?done={done}")).into_response())
        }
        Err(e) => refused(&state, page, &id, e).await,
    }
}

async fn act_on(
    state: AppState,
    page: Page<act::CampaignsManage>,
    id: String,
    action: CampaignAction,
    done: &str,
) -> Result<Response, PageError> {
    match campaign_runs::act(&state, &page.ctx(), &id, action).await {
        Ok(_) => Ok(Redirect::to(&format!("/campaigns/{id}?done={done}")).into_response()),
        Err(e) => refused(&state, page, &id, e).await,
    }
}

/// `POST /campaigns/{id}/pause`.
pub async fn pause(
    State(state): State<AppState>,
    page: Page<act::CampaignsManage>,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    act_on(state, page, id, CampaignAction::Pause, "paused").await
}

/// `POST /campaigns/{id}/resume`.
pub async fn resume(
    State(state): State<AppState>,
    page: Page<act::CampaignsManage>,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    act_on(state, page, id, CampaignAction::Resume, "resumed").await
}

/// `POST /campaigns/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    page: Page<act::CampaignsManage>,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    act_on(state, page, id, CampaignAction::Cancel, "cancelled").await
}

/// `GET /campaigns/{id}/outcomes.csv`: the same export as the API's.
pub async fn export(
    State(state): State<AppState>,
    page: Page<act::CampaignsManage>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let csv = campaign_outcomes::export_csv(&state, &page.workspace_id.to_string(), &id).await?;
    Ok(csv_download(csv)?)
}
