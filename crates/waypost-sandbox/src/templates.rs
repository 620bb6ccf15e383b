//! Template management on a WABA: list (paginated, with `fields=` and
//! `summary=`), `GET /{template-id}`, create (starts PENDING, reviewed to
//! APPROVED or REJECTED after a configurable delay with a
//! `message_template_status_update` webhook), delete by name or `hsm_id`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use waypost_cloudapi::manage::{Cursors, Paging, TemplateCreate, TemplateCreated};
use waypost_cloudapi::webhook::{Entry, TemplateCategory, TemplateStatus, TemplateStatusUpdate};
use waypost_cloudapi::{Change, WebhookPayload};

use crate::config::NumberConfig;
use crate::error::GraphError;
use crate::state::{Inner, Template, count_variables, parameter_format_of, variable_names};
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

/// What Graph returns when `fields=` is not given.
const DEFAULT_FIELDS: &[&str] = &[
    "name",
    "parameter_format",
    "components",
    "language",
    "status",
    "category",
    "id",
];

/// Every field of a template node the sandbox knows.
fn all_fields(t: &Template) -> serde_json::Map<String, Value> {
    let v = json!({
        "id": t.id.to_string(),
        "name": t.name,
        "language": t.language,
        "status": t.status,
        "category": t.category,
        "parameter_format": t.parameter_format,
        "components": t.components,
        "previous_category": Value::Null,
        "correct_category": t.category,
        "rejected_reason": if t.status == "REJECTED" { "INVALID_FORMAT" } else { "NONE" },
        "quality_score": {"score": "UNKNOWN", "date": webhooks::now_secs()},
        "cta_url_link_tracking_opted_out": false,
        "sub_category": if t.category == "UTILITY" { Value::from("CUSTOM") } else { Value::Null },
        "message_send_ttl_seconds": if t.category == "AUTHENTICATION" { Value::from(600) } else { Value::Null },
        "library_template_name": Value::Null,
    });
    let Value::Object(mut m) = v else {
        unreachable!("json! of an object literal is an object")
    };
    m.retain(|_, v| !v.is_null());
    m
}

/// `t` with the fields asked for (`id` always), or code 100 naming an
/// unknown field as Graph does.
fn node(t: &Template, fields: &[&str]) -> Result<Value, GraphError> {
    let all = all_fields(t);
    let mut out = serde_json::Map::new();
    for f in fields {
        const OPTIONAL: &[&str] = &[
            "previous_category",
            "sub_category",
            "message_send_ttl_seconds",
            "library_template_name",
            "degrees_of_freedom_spec",
        ];
        match all.get(*f) {
            Some(v) => {
                out.insert((*f).to_owned(), v.clone());
            }
            None if OPTIONAL.contains(f) => {}
            None => {
                return Err(GraphError::new(
                    400,
                    100,
                    &format!(
                        "Tried accessing nonexisting field ({f}) on node type (WhatsAppBusinessHSM)"
                    ),
                    format!("Unknown field {f}."),
                ));
            }
        }
    }
    out.insert("id".into(), json!(t.id.to_string()));
    Ok(Value::Object(out))
}

fn field_list(fields: Option<&str>) -> Vec<&str> {
    match fields {
        Some(f) => f
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect(),
        None => DEFAULT_FIELDS.to_vec(),
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    name: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
    fields: Option<String>,
    /// `total_count` (or `true`) adds a `summary` object.
    summary: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NodeQuery {
    fields: Option<String>,
}

impl NodeQuery {
    pub fn fields(&self) -> Option<&str> {
        self.fields.as_deref()
    }
}

/// `GET /{template-id}`: None when `id` is no template (the caller tries
/// other node types).
pub fn get_node(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    fields: Option<&str>,
) -> Option<Result<Value, GraphError>> {
    let inner = state.lock();
    let t = inner
        .templates
        .iter()
        .find(|t| t.id.to_string() == id)?
        .clone();
    Some(
        authorize_waba(&inner, bearer(headers), &t.waba_id)
            .and_then(|_| node(&t, &field_list(fields))),
    )
}

pub async fn list(
    State(state): State<AppState>,
    Path(waba_id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, GraphError> {
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
    let fields = field_list(q.fields.as_deref());
    let data = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|t| node(t, &fields))
        .collect::<Result<Vec<Value>, _>>()?;
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
    let mut body = json!({"data": data, "paging": paging});
    if q.summary
        .as_deref()
        .is_some_and(|s| s.split(',').any(|s| s == "total_count" || s == "true"))
    {
        let total = inner
            .templates
            .iter()
            .filter(|t| t.waba_id == waba_id)
            .count();
        body["summary"] = json!({
            "total_count": matching.len(),
            "message_template_count": total,
            "message_template_limit": 250,
            "are_translations_complete": true,
        });
    }
    Ok(Json(body))
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
            parameter_format: body
                .parameter_format
                .clone()
                .unwrap_or_else(|| parameter_format_of(&variable_names(&text_of("BODY")))),
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
