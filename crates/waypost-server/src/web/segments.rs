//! Segments: saved audience filters with their live counts ("12,408
//! contacts, 11,930 with marketing consent"), created from a form with the
//! contacts API's filter fields, and deleted. Rules in `ops::segments`.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use waypost_core::audience::ConsentFilter;
use waypost_core::auth::Action;

use super::form::{Button, Choice, PageForm, choices};
use super::page::{Chrome, Page, PageError, render};
use crate::auth::permission::act;
use crate::error::{ApiError, unprocessable};
use crate::ops::audiences::{AudienceFilter, ConsentFilters};
use crate::ops::segments::{self as op, NewSegment};
use crate::state::AppState;

/// Segments counted on one page: each count is one query.
const PAGE_SIZE: u32 = 20;

/// `12,408`.
pub fn thousands(n: &i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if *n < 0 { format!("-{out}") } else { out }
}

/// `1 contact`, `12,408 contacts`.
pub fn contacts(n: &i64) -> String {
    if *n == 1 {
        "1 contact".into()
    } else {
        format!("{} contacts", thousands(n))
    }
}

pub struct SegmentRow {
    pub id: String,
    pub name: String,
    pub contacts: i64,
    pub marketing: i64,
    /// The filter in words (`tags: vip · consent.marketing: opted_in`).
    pub conditions: String,
}

fn describe(f: &AudienceFilter) -> String {
    let mut parts = Vec::new();
    if !f.tags.is_empty() {
        parts.push(format!("tags: {}", f.tags.join(", ")));
    }
    for (k, v) in &f.attributes {
        let v = v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string());
        parts.push(format!("{k} = {v}"));
    }
    if let Some(l) = &f.language {
        parts.push(format!("language: {l}"));
    }
    for (name, c) in [
        ("marketing", f.consent.marketing),
        ("utility", f.consent.utility),
        ("authentication", f.consent.authentication),
    ] {
        if let Some(c) = c {
            let c = serde_json::to_value(c)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            parts.push(format!("{name} consent: {}", c.replace('_', " ")));
        }
    }
    for (name, t) in [
        ("last message after", f.last_inbound_after),
        ("last message before", f.last_inbound_before),
        ("added after", f.created_after),
        ("added before", f.created_before),
    ] {
        if let Some(t) = t {
            parts.push(format!("{name} {}", t.format("%Y-%m-%d")));
        }
    }
    if parts.is_empty() {
        "every contact".into()
    } else {
        parts.join(" · ")
    }
}

/// The filter form, as typed (shown again when refused).
#[derive(Deserialize, Default)]
pub struct SegmentForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    attributes: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    consent_marketing: String,
    #[serde(default)]
    consent_utility: String,
    #[serde(default)]
    consent_authentication: String,
    #[serde(default)]
    last_inbound_after: String,
    #[serde(default)]
    last_inbound_before: String,
    #[serde(default)]
    created_after: String,
    #[serde(default)]
    created_before: String,
}

fn consent(field: &str, s: &str) -> Result<Option<ConsentFilter>, ApiError> {
    match s.trim() {
        "" => Ok(None),
        s => s
            .parse()
            .map(Some)
            .map_err(|_| unprocessable(format!("{field}: any, opted in, opted out or unknown"))),
    }
}

/// A `date` input as the start of that day in UTC.
fn day(field: &str, s: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match s.trim() {
        "" => Ok(None),
        s => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(|d| Some(d.and_time(chrono::NaiveTime::MIN).and_utc()))
            .map_err(|_| unprocessable(format!("{field}: a date such as 2026-12-31"))),
    }
}

impl SegmentForm {
    /// The same filter the contacts API takes; values are checked by `ops`.
    fn filter(&self) -> Result<AudienceFilter, ApiError> {
        let tags = self
            .tags
            .split([',', ';'])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        let mut attributes = BTreeMap::new();
        for line in self
            .attributes
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            let (k, v) = line.split_once('=').ok_or_else(|| {
                unprocessable("Custom fields: one `field = value` per line, e.g. city = Berlin")
            })?;
            attributes.insert(
                k.trim().to_owned(),
                serde_json::Value::String(v.trim().to_owned()),
            );
        }
        Ok(AudienceFilter {
            tags,
            attributes,
            language: Some(self.language.trim().to_owned()).filter(|l| !l.is_empty()),
            consent: ConsentFilters {
                marketing: consent("Marketing consent", &self.consent_marketing)?,
                utility: consent("Utility consent", &self.consent_utility)?,
                authentication: consent("Authentication consent", &self.consent_authentication)?,
            },
            last_inbound_after: day("Last message after", &self.last_inbound_after)?,
            last_inbound_before: day("Last message before", &self.last_inbound_before)?,
            created_after: day("Added after", &self.created_after)?,
            created_before: day("Added before", &self.created_before)?,
        })
    }
}

/// One consent category's select on the form.
pub struct ConsentSelect {
    pub field: &'static str,
    pub label: &'static str,
    pub options: Vec<Choice>,
}

const CONSENT_OPTIONS: [(&str, &str); 4] = [
    ("", "any"),
    ("opted_in", "opted in"),
    ("opted_out", "opted out"),
    ("unknown", "never recorded"),
];

fn consent_selects(f: &SegmentForm) -> Vec<ConsentSelect> {
    [
        ("consent_marketing", "Marketing", &f.consent_marketing),
        ("consent_utility", "Utility", &f.consent_utility),
        (
            "consent_authentication",
            "Authentication",
            &f.consent_authentication,
        ),
    ]
    .into_iter()
    .map(|(field, label, current)| ConsentSelect {
        field,
        label,
        options: choices(&CONSENT_OPTIONS, current),
    })
    .collect()
}

#[derive(Template)]
#[template(path = "segments.html")]
struct SegmentsPage {
    chrome: Chrome,
    consents: Vec<ConsentSelect>,
    rows: Vec<SegmentRow>,
    next: Option<String>,
    can_write: bool,
    form: SegmentForm,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    after: Option<String>,
    created: Option<String>,
    deleted: Option<String>,
}

async fn list_page<A>(
    state: &AppState,
    page: Page<A>,
    q: ListQuery,
    status: StatusCode,
    form: SegmentForm,
    error: Option<String>,
) -> Result<Response, PageError> {
    let ws = page.workspace_id.to_string();
    let (segments, next) = op::list_segments(state, &ws, q.after.as_deref(), PAGE_SIZE).await?;
    let mut rows = Vec::with_capacity(segments.len());
    let mut notice = q.deleted.map(|_| "Segment deleted.".to_owned());
    for s in segments {
        let counts = op::count_segment(state, &ws, &s).await?;
        let row = SegmentRow {
            conditions: describe(&s.filter),
            id: s.row.id,
            name: s.row.name,
            contacts: counts.contacts,
            marketing: counts.marketing_consent,
        };
        if q.created.as_deref() == Some(row.id.as_str()) {
            notice = Some(format!(
                "Saved “{}”: {}, {} with marketing consent.",
                row.name,
                contacts(&row.contacts),
                thousands(&row.marketing)
            ));
        }
        rows.push(row);
    }
    Ok(render(
        status,
        &SegmentsPage {
            can_write: page.chrome.may(Action::ContactsWrite),
            consents: consent_selects(&form),
            chrome: page.chrome,
            rows,
            next,
            form,
            notice,
            error,
        },
    ))
}

/// `GET /audiences/segments`.
pub async fn index(
    State(state): State<AppState>,
    page: Page<act::ContactsRead>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    list_page(
        &state,
        page,
        q,
        StatusCode::OK,
        SegmentForm::default(),
        None,
    )
    .await
}

/// `POST /audiences/segments`: saves the segment, then lists it with its count.
pub async fn create(
    State(state): State<AppState>,
    page: Page<act::ContactsWrite>,
    PageForm(f): PageForm<SegmentForm>,
) -> Result<Response, PageError> {
    let result = match f
        .filter()
        .and_then(|filter| NewSegment::parse(&f.name, filter))
    {
        Ok(input) => op::create_segment(&state, &page.ctx(), input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(s) => {
            Ok(Redirect::to(&format!("/audiences/segments?created={}", s.row.id)).into_response())
        }
        Err(ApiError::Problem(p)) if matches!(p.status, 409 | 422) => {
            let (status, detail) = (p.status_code(), p.detail.clone());
            list_page(&state, page, ListQuery::default(), status, f, Some(detail)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /audiences/segments/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    page: Page<act::ContactsWrite>,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    op::delete_segment(&state, &page.ctx(), &id).await?;
    Ok(Redirect::to("/audiences/segments?deleted=1").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(thousands(&0), "0");
        assert_eq!(thousands(&999), "999");
        assert_eq!(thousands(&12_408), "12,408");
        assert_eq!(thousands(&1_234_567), "1,234,567");
        assert_eq!(contacts(&1), "1 contact");
        assert_eq!(contacts(&12_408), "12,408 contacts");
    }

    #[test]
    fn the_form_becomes_the_apis_filter() {
        let f = SegmentForm {
            tags: "vip, berlin".into(),
            attributes: "city = Berlin\n\n".into(),
            consent_marketing: "opted_in".into(),
            created_after: "2026-01-31".into(),
            ..Default::default()
        };
        let filter = f.filter().unwrap();
        assert_eq!(filter.tags, ["vip", "berlin"]);
        assert_eq!(filter.attributes["city"], "Berlin");
        assert_eq!(filter.consent.marketing, Some(ConsentFilter::OptedIn));
        assert_eq!(
            filter.created_after.unwrap().to_rfc3339(),
            "2026-01-31T00:00:00+00:00"
        );
        assert!(
            SegmentForm {
                attributes: "city Berlin".into(),
                ..Default::default()
            }
            .filter()
            .is_err()
        );
        assert_eq!(
            describe(&filter),
            "tags: vip, berlin · city = Berlin · marketing consent: opted in · added after 2026-01-31"
        );
    }
}
