//! Template management on a WABA: list (paginated), create (starts
//! PENDING, reviewed to APPROVED or REJECTED after a configurable delay
//! with a `message_template_status_update` webhook), delete by name or
//! `hsm_id`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use waypost_cloudapi::manage::{
    Cursors, Paging, TemplateCreate, TemplateCreated, TemplateInfo, TemplateList,
};
use waypost_cloudapi::webhook::{Entry, TemplateCategory, TemplateStatus, TemplateStatusUpdate};
use waypost_cloudapi::{Change, WebhookPayload};

use crate::config::NumberConfig;
use crate::error::GraphError;
use crate::state::{Inner, Template, count_variables};
use crate::{AppState, bearer, webhooks};

/// Largest page of a template list.
const MAX_PAGE: usize = 100;

/// The first number of `waba_id` whose token this is: 190 for an unknown
/// token, 100/33 for a WABA the token can't see.
fn authorize_waba(
    inner: &Inner,
    token: Option<&str>,
    waba_id: &str,
) -> Result<NumberConfig, GraphError> {
    let token = token.ok_or_else(GraphError::auth)?;
    if !inner.numbers.iter().any(|n| n.access_token == token) {
        return Err(GraphError::auth());
    }
    inner
        .numbers
        .iter()
        .find(|n| n.waba_id == waba_id && n.access_token == token)
        .cloned()
        .ok_or_else(|| GraphError::unknown_object(waba_id))
}

fn info(t: &Template) -> TemplateInfo {
    TemplateInfo {
        id: t.id.to_string(),
        name: Some(t.name.clone()),
        language: Some(t.language.clone()),
        status: Some(TemplateStatus::from(t.status.as_str())),
        category: Some(TemplateCategory::from(t.category.as_str())),
        parameter_format: None,
        components: t.components.clone(),
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    name: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Path(waba_id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<TemplateList>, GraphError> {
    let inner = state.lock();
    authorize_waba(&inner, bearer(&headers), &waba_id)?;
    let start: usize = q.after.as_deref().and_then(|a| a.parse().ok()).unwrap_or(0);
    let limit = q.limit.unwrap_or(25).clamp(1, MAX_PAGE);
    let matching: Vec<&Template> = inner
        .templates
        .iter()
        .filter(|t| t.waba_id == waba_id)
        .filter(|t| q.name.as_ref().is_none_or(|n| t.name.contains(n.as_str())))
        .filter(|t| {
            q.status
                .as_ref()
                .is_none_or(|s| t.status.eq_ignore_ascii_case(s))
        })
        .collect();
    let data: Vec<TemplateInfo> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|t| info(t))
        .collect();
    let end = start + data.len();
    let paging = Paging {
        cursors: Some(Cursors {
            before: Some(start.to_string()),
            after: Some(end.to_string()),
        }),
        next: (end < matching.len()).then(|| {
            format!(
                "{}/{waba_id}/message_templates?limit={limit}&after={end}",
                state.base_url
            )
        }),
        previous: None,
    };
    Ok(Json(TemplateList {
        data,
        paging: Some(paging),
    }))
}

pub async fn create(
    State(state): State<AppState>,
    Path(waba_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<TemplateCreated>, GraphError> {
    let body: TemplateCreate =
        serde_json::from_slice(&body).map_err(|e| GraphError::param("body", &e.to_string()))?;
    let valid_name = !body.name.is_empty()
        && body.name.len() <= 512
        && body
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid_name {
        return Err(GraphError::param(
            "name",
            "only lower-case letters, digits and underscores",
        ));
    }
    if body.language.is_empty() {
        return Err(GraphError::param("language", "is required"));
    }
    let text_of = |kind: &str| {
        body.components
            .iter()
            .find(|c| c.kind.eq_ignore_ascii_case(kind))
            .and_then(|c| c.text.clone())
            .unwrap_or_default()
    };
    let (id, reject) = {
        let mut inner = state.lock();
        authorize_waba(&inner, bearer(&headers), &waba_id)?;
        let exists = inner
            .templates
            .iter()
            .any(|t| t.waba_id == waba_id && t.name == body.name && t.language == body.language);
        if exists {
            return Err(GraphError::param(
                "name",
                "a template with this name and language exists",
            ));
        }
        let id = inner.numeric_id();
        let reject = inner.roll(state.config.webhooks.template_reject_rate);
        inner.templates.push(Template {
            id,
            waba_id: waba_id.clone(),
            name: body.name.clone(),
            language: body.language.clone(),
            category: body.category.as_str().to_ascii_uppercase(),
            status: "PENDING".into(),
            body_params: count_variables(&text_of("BODY")),
            header_params: count_variables(&text_of("HEADER")),
            components: body.components.clone(),
        });
        (id, reject)
    };
    let review = Duration::from_millis(state.config.webhooks.template_review_ms);
    let st = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(review).await;
        let (status, reason) = if reject {
            ("REJECTED", "INVALID_FORMAT")
        } else {
            ("APPROVED", "NONE")
        };
        change_status(&st, id, status, reason);
    });
    Ok(Json(TemplateCreated {
        id: id.to_string(),
        status: TemplateStatus::from("PENDING"),
        category: Some(body.category),
    }))
}

/// Sets a template's status and sends `message_template_status_update`
/// to the WABA's first number with a webhook. None if there is no such id.
pub fn change_status(state: &AppState, id: u64, status: &str, reason: &str) -> Option<()> {
    let mut inner = state.lock();
    let t = inner.templates.iter_mut().find(|t| t.id == id)?;
    t.status = status.to_owned();
    let t = t.clone();
    let number = inner
        .numbers
        .iter()
        .find(|n| n.waba_id == t.waba_id && n.webhook_url.is_some())
        .cloned();
    let Some(number) = number else {
        return Some(());
    };
    let payload = WebhookPayload {
        object: "whatsapp_business_account".into(),
        entry: vec![Entry {
            id: t.waba_id.clone(),
            time: Some(webhooks::now_secs() as i64),
            changes: vec![Change::TemplateStatus(TemplateStatusUpdate {
                event: TemplateStatus::from(status),
                message_template_id: t.id,
                message_template_name: t.name.clone(),
                message_template_language: t.language.clone(),
                reason: Some(reason.to_owned()),
                message_template_category: Some(TemplateCategory::from(t.category.as_str())),
                disable_info: None,
                other_info: None,
                rejection_info: None,
            })],
        }],
    };
    if let Some(d) = webhooks::delivery(&state.config, &number, &payload) {
        state.webhooks.enqueue(&mut inner, d);
    }
    Some(())
}

#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    name: Option<String>,
    hsm_id: Option<String>,
}

pub async fn delete(
    State(state): State<AppState>,
    Path(waba_id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<DeleteQuery>,
) -> Result<Json<Value>, GraphError> {
    let mut inner = state.lock();
    authorize_waba(&inner, bearer(&headers), &waba_id)?;
    let name = q
        .name
        .ok_or_else(|| GraphError::param("name", "is required"))?;
    let before = inner.templates.len();
    inner.templates.retain(|t| {
        !(t.waba_id == waba_id
            && t.name == name
            && q.hsm_id.as_ref().is_none_or(|h| *h == t.id.to_string()))
    });
    if inner.templates.len() == before {
        return Err(GraphError::param("name", "no template with this name"));
    }
    Ok(Json(json!({ "success": true })))
}
