//! Templates: the workspace's message templates with their review status, and
//! a form that builds one (header, body with `{{1}}` placeholders and their
//! examples, footer) with a live preview, refused with the API's own messages;
//! and a sync that asks WhatsApp for the review statuses now.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use waypost_core::auth::Action;
use waypost_store::templates::TemplateFilter;

use super::form::{Button, PageForm};
use super::page::{Chrome, Page, PageError, render};
use crate::auth::permission::act;
use crate::error::ApiError;
use crate::ops::template_sync;
use crate::ops::templates::{self, NewTemplate};
use crate::state::AppState;

pub struct TemplateItem {
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub reason: Option<String>,
    pub body: String,
}

/// What the member typed, shown again when the template is refused.
#[derive(Default, Deserialize)]
pub struct TemplateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    header: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    examples: String,
    #[serde(default)]
    footer: String,
}

/// What a sync found, shown above the list.
pub struct SyncReport {
    pub summary: String,
    /// No channel could be synced.
    pub failed: bool,
    /// Channels that could not be synced, with the reason.
    pub failures: Vec<String>,
}

#[derive(Template)]
#[template(path = "templates.html")]
struct TemplatesPage {
    chrome: Chrome,
    templates: Vec<TemplateItem>,
    can_write: bool,
    form: TemplateForm,
    notice: Option<String>,
    error: Option<String>,
    synced: Option<SyncReport>,
}

fn body_of(components: &str) -> String {
    serde_json::from_str::<Value>(components)
        .ok()
        .and_then(|c| {
            c.as_array()?
                .iter()
                .find(|x| {
                    x["type"]
                        .as_str()
                        .is_some_and(|k| k.eq_ignore_ascii_case("body"))
                })
                .and_then(|x| x["text"].as_str().map(str::to_owned))
        })
        .unwrap_or_default()
}

async fn templates_page(
    state: &AppState,
    page: Page<act::TemplatesRead>,
    status: StatusCode,
    form: TemplateForm,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    templates_page_with(state, page, status, form, (notice, error), None).await
}

async fn templates_page_with(
    state: &AppState,
    page: Page<act::TemplatesRead>,
    status: StatusCode,
    form: TemplateForm,
    (notice, error): (Option<String>, Option<String>),
    synced: Option<SyncReport>,
) -> Result<Response, PageError> {
    let rows = state
        .store
        .list_templates(
            &page.workspace_id.to_string(),
            &TemplateFilter::default(),
            100,
        )
        .await?;
    let templates = rows
        .into_iter()
        .map(|t| TemplateItem {
            body: body_of(&t.components),
            name: t.name,
            language: t.language,
            category: t.category,
            status: t.status,
            reason: t.rejection_reason,
        })
        .collect();
    Ok(render(
        status,
        &TemplatesPage {
            can_write: page.chrome.may(Action::TemplatesWrite),
            chrome: page.chrome,
            templates,
            form,
            notice,
            error,
            synced,
        },
    ))
}

#[derive(Deserialize)]
pub struct TemplatesQuery {
    created: Option<String>,
}

/// `GET /templates`.
pub async fn index(
    State(state): State<AppState>,
    page: Page<act::TemplatesRead>,
    Query(q): Query<TemplatesQuery>,
) -> Result<Response, PageError> {
    let notice = q.created.map(|name| {
        format!("“{name}” was submitted for review; its status changes here when WhatsApp decides.")
    });
    templates_page(&state, page, StatusCode::OK, default_form(), notice, None).await
}

/// The components Meta expects, from the form's fields.
fn components(f: &TemplateForm) -> Value {
    let mut out = Vec::new();
    if !f.header.trim().is_empty() {
        out.push(json!({"type": "HEADER", "format": "TEXT", "text": f.header.trim()}));
    }
    let mut body = json!({"type": "BODY", "text": f.body.trim()});
    let examples: Vec<&str> = f
        .examples
        .split(['\n', ','])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if !examples.is_empty() {
        body["example"] = json!({ "body_text": [examples] });
    }
    out.push(body);
    if !f.footer.trim().is_empty() {
        out.push(json!({"type": "FOOTER", "text": f.footer.trim()}));
    }
    Value::Array(out)
}

/// `POST /templates`: submits the template for review.
pub async fn create(
    State(state): State<AppState>,
    page: Page<act::TemplatesWrite>,
    PageForm(f): PageForm<TemplateForm>,
) -> Result<Response, PageError> {
    let input = NewTemplate {
        name: f.name.trim().to_owned(),
        language: f.language.trim().to_owned(),
        category: f.category.trim().to_owned(),
        components: components(&f),
        channel_id: None,
    };
    match templates::create(&state, &page.ctx(), input).await {
        Ok(row) => Ok(Redirect::to(&format!(
            "/templates?created={}",
            percent_encoding::utf8_percent_encode(&row.name, percent_encoding::NON_ALPHANUMERIC)
        ))
        .into_response()),
        Err(e) => {
            let detail = PageError(e).detail();
            templates_page(
                &state,
                page.into_page()?,
                StatusCode::UNPROCESSABLE_ENTITY,
                f,
                None,
                Some(detail),
            )
            .await
        }
    }
}

fn default_form() -> TemplateForm {
    TemplateForm {
        language: "en_US".into(),
        category: "utility".into(),
        ..TemplateForm::default()
    }
}

/// `POST /templates/sync`: asks WhatsApp for every channel's template
/// statuses and shows what changed (a plain form: works without the script).
pub async fn sync(
    State(state): State<AppState>,
    page: Page<act::TemplatesWrite>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    let (status, report) = match template_sync::sync(&state, &page.ctx(), None).await {
        Ok(done) => (
            StatusCode::OK,
            SyncReport {
                failed: false,
                summary: match done.updated {
                    0 => "Synced with WhatsApp: every status was already up to date.".to_owned(),
                    1 => "Synced with WhatsApp: 1 template updated.".to_owned(),
                    n => format!("Synced with WhatsApp: {n} templates updated."),
                },
                failures: done
                    .channels
                    .into_iter()
                    .filter_map(|c| Some(format!("{}: {}", c.channel_name, c.error?)))
                    .collect(),
            },
        ),
        Err(ApiError::Problem(p)) => (
            p.status_code(),
            SyncReport {
                failed: true,
                summary: format!("The sync failed. {}", p.detail),
                failures: Vec::new(),
            },
        ),
        Err(e) => return Err(e.into()),
    };
    templates_page_with(
        &state,
        page.into_page()?,
        status,
        default_form(),
        (None, None),
        Some(report),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_meta_components() {
        let f = TemplateForm {
            header: "Your order".into(),
            body: "Hello {{1}}, order {{2}} ships today.".into(),
            examples: "Ana, A-1".into(),
            footer: "Reply STOP to opt out".into(),
            ..TemplateForm::default()
        };
        assert_eq!(
            components(&f),
            json!([
                {"type": "HEADER", "format": "TEXT", "text": "Your order"},
                {"type": "BODY", "text": "Hello {{1}}, order {{2}} ships today.", "example": {"body_text": [["Ana", "A-1"]]}},
                {"type": "FOOTER", "text": "Reply STOP to opt out"}
            ])
        );
        assert_eq!(body_of(&components(&f).to_string()), f.body);
    }
}
