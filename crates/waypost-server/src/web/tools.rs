//! Tools for admins: the shield (paste a message or link, see the verdict and
//! its reasons) and the audit log (filtered, with the chain verified on request).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use waypost_core::audit::chain_name;

use super::form::PageForm;
use super::page::{Chrome, Page, PageError, render};
use crate::auth::permission::act;
use crate::http::shield::{ScanRequest, record_usage};
use crate::shield::scan_observed;
use crate::state::AppState;

pub struct Finding {
    pub code: String,
    pub detail: String,
}

pub struct ShieldResult {
    pub label: String,
    pub score: String,
    pub reasons: Vec<Finding>,
    pub urls: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "shield.html")]
struct ShieldPage {
    chrome: Chrome,
    text: String,
    result: Option<ShieldResult>,
    error: Option<String>,
}

/// `GET /shield`.
pub async fn shield(page: Page<act::ShieldScan>) -> Response {
    render(
        StatusCode::OK,
        &ShieldPage {
            chrome: page.chrome,
            text: String::new(),
            result: None,
            error: None,
        },
    )
}

#[derive(Deserialize)]
pub struct ScanForm {
    text: String,
}

/// `POST /shield`: scans the pasted message (counted like an API scan).
pub async fn scan(
    State(state): State<AppState>,
    page: Page<act::ShieldScan>,
    PageForm(f): PageForm<ScanForm>,
) -> Result<Response, PageError> {
    let request = ScanRequest {
        text: Some(f.text.clone()),
        url: None,
        phone: None,
        recipient_region: None,
    };
    let item = match request.parse("") {
        Ok(item) => item,
        Err(e) => {
            return Ok(render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &ShieldPage {
                    chrome: page.chrome,
                    text: f.text,
                    result: None,
                    error: Some(format!(
                        "The message {}.",
                        e.message.trim_start_matches("text ")
                    )),
                },
            ));
        }
    };
    let shield = state.shield.clone();
    let input = item.input.clone();
    let verdict = tokio::task::spawn_blocking(move || scan_observed(&shield, &input))
        .await
        .map_err(|e| anyhow::anyhow!("shield scan failed: {e}"))?;
    record_usage(
        &state,
        page.workspace_id,
        &page.caller.actor(),
        &[(item, &verdict)],
        false,
    )
    .await?;
    let result = ShieldResult {
        label: verdict.label.as_str().to_owned(),
        score: format!("{:.0}%", verdict.score * 100.0),
        reasons: verdict
            .reasons
            .iter()
            .map(|r| Finding {
                code: r.code.to_owned(),
                detail: r.detail.clone(),
            })
            .collect(),
        urls: verdict
            .urls
            .iter()
            .map(|u| (u.host.clone(), format!("{:?}", u.verdict).to_lowercase()))
            .collect(),
    };
    Ok(render(
        StatusCode::OK,
        &ShieldPage {
            chrome: page.chrome,
            text: f.text,
            result: Some(result),
            error: None,
        },
    ))
}

pub struct AuditItem {
    pub seq: i64,
    pub when: String,
    pub action: String,
    pub actor: String,
    pub target: String,
    pub ip: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    action: String,
    events: Vec<AuditItem>,
    next: Option<i64>,
    /// The chain check, when asked for: (ok, text).
    verified: Option<(bool, String)>,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    action: Option<String>,
    after: Option<i64>,
    verify: Option<String>,
}

const AUDIT_PAGE: u32 = 100;

/// `GET /audit`: newest first is not the chain's order, so pages follow it
/// (oldest first) from a cursor; `verify=1` walks the whole chain.
pub async fn audit(
    State(state): State<AppState>,
    page: Page<act::AuditRead>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let action = q.action.unwrap_or_default().trim().to_owned();
    let filter = waypost_store::AuditFilter {
        chain: chain_name(Some(page.workspace_id)),
        after_seq: q.after.unwrap_or(0),
        actor_id: None,
        action: (!action.is_empty()).then(|| action.clone()),
        target_id: None,
        since: None,
        until: None,
        limit: AUDIT_PAGE,
    };
    let rows = state.store.search_audit_events(&filter).await?;
    let next = (rows.len() as u32 == AUDIT_PAGE)
        .then(|| rows.last().map(|e| e.seq))
        .flatten();
    let events = rows
        .into_iter()
        .map(|e| AuditItem {
            seq: e.seq,
            when: e.occurred_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            actor: match e.actor.id() {
                Some(id) => format!("{} {id}", e.actor.kind()),
                None => e.actor.kind().to_owned(),
            },
            target: match (&e.target_type, &e.target_id) {
                (Some(t), Some(id)) => format!("{t} {id}"),
                (Some(t), None) => t.clone(),
                _ => String::new(),
            },
            ip: e.ip.unwrap_or_default(),
            action: e.action,
        })
        .collect();
    let verified = match q.verify {
        Some(_) => {
            let report = crate::audit_chain::verify_chain_in_store(
                state.store.as_ref(),
                &filter.chain,
                &state.keys.audit_signing_key().verifying_key(),
            )
            .await?;
            Some(match report.problem {
                None => (
                    true,
                    format!(
                        "The chain is intact: {} events, {} signed checkpoints verified.",
                        report.events, report.checkpoints
                    ),
                ),
                Some(problem) => (false, format!("The chain is broken: {problem}")),
            })
        }
        None => None,
    };
    Ok(render(
        StatusCode::OK,
        &AuditPage {
            chrome: page.chrome,
            action,
            events,
            next,
            verified,
        },
    ))
}
