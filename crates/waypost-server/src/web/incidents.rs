//! The security incident register for operators: incidents with their
//! 72-hour notification clock (time left, overdue highlighted), recording a
//! new one, changing its status or severity, and closing it with the time
//! affected customers and authorities were notified. The rules are
//! `ops::incidents` and `ops::incident_changes`, as for the API.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;

use super::form::{Choice, choices};
use super::operator::{OperatorChrome, OperatorForm, OperatorPage};
use super::page::{PageError, render};
use crate::error::{ApiError, unprocessable};
use crate::ops::incident_changes;
use crate::ops::incidents::{
    self as op, ActiveStatus, CloseIncident, CreateIncident, IncidentQuery, IncidentView, Severity,
    UpdateIncident,
};
use crate::state::AppState;

/// How the notification clock of an incident stands, for display.
pub struct Clock {
    pub text: String,
    /// `ok`, `warn` (under 12 hours left) or `bad` (overdue or notified late).
    pub badge: &'static str,
}

/// `41 h 12 min left`, `overdue by 3 h 5 min`, or how notification went once closed.
pub fn clock(i: &IncidentView, now: DateTime<Utc>) -> Clock {
    if let Some(on_time) = i.notified_within_deadline {
        return if on_time {
            Clock {
                text: "notified in time".into(),
                badge: "ok",
            }
        } else {
            Clock {
                text: format!(
                    "notified {} late",
                    span(i.notified_at.unwrap_or(now) - i.notification_deadline)
                ),
                badge: "bad",
            }
        };
    }
    let left = i.notification_deadline - now;
    if left < chrono::Duration::zero() {
        Clock {
            text: format!("overdue by {}", span(-left)),
            badge: "bad",
        }
    } else {
        Clock {
            text: format!("{} left", span(left)),
            badge: if left < chrono::Duration::hours(12) {
                "warn"
            } else {
                "ok"
            },
        }
    }
}

fn span(d: chrono::Duration) -> String {
    let minutes = d.num_minutes().max(0);
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, m) => format!("{h} h {m} min"),
    }
}

pub fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A `datetime-local` value (no zone) read as UTC.
fn utc_input(field: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .map(|t| t.and_utc())
        .map_err(|_| {
            unprocessable(format!(
                "{field}: a date and time such as 2026-12-07T09:30 (UTC)"
            ))
        })
}

fn severity(s: &str) -> Result<Severity, ApiError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| unprocessable("Severity: one of low, medium, high, critical."))
}

fn active_status(s: &str) -> Result<ActiveStatus, ApiError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| unprocessable("Status: one of open, investigating, contained."))
}

/// Workspace ids separated by spaces, commas or lines.
fn workspace_list(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

const SEVERITIES: [(&str, &str); 4] = [
    ("low", "low"),
    ("medium", "medium"),
    ("high", "high"),
    ("critical", "critical"),
];
const ACTIVE: [(&str, &str); 3] = [
    ("open", "open"),
    ("investigating", "investigating"),
    ("contained", "contained"),
];
const FILTERS: [(&str, &str); 5] = [
    ("", "All"),
    ("open", "open"),
    ("investigating", "investigating"),
    ("contained", "contained"),
    ("closed", "closed"),
];

pub struct Row {
    pub i: IncidentView,
    pub clock: Clock,
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct IncidentsPage {
    chrome: OperatorChrome,
    rows: Vec<Row>,
    status: String,
    filters: Vec<Choice>,
    severities: Vec<Choice>,
    next: Option<String>,
    form: NewIncidentForm,
    now_input: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    after: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct NewIncidentForm {
    #[serde(default)]
    detected_at: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    affected_workspaces: String,
}

async fn list_page(
    state: &AppState,
    page: OperatorPage,
    q: ListQuery,
    status: StatusCode,
    form: NewIncidentForm,
    error: Option<String>,
) -> Result<Response, PageError> {
    let filter = Some(q.status.clone()).filter(|s| !s.is_empty());
    let list = op::list(
        state,
        IncidentQuery {
            status: filter,
            after: q.after,
            limit: Some(50),
        },
    )
    .await?;
    let now = state.clock.now();
    let mut rows: Vec<Row> = list
        .data
        .into_iter()
        .map(|i| Row {
            clock: clock(&i, now),
            i,
        })
        .collect();
    // Open clocks first, the nearest deadline on top; closed ones after.
    rows.sort_by_key(|r| (r.i.status == "closed", r.i.notification_deadline));
    Ok(render(
        status,
        &IncidentsPage {
            chrome: page.chrome,
            rows,
            filters: choices(&FILTERS, &q.status),
            severities: choices(
                &SEVERITIES,
                if form.severity.is_empty() {
                    "medium"
                } else {
                    &form.severity
                },
            ),
            status: q.status,
            next: list.next_cursor,
            form,
            now_input: now.format("%Y-%m-%dT%H:%M").to_string(),
            error,
        },
    ))
}

/// `GET /operator/incidents`.
pub async fn index(
    State(state): State<AppState>,
    page: OperatorPage,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    list_page(
        &state,
        page,
        q,
        StatusCode::OK,
        NewIncidentForm::default(),
        None,
    )
    .await
}

/// `POST /operator/incidents`: records an incident, then opens it.
pub async fn create(
    State(state): State<AppState>,
    page: OperatorPage,
    OperatorForm(f): OperatorForm<NewIncidentForm>,
) -> Result<Response, PageError> {
    let request = match (
        utc_input("Detected at", &f.detected_at),
        severity(&f.severity),
    ) {
        (Ok(detected_at), Ok(severity)) => Ok(CreateIncident {
            detected_at,
            severity,
            description: f.description.clone(),
            affected_workspaces: workspace_list(&f.affected_workspaces),
            status: None,
        }),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    let result = match request {
        Ok(r) => op::create(&state, &page.origin, &page.operator, r).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(i) => Ok(Redirect::to(&format!("/operator/incidents/{}", i.id)).into_response()),
        Err(ApiError::Problem(p)) if p.status == 422 => {
            let (status, detail) = (p.status_code(), p.detail.clone());
            list_page(&state, page, ListQuery::default(), status, f, Some(detail)).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage {
    chrome: OperatorChrome,
    statuses: Vec<Choice>,
    severities: Vec<Choice>,
    i: IncidentView,
    clock: Clock,
    now_input: String,
    notice: Option<String>,
    error: Option<String>,
}

async fn show_page(
    state: &AppState,
    page: OperatorPage,
    id: &str,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let i = op::get(state, id).await?;
    let now = state.clock.now();
    Ok(render(
        status,
        &IncidentPage {
            chrome: page.chrome,
            clock: clock(&i, now),
            statuses: choices(&ACTIVE, &i.status),
            severities: choices(&SEVERITIES, &i.severity),
            i,
            now_input: now.format("%Y-%m-%dT%H:%M").to_string(),
            notice,
            error,
        },
    ))
}

/// `GET /operator/incidents/{id}`.
pub async fn show(
    State(state): State<AppState>,
    page: OperatorPage,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    show_page(&state, page, &id, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
pub struct ChangeForm {
    status: String,
    severity: String,
}

/// `POST /operator/incidents/{id}`: changes status and severity.
pub async fn change(
    State(state): State<AppState>,
    page: OperatorPage,
    Path(id): Path<String>,
    OperatorForm(f): OperatorForm<ChangeForm>,
) -> Result<Response, PageError> {
    let result = match (active_status(&f.status), severity(&f.severity)) {
        (Ok(status), Ok(severity)) => {
            let req = UpdateIncident {
                severity: Some(severity),
                status: Some(status),
                description: None,
                affected_workspaces: None,
            };
            incident_changes::update(&state, &page.origin, &page.operator, &id, req)
                .await
                .map(|_| ())
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    answer(&state, page, &id, result, "Incident updated.").await
}

#[derive(Deserialize)]
pub struct CloseForm {
    #[serde(default)]
    notified_at: String,
    #[serde(default)]
    resolution: String,
}

/// `POST /operator/incidents/{id}/close`: records the notification and closes.
pub async fn close(
    State(state): State<AppState>,
    page: OperatorPage,
    Path(id): Path<String>,
    OperatorForm(f): OperatorForm<CloseForm>,
) -> Result<Response, PageError> {
    let result = match utc_input("Notified at", &f.notified_at) {
        Ok(notified_at) => {
            let req = CloseIncident {
                notified_at: Some(notified_at),
                resolution: Some(f.resolution.trim().to_owned()).filter(|r| !r.is_empty()),
            };
            incident_changes::close(&state, &page.origin, &page.operator, &id, req)
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    };
    answer(&state, page, &id, result, "Incident closed.").await
}

/// The incident again, with a notice or the refusal the operator can fix.
async fn answer(
    state: &AppState,
    page: OperatorPage,
    id: &str,
    result: Result<(), ApiError>,
    done: &str,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => show_page(state, page, id, StatusCode::OK, Some(done.into()), None).await,
        Err(ApiError::Problem(p)) if matches!(p.status, 409 | 422) => {
            let (status, detail) = (p.status_code(), p.detail.clone());
            show_page(state, page, id, status, None, Some(detail)).await
        }
        Err(e) => Err(e.into()),
    }
}
