//! What became of a campaign's recipients, one by one: a page of outcomes
//! (the dashboard's table), the CSV export streamed page by page (the API and
//! the dashboard serve the same bytes), and how far each campaign of a list
//! has got (recipients by state, read for a whole page of campaigns at once).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use waypost_core::campaign::RecipientOutcome;
use waypost_store::campaign_reports::{RecipientOutcomeRow, consent_column};

use super::campaign_runs::template_category;
use super::campaigns::{Campaign, get_campaign, list_campaigns};
use crate::error::ApiError;
use crate::state::AppState;

/// Rows per page of the export stream.
const EXPORT_PAGE: u32 = 2000;

/// One recipient and what became of it.
#[derive(Debug, Clone)]
pub struct OutcomeLine {
    /// The recipient's place in the campaign, from 1 (the page cursor).
    pub seq: i64,
    pub contact_id: String,
    pub outcome: RecipientOutcome,
    /// Why it was skipped (`no_consent`, or `refused:<problem type>` at send time).
    pub skip_reason: Option<String>,
    /// The provider's error code of a failed send.
    pub error_code: Option<i64>,
    pub message_id: Option<String>,
    pub queued_at: Option<DateTime<Utc>>,
}

impl From<RecipientOutcomeRow> for OutcomeLine {
    fn from(r: RecipientOutcomeRow) -> Self {
        let outcome = RecipientOutcome::of(
            &r.state,
            r.message_status.as_deref(),
            r.replied == 1,
            r.opted_out == 1,
        );
        let skip_reason = match (r.skip_reason, r.skip_detail) {
            (Some(reason), Some(detail)) => Some(format!("{reason}:{detail}")),
            (reason, _) => reason,
        };
        Self {
            seq: r.seq,
            contact_id: r.contact_id,
            outcome,
            skip_reason,
            error_code: r.error_code,
            message_id: r.message_id,
            queued_at: r.queued_at,
        }
    }
}

/// Recipients after `after` (a `seq`), in order, and the cursor of the next page.
pub async fn outcomes(
    state: &AppState,
    workspace_id: &str,
    id: &str,
    after: Option<i64>,
    limit: u32,
) -> Result<(Vec<OutcomeLine>, Option<i64>), ApiError> {
    let c = get_campaign(state, workspace_id, id).await?;
    let category = template_category(state, &c).await?;
    let rows = state
        .store
        .campaign_outcomes(id, consent_column(&category), after.unwrap_or(0), limit)
        .await?;
    let next = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    Ok((rows.into_iter().map(OutcomeLine::from).collect(), next))
}

/// One page of the outcome export as CSV lines (the header with the first
/// page), and the cursor of the next page.
pub async fn export_page(
    state: &AppState,
    workspace_id: &str,
    id: &str,
    after: Option<i64>,
    limit: u32,
) -> Result<(String, Option<i64>), ApiError> {
    let (lines, next) = outcomes(state, workspace_id, id, after, limit).await?;
    let mut out = String::new();
    if after.is_none() {
        out.push_str("seq,contact_id,outcome,skip_reason,error_code,message_id,queued_at\n");
    }
    for l in &lines {
        out.push_str(&csv_line(l));
    }
    Ok((out, next))
}

fn csv_line(l: &OutcomeLine) -> String {
    // Every field is an id, a fixed word, a number or a time: nothing to quote.
    format!(
        "{},{},{},{},{},{},{}\n",
        l.seq,
        l.contact_id,
        l.outcome.as_str(),
        l.skip_reason.as_deref().unwrap_or(""),
        l.error_code.map(|c| c.to_string()).unwrap_or_default(),
        l.message_id.as_deref().unwrap_or(""),
        l.queued_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
    )
}

/// Every recipient's outcome as CSV, page by page. The first page is read
/// before this returns, so an unknown campaign is an error rather than a
/// broken download.
pub async fn export_csv(
    state: &AppState,
    workspace_id: &str,
    id: &str,
) -> Result<impl Stream<Item = Result<String, std::io::Error>> + Send + 'static, ApiError> {
    let (first, next) = export_page(state, workspace_id, id, None, EXPORT_PAGE).await?;
    let (state, ws, id) = (state.clone(), workspace_id.to_owned(), id.to_owned());
    let rest = futures_util::stream::unfold(next, move |after| {
        let (state, ws, id) = (state.clone(), ws.clone(), id.clone());
        async move {
            let after = after?;
            match export_page(&state, &ws, &id, Some(after), EXPORT_PAGE).await {
                Ok((page, next)) => Some((Ok(page), next)),
                Err(e) => {
                    tracing::warn!(error = ?e, "campaign export stopped midway");
                    Some((Err(std::io::Error::other("export failed")), None))
                }
            }
        }
    });
    Ok(futures_util::stream::once(async move { Ok(first) }).chain(rest))
}

/// How far a campaign has got: its recipients by state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Fed to the outbox (whatever the provider made of them since).
    pub queued: i64,
    pub pending: i64,
    pub skipped: i64,
    /// Never fed: the campaign was cancelled first.
    pub cancelled: i64,
}

impl Progress {
    /// Recipients the campaign meant to send to (all but the skipped).
    pub fn eligible(&self) -> i64 {
        self.queued + self.pending + self.cancelled
    }
}

/// A page of campaigns with each one's progress, and the next cursor.
pub async fn list_with_progress(
    state: &AppState,
    workspace_id: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<(Campaign, Progress)>, Option<String>), ApiError> {
    let (campaigns, next) = list_campaigns(state, workspace_id, after, limit).await?;
    let mut by_campaign: HashMap<String, Progress> = HashMap::new();
    for c in state
        .store
        .campaign_state_counts(workspace_id, after, limit)
        .await?
    {
        let p = by_campaign.entry(c.campaign_id).or_default();
        match c.state.as_str() {
            "queued" => p.queued += c.n,
            "pending" => p.pending += c.n,
            "skipped" => p.skipped += c.n,
            "cancelled" => p.cancelled += c.n,
            other => {
                return Err(ApiError::Internal(anyhow::anyhow!(
                    "campaign_recipients.state holds an unknown value: {other}"
                )));
            }
        }
    }
    let rows = campaigns
        .into_iter()
        .map(|c| {
            let p = by_campaign.remove(&c.row.id).unwrap_or_default();
            (c, p)
        })
        .collect();
    Ok((rows, next))
}
