//! Template rules: local validation (name, language, category, components,
//! prohibited content) with the same messages for the API and the pages, and
//! submission to the channel's WhatsApp Business Account.

use axum::http::StatusCode;
use serde_json::{Value, json};
use waypost_cloudapi::ClientError;
use waypost_cloudapi::classify::ErrorClass;
use waypost_cloudapi::manage::{TemplateCreate, TemplateDefComponent};
use waypost_core::template::{
    LanguageCode, SPAM_CATEGORY, TEMPLATE_SPAM_SCORE, TemplateCategory, TemplateName,
    template_texts, validate_components,
};
use waypost_core::{NewAuditEvent, TemplateId};
use waypost_store::messaging::ChannelRow;
use waypost_store::templates::TemplateRow;

use super::Ctx;
use crate::error::{ApiError, Problem};
use crate::messaging::client_for;
use crate::state::AppState;

/// A template to submit.
pub struct NewTemplate {
    pub name: String,
    pub language: String,
    pub category: String,
    /// Meta's components array.
    pub components: Value,
    /// Optional when the workspace has exactly one channel.
    pub channel_id: Option<String>,
}

fn invalid(detail: impl Into<String>, errors: Value) -> ApiError {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
        "Invalid request",
        detail,
    )
    .with("errors", errors)
    .into()
}

fn invalid_field(field: &str, message: String) -> ApiError {
    invalid(
        format!("`{field}` {message}"),
        json!([{ "pointer": format!("/{field}"), "detail": message }]),
    )
}

/// A provider failure as a problem: the provider's code and title, never
/// our request or token. Refusals of the template itself are 422, the rest 502.
pub fn provider_problem(e: &ClientError) -> ApiError {
    let (status, slug, title) = match (e.meta(), e.class()) {
        (Some(_), ErrorClass::Permanent) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "provider-rejected",
            "Refused by the provider",
        ),
        _ => (StatusCode::BAD_GATEWAY, "provider-error", "Provider error"),
    };
    let mut problem = match e.meta() {
        Some(m) => Problem::new(
            status,
            slug,
            title,
            format!(
                "The provider answered {}: {}",
                m.code,
                m.details().unwrap_or(&m.message)
            ),
        )
        .with("provider_code", m.code.into())
        .with("provider_title", m.message.clone().into()),
        None => Problem::new(
            status,
            slug,
            title,
            "The provider could not be reached or gave no usable answer; retry later.",
        ),
    };
    if let Some(s) = e.status() {
        problem = problem.with("provider_status", s.into());
    }
    tracing::warn!(error = %e, "template request refused by the provider");
    problem.into()
}

/// The channel named in the request, or the workspace's only one.
async fn channel_for(
    state: &AppState,
    workspace_id: &str,
    named: Option<&str>,
) -> Result<ChannelRow, ApiError> {
    if let Some(id) = named {
        return match state.store.get_channel(workspace_id, id).await {
            Err(waypost_store::StoreError::NotFound(_)) => Err(invalid_field(
                "channel_id",
                "names no channel of this workspace".into(),
            )),
            other => Ok(other?),
        };
    }
    let mut channels = state.store.list_channels(workspace_id).await?;
    match channels.len() {
        1 => Ok(channels.remove(0)),
        0 => Err(invalid_field(
            "channel_id",
            "is required: the workspace has no channel yet".into(),
        )),
        _ => Err(invalid_field(
            "channel_id",
            "is required when the workspace has several channels".into(),
        )),
    }
}

/// Local checks: name, language, category, components and prohibited content.
fn validate(
    state: &AppState,
    req: &NewTemplate,
) -> Result<(TemplateName, LanguageCode, TemplateCategory), ApiError> {
    let name = TemplateName::parse(&req.name).map_err(|m| invalid_field("name", m))?;
    let language = LanguageCode::parse(&req.language).map_err(|m| invalid_field("language", m))?;
    let category =
        TemplateCategory::parse(&req.category).map_err(|m| invalid_field("category", m))?;
    if let Err(errors) = validate_components(&req.components) {
        let detail = format!(
            "The template's components are invalid: {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        );
        let list: Vec<Value> = errors
            .iter()
            .map(|e| json!({ "pointer": e.pointer, "detail": e.message }))
            .collect();
        return Err(invalid(detail, Value::Array(list)));
    }
    let prohibited = state.config.template_prohibited();
    let texts = template_texts(name.as_str(), &req.components);
    let refused = prohibited
        .check(texts.iter().copied())
        .or_else(|| spam(state, &req.components).then_some(SPAM_CATEGORY));
    if let Some(refused) = refused {
        // Name the category only: echoing the matched words would repeat them into logs.
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "template-prohibited-content",
            "Prohibited content",
            format!("The template contains content of the prohibited category `{refused}`, which WhatsApp's commerce and business policies do not allow."),
        )
        .with("category", refused.into())
        .into());
    }
    Ok((name, language, category))
}

/// Whether the shield reads what the recipient would see (header, body,
/// footer and button labels, placeholders left out) as smishing or as
/// clear-cut spam.
fn spam(state: &AppState, components: &Value) -> bool {
    if !state.config.template_spam_check() {
        return false;
    }
    let shown: Vec<String> = components
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| {
            let own = c.get("text").and_then(Value::as_str);
            let buttons = c
                .get("buttons")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|b| b.get("text").and_then(Value::as_str));
            own.into_iter().chain(buttons)
        })
        .map(without_placeholders)
        .collect();
    if shown.is_empty() {
        return false;
    }
    let verdict = state
        .shield
        .scan(&waypost_shield::ScanInput::text(shown.join("\n")));
    verdict.label == waypost_shield::Label::Smishing
        || (verdict.label == waypost_shield::Label::Spam && verdict.score >= TEMPLATE_SPAM_SCORE)
}

fn without_placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        match rest[start..].find("}}") {
            Some(end) => rest = &rest[start + end + 2..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The provider's create body. Component types go upper case, as Meta writes
/// them; the stored components stay exactly as submitted.
fn provider_body(
    name: &TemplateName,
    language: &LanguageCode,
    category: TemplateCategory,
    components: &Value,
) -> Result<TemplateCreate, ApiError> {
    let mut components: Vec<TemplateDefComponent> = serde_json::from_value(components.clone())
        .map_err(|e| {
            invalid(
                format!("The template's components are invalid: {e}"),
                json!([]),
            )
        })?;
    for c in &mut components {
        c.kind.make_ascii_uppercase();
        if let Some(f) = &mut c.format {
            f.make_ascii_uppercase();
        }
        c.buttons
            .iter_mut()
            .for_each(|b| b.kind.make_ascii_uppercase());
    }
    Ok(TemplateCreate {
        name: name.to_string(),
        language: language.to_string(),
        category: category.meta_str().into(),
        parameter_format: None,
        components,
    })
}

/// Validates, submits to the provider and stores a template (audited
/// `template.created`); its review result arrives later by webhook.
pub async fn create(
    state: &AppState,
    ctx: &Ctx,
    req: NewTemplate,
) -> Result<TemplateRow, ApiError> {
    let (name, language, category) = validate(state, &req)?;
    let ws = ctx.workspace.clone();
    let channel = channel_for(state, &ws, req.channel_id.as_deref()).await?;
    // Checked before the provider call so a duplicate leaves nothing behind there.
    if state
        .store
        .template_by_name(&ws, name.as_str(), language.as_str())
        .await?
        .is_some()
    {
        return Err(waypost_store::StoreError::Conflict(
            "the workspace already has a template with this name and language".into(),
        )
        .into());
    }
    let body = provider_body(&name, &language, category, &req.components)?;
    let client = client_for(&state.keys, &state.config, &channel)?;
    let created = client
        .create_template(&channel.waba_id, &body)
        .await
        .map_err(|e| provider_problem(&e))?;
    let now = state.clock.now();
    let row = TemplateRow {
        id: TemplateId::new().to_string(),
        workspace_id: ws.clone(),
        channel_id: channel.id.clone(),
        name: name.to_string(),
        language: language.to_string(),
        category: category.as_str().into(),
        components: req.components.to_string(),
        status: crate::templates::stored_status(created.status.as_str())
            .unwrap_or_else(|| "PENDING".into()),
        rejection_reason: None,
        provider_id: Some(created.id.clone()),
        created_at: now,
        updated_at: now,
    };
    let event = NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "template.created",
    )
    .target("template", row.id.clone())
    .details(
        json!({ "name": row.name, "language": row.language, "category": row.category,
            "channel_id": row.channel_id, "provider_id": row.provider_id }),
    );
    if let Err(e) = state
        .store
        .create_template(&row, ctx.origin.stamp(event))
        .await
    {
        // A concurrent create won the name: withdraw ours at the provider.
        if let Err(undo) = client
            .delete_template(&channel.waba_id, &row.name, Some(&created.id))
            .await
        {
            tracing::warn!(error = %undo, "could not withdraw a template at the provider");
        }
        return Err(e.into());
    }
    state.lookups.invalidate();
    Ok(row)
}
