//! Campaigns: the workspace's campaigns with how far each has got, and the
//! form that saves a new one as a draft — an approved template (which fixes
//! the channel), a segment, where each of the template's parameters comes
//! from, and an optional start time carried to the campaign's page, where
//! the pre-flight is confirmed. Every refusal is the API's own message
//! (`ops::campaigns`); every route needs `campaigns:manage`.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use waypost_core::campaign::{ContactField, ParameterSource};
use waypost_core::template::parameter_counts;
use waypost_store::templates::TemplateFilter;

use super::form::PageForm;
use super::page::{Chrome, Page, PageError, render, short_time};
use crate::auth::permission::act;
use crate::error::{ApiError, unprocessable};
use crate::ops::campaign_outcomes;
use crate::ops::campaigns::{self, CampaignParameters, NewCampaign};
use crate::ops::{audiences, channels, segments};
use crate::state::AppState;

/// Campaigns per page of the list.
const LIST_PAGE: u32 = 50;
/// Segments and templates offered by the form.
const CHOICES: u32 = 200;

pub struct CampaignItem {
    pub id: String,
    pub name: String,
    pub status: String,
    pub badge: &'static str,
    pub created: String,
    pub queued: i64,
    pub pending: i64,
    pub skipped: i64,
    /// Recipients the campaign means to send to; 0 for a draft.
    pub eligible: i64,
}

/// The CSS class of a campaign status's badge.
pub fn status_badge(status: &str) -> &'static str {
    match status {
        "running" | "completed" => "ok",
        "paused" | "scheduled" => "warn",
        "cancelled" => "bad",
        _ => "",
    }
}

#[derive(Template)]
#[template(path = "campaigns.html")]
struct CampaignsPage {
    chrome: Chrome,
    campaigns: Vec<CampaignItem>,
    next: Option<String>,
    paged: bool,
}

#[derive(Deserialize)]
pub struct ListQuery {
    after: Option<String>,
}

/// `GET /campaigns`.
pub async fn index(
    State(state): State<AppState>,
    page: Page<act::CampaignsManage>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let ws = page.workspace_id.to_string();
    let after = q.after.as_deref().filter(|a| !a.is_empty());
    let (rows, next) = campaign_outcomes::list_with_progress(&state, &ws, after, LIST_PAGE).await?;
    let now = state.clock.now();
    let campaigns = rows
        .into_iter()
        .map(|(c, p)| CampaignItem {
            badge: status_badge(&c.row.status),
            created: short_time(c.row.created_at, now),
            id: c.row.id,
            name: c.row.name,
            status: c.row.status,
            eligible: p.eligible(),
            queued: p.queued,
            pending: p.pending,
            skipped: p.skipped,
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &CampaignsPage {
            chrome: page.chrome,
            campaigns,
            next,
            paged: after.is_some(),
        },
    ))
}

/// An approved template the form offers, under its channel.
pub struct TemplateOption {
    pub value: String,
    pub label: String,
}

pub struct ChannelGroup {
    pub name: String,
    pub templates: Vec<TemplateOption>,
}

/// One `{{n}}` of the chosen template and where its value comes from.
pub struct ParamSlot {
    /// `header_1`, `body_2`: the form field's name.
    pub key: String,
    pub label: String,
    pub choice: String,
    pub text: String,
}

/// What the member typed, shown again when the campaign is refused.
#[derive(Default, Deserialize)]
pub struct CampaignForm {
    #[serde(default)]
    name: String,
    /// `name|language`.
    #[serde(default)]
    template: String,
    #[serde(default)]
    segment: String,
    /// `datetime-local`, read as UTC; empty for "when I start it".
    #[serde(default)]
    start_at: String,
    /// `header_1`, `body_1_text`, …: each parameter's source and its text.
    #[serde(flatten)]
    params: BTreeMap<String, String>,
}

#[derive(Template)]
#[template(path = "campaign_new.html")]
struct NewCampaignPage {
    chrome: Chrome,
    channels: Vec<ChannelGroup>,
    segments: Vec<(String, String)>,
    /// Parameter sources offered: (value, label).
    sources: Vec<(String, String)>,
    form: CampaignForm,
    /// The chosen template's text, and its parameters.
    chosen: Option<String>,
    slots: Vec<ParamSlot>,
    error: Option<String>,
}

async fn approved_by_channel(
    state: &AppState,
    page: &Page<act::CampaignsManage>,
) -> Result<(Vec<ChannelGroup>, BTreeMap<String, String>), PageError> {
    let filter = TemplateFilter {
        status: Some("APPROVED".into()),
        ..TemplateFilter::default()
    };
    let ws = page.workspace_id.to_string();
    let rows = state.store.list_templates(&ws, &filter, CHOICES).await?;
    let mut groups: Vec<ChannelGroup> = channels::list(state, &page.ctx())
        .await?
        .into_iter()
        .map(|c| ChannelGroup {
            name: c.name,
            templates: rows
                .iter()
                .filter(|t| t.channel_id == c.id)
                .map(|t| TemplateOption {
                    value: format!("{}|{}", t.name, t.language),
                    label: format!("{} ({}, {})", t.name, t.language, t.category),
                })
                .collect(),
        })
        .collect();
    groups.retain(|g| !g.templates.is_empty());
    let components = rows
        .into_iter()
        .map(|t| (format!("{}|{}", t.name, t.language), t.components))
        .collect();
    Ok((groups, components))
}

/// The text of the template's header and body, and a slot per placeholder.
fn slots_of(components: &str, form: &CampaignForm) -> (String, Vec<ParamSlot>) {
    let parsed: Value = serde_json::from_str(components).unwrap_or(Value::Null);
    let counts = parameter_counts(&parsed);
    let text_of = |kind: &str| {
        parsed
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| {
                c["type"]
                    .as_str()
                    .is_some_and(|k| k.eq_ignore_ascii_case(kind))
            })
            .and_then(|c| c["text"].as_str())
            .unwrap_or("")
            .to_owned()
    };
    let shown = [text_of("header"), text_of("body")]
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    let mut slots = Vec::new();
    for (part, n, title) in [
        ("header", counts.header, "header"),
        ("body", counts.body, "body"),
    ] {
        for i in 1..=n {
            let key = format!("{part}_{i}");
            slots.push(ParamSlot {
                label: format!("{{{{{i}}}}} of the {title}"),
                choice: form
                    .params
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| "field:name".into()),
                text: form
                    .params
                    .get(&format!("{key}_text"))
                    .cloned()
                    .unwrap_or_default(),
                key,
            });
        }
    }
    (shown, slots)
}

async fn new_page(
    state: &AppState,
    page: Page<act::CampaignsManage>,
    status: StatusCode,
    form: CampaignForm,
    error: Option<String>,
) -> Result<Response, PageError> {
    let ws = page.workspace_id.to_string();
    let (channels, components) = approved_by_channel(state, &page).await?;
    let (chosen, slots) = match components.get(&form.template) {
        Some(c) => {
            let (text, slots) = slots_of(c, &form);
            (Some(text), slots)
        }
        None => (None, Vec::new()),
    };
    let (segments, _) = segments::list_segments(state, &ws, None, CHOICES).await?;
    let segments = segments
        .into_iter()
        .map(|s| (s.row.id, s.row.name))
        .collect();
    let mut sources = vec![("field:name".to_owned(), "The contact's name".to_owned())];
    for key in audiences::fields(state, &ws).await?.into_keys() {
        sources.push((format!("attribute:{key}"), format!("Attribute “{key}”")));
    }
    sources.push(("text".into(), "The same text for everyone".into()));
    Ok(render(
        status,
        &NewCampaignPage {
            chrome: page.chrome,
            channels,
            segments,
            sources,
            form,
            chosen,
            slots,
            error,
        },
    ))
}

/// `GET /campaigns/new`: choosing a template (`?template=`) shows its parameters.
pub async fn new_form(
    State(state): State<AppState>,
    page: Page<act::CampaignsManage>,
    Query(form): Query<CampaignForm>,
) -> Result<Response, PageError> {
    new_page(&state, page, StatusCode::OK, form, None).await
}

/// A parameter's source from its form fields.
fn source_of(form: &CampaignForm, key: &str) -> Result<ParameterSource, ApiError> {
    let choice = form.params.get(key).map(String::as_str).unwrap_or("");
    let text = || {
        form.params
            .get(&format!("{key}_text"))
            .cloned()
            .unwrap_or_default()
    };
    match choice.split_once(':') {
        Some(("field", "name")) => Ok(ParameterSource::Field(ContactField::Name)),
        Some(("attribute", k)) => Ok(ParameterSource::Attribute(k.to_owned())),
        _ if choice == "text" => Ok(ParameterSource::Text(text())),
        _ => Err(unprocessable(format!(
            "Choose where the value of `{key}` comes from."
        ))),
    }
}

/// `datetime-local` (minutes or seconds), read as UTC.
pub fn parse_start_at(raw: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
        .map(|t| Some(t.and_utc()))
        .map_err(|_| {
            unprocessable("Give the start time as a date and time, e.g. 2026-12-08T09:00 (UTC).")
        })
}

fn parse_form(form: &CampaignForm, components: Option<&String>) -> Result<NewCampaign, ApiError> {
    let Some((name, language)) = form.template.split_once('|') else {
        return Err(unprocessable("Choose an approved template."));
    };
    let mut parameters = CampaignParameters::default();
    if let Some(components) = components {
        let (_, slots) = slots_of(components, form);
        for slot in slots {
            let source = source_of(form, &slot.key)?;
            if slot.key.starts_with("header_") {
                parameters.header.push(source);
            } else {
                parameters.body.push(source);
            }
        }
    }
    NewCampaign::parse(&form.name, &form.segment, name, language, parameters)
}

/// `POST /campaigns`: saves the draft and opens its page.
pub async fn create(
    State(state): State<AppState>,
    page: Page<act::CampaignsManage>,
    PageForm(form): PageForm<CampaignForm>,
) -> Result<Response, PageError> {
    let (_, components) = approved_by_channel(&state, &page).await?;
    let outcome = match (
        parse_form(&form, components.get(&form.template)),
        parse_start_at(&form.start_at),
    ) {
        (Ok(input), Ok(_)) => campaigns::create_campaign(&state, &page.ctx(), input).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match outcome {
        Ok(c) => {
            let mut to = format!("/campaigns/{}", c.row.id);
            if !form.start_at.trim().is_empty() {
                to.push_str(&format!(
                    "?start_at={}",
                    percent_encoding::utf8_percent_encode(
                        form.start_at.trim(),
                        percent_encoding::NON_ALPHANUMERIC
                    )
                ));
            }
            Ok(Redirect::to(&to).into_response())
        }
        Err(e) => {
            let detail = PageError(e).detail();
            new_page(
                &state,
                page,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                Some(detail),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> CampaignForm {
        CampaignForm {
            template: "promo|en_US".into(),
            params: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..CampaignForm::default()
        }
    }

    #[test]
    fn each_placeholder_gets_a_slot_and_its_source() {
        let components = r#"[{"type":"HEADER","format":"TEXT","text":"Hi {{1}}"},
            {"type":"BODY","text":"Your code {{1}} expires {{2}}."}]"#
            .to_owned();
        let f = form(&[
            ("header_1", "field:name"),
            ("body_1", "attribute:code"),
            ("body_2", "text"),
            ("body_2_text", "tomorrow"),
        ]);
        let (text, slots) = slots_of(&components, &f);
        assert_eq!(text, "Hi {{1}}\n\nYour code {{1}} expires {{2}}.");
        let keys: Vec<_> = slots.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["header_1", "body_1", "body_2"]);
        let parsed = parse_form(
            &CampaignForm {
                name: "Codes".into(),
                segment: "seg_1".into(),
                ..f
            },
            Some(&components),
        )
        .unwrap();
        assert_eq!(
            parsed.parameters.header,
            [ParameterSource::Field(ContactField::Name)]
        );
        assert_eq!(
            parsed.parameters.body,
            [
                ParameterSource::Attribute("code".into()),
                ParameterSource::Text("tomorrow".into())
            ]
        );
    }

    #[test]
    fn start_times_are_read_as_utc_and_nonsense_is_refused() {
        assert_eq!(parse_start_at("  ").unwrap(), None);
        let t = parse_start_at("2026-12-08T09:00").unwrap().unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-08T09:00:00+00:00");
        assert!(parse_start_at("next monday").is_err());
        assert!(parse_form(&CampaignForm::default(), None).is_err());
    }
}
