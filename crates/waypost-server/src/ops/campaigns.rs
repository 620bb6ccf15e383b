//! Campaigns: a draft names a segment, a template of the workspace (which
//! fixes the channel and the category) and where each template parameter
//! comes from; the pre-flight reads the segment now and tells how many
//! contacts would be sent the template and how many are skipped, and why
//! (`waypost_core::campaign::skip_reason`). Starting and sending are
//! `ops::campaign_runs` and `ops::campaign_feed`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_core::campaign::{
    CampaignStatus, ContactField, ParameterSource, SkipReason, skip_reason,
};
use waypost_core::policy::{Category, Consent, Recipient};
use waypost_core::template::parameter_counts;
use waypost_core::{CampaignId, NewAuditEvent};
use waypost_crypto::Aad;
use waypost_store::StoreError;
use waypost_store::campaigns::CampaignRow;
use waypost_store::messaging::{ContactRow, TemplateRef};

use super::Ctx;
use super::segments::get_segment;
use crate::error::{ApiError, Problem, unprocessable};
use crate::state::AppState;

/// Contacts read per page during a pre-flight.
const PREFLIGHT_PAGE: u32 = 1000;

/// Where the header and body parameters of the template come from, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignParameters {
    /// `{"field": "name"}`, `{"attribute": "city"}` or `{"text": "…"}` per `{{n}}` of a text header.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub header: Vec<ParameterSource>,
    /// The same, per `{{n}}` of the body.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub body: Vec<ParameterSource>,
}

/// A campaign to save as a draft.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub name: String,
    pub segment_id: String,
    pub template_name: String,
    pub template_language: String,
    pub parameters: CampaignParameters,
}

impl NewCampaign {
    pub fn parse(
        name: &str,
        segment_id: &str,
        template_name: &str,
        template_language: &str,
        parameters: CampaignParameters,
    ) -> Result<Self, ApiError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(unprocessable("`name` must be 1 to 100 characters"));
        }
        for p in parameters.header.iter().chain(&parameters.body) {
            match p {
                ParameterSource::Text(t) if t.trim().is_empty() || t.chars().count() > 1024 => {
                    return Err(unprocessable(
                        "a `text` parameter must be 1 to 1024 characters",
                    ));
                }
                ParameterSource::Attribute(k) if k.is_empty() || k.len() > 64 => {
                    return Err(unprocessable(
                        "an `attribute` parameter names a key of 1 to 64 bytes",
                    ));
                }
                _ => {}
            }
        }
        Ok(Self {
            name: name.to_owned(),
            segment_id: segment_id.to_owned(),
            template_name: template_name.to_owned(),
            template_language: template_language.to_owned(),
            parameters,
        })
    }
}

/// A campaign with its parameter sources read.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub row: CampaignRow,
    pub parameters: CampaignParameters,
}

pub(crate) fn open(row: CampaignRow) -> Result<Campaign, ApiError> {
    let parameters =
        serde_json::from_str(&row.parameters).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Campaign { row, parameters })
}

fn template_problem(kind: &str, title: &str, detail: String) -> ApiError {
    Problem::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        kind,
        title,
        detail,
    )
    .into()
}

async fn template_of(
    state: &AppState,
    workspace_id: &str,
    name: &str,
    language: &str,
) -> Result<TemplateRef, ApiError> {
    state
        .store
        .find_template(workspace_id, name, language)
        .await?
        .ok_or_else(|| {
            template_problem(
                "template-unknown",
                "Unknown template",
                "The workspace has no template with this name and language.".into(),
            )
        })
}

/// Saves a draft (audited) after checking that the segment and template exist and
/// that the parameters match the template's placeholders.
pub async fn create_campaign(
    state: &AppState,
    ctx: &Ctx,
    input: NewCampaign,
) -> Result<Campaign, ApiError> {
    let segment = match get_segment(state, &ctx.workspace, &input.segment_id).await {
        Err(ApiError::Problem(p)) if p.status == 404 => {
            return Err(unprocessable(
                "`segment_id` names no segment of the workspace",
            ));
        }
        other => other?,
    };
    let template = template_of(
        state,
        &ctx.workspace,
        &input.template_name,
        &input.template_language,
    )
    .await?;
    let components: serde_json::Value =
        serde_json::from_str(&template.components).map_err(|e| ApiError::Internal(e.into()))?;
    let counts = parameter_counts(&components);
    if !counts.buttons.is_empty() {
        return Err(template_problem(
            "template-parameters",
            "Template parameters",
            "templates whose buttons take parameters cannot be used in campaigns yet".into(),
        ));
    }
    let (header, body) = (input.parameters.header.len(), input.parameters.body.len());
    if header != counts.header || body != counts.body {
        return Err(template_problem(
            "template-parameters",
            "Template parameters",
            format!(
                "the template takes {} header and {} body parameters; `parameters` gives {header} and {body}",
                counts.header, counts.body
            ),
        ));
    }
    let now = state.clock.now();
    let row = CampaignRow {
        id: CampaignId::new().to_string(),
        workspace_id: ctx.workspace.clone(),
        name: input.name,
        segment_id: segment.row.id,
        channel_id: template.channel_id,
        template_name: input.template_name,
        template_language: input.template_language,
        parameters: serde_json::to_string(&input.parameters).expect("parameters serialise"),
        status: CampaignStatus::Draft.as_str().to_owned(),
        created_at: now,
        updated_at: now,
        send_window: None,
        start_at: None,
        confirmed_recipients: None,
        started_at: None,
        finished_at: None,
        pause_reason: None,
    };
    let audit = NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "campaign.created",
    )
    .target("campaign", row.id.clone())
    .details(serde_json::json!({
        "name": row.name,
        "segment_id": row.segment_id,
        "template": { "name": row.template_name, "language": row.template_language },
    }));
    match state
        .store
        .create_campaign(&row, ctx.origin.stamp(audit))
        .await
    {
        Ok(()) => open(row),
        Err(StoreError::Conflict(_)) => Err(Problem::new(
            axum::http::StatusCode::CONFLICT,
            "campaign-exists",
            "Campaign exists",
            "The workspace already has a campaign with this name.",
        )
        .into()),
        Err(e) => Err(e.into()),
    }
}

pub async fn get_campaign(
    state: &AppState,
    workspace_id: &str,
    id: &str,
) -> Result<Campaign, ApiError> {
    open(state.store.get_campaign(workspace_id, id).await?)
}

/// A page of campaigns and the next cursor.
pub async fn list_campaigns(
    state: &AppState,
    workspace_id: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<Campaign>, Option<String>), ApiError> {
    let rows = state
        .store
        .list_campaigns(workspace_id, after, limit)
        .await?;
    let next = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|c| c.id.clone()))
        .flatten();
    Ok((rows.into_iter().map(open).collect::<Result<_, _>>()?, next))
}

/// What a start would do now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Preflight {
    pub campaign_id: String,
    pub template: PreflightTemplate,
    /// Contacts in the segment now.
    pub recipients: i64,
    /// Of those, the ones that would be sent the template.
    pub eligible: i64,
    /// The others, by reason: `no_consent`, `opted_out`, `restricted`, `no_phone`, `invalid_parameters`.
    pub skipped: BTreeMap<String, i64>,
    /// Messages per pricing category (the template's category; Meta bills per delivered template).
    pub cost_categories: BTreeMap<String, i64>,
    /// Whether a start could go ahead: the template is approved and someone is eligible.
    pub ready: bool,
    pub computed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PreflightTemplate {
    pub name: String,
    pub language: String,
    pub category: String,
    /// Meta's review status, e.g. `APPROVED`.
    pub status: String,
}

/// Whether every parameter source has a value for this contact.
pub(crate) fn parameters_filled(
    state: &AppState,
    contact: &ContactRow,
    sources: &[&ParameterSource],
) -> Result<bool, ApiError> {
    Ok(parameter_values(state, contact, sources)?.is_some())
}

/// Each parameter's text for this contact, or `None` when one source is empty.
pub(crate) fn parameter_values(
    state: &AppState,
    contact: &ContactRow,
    sources: &[&ParameterSource],
) -> Result<Option<Vec<String>>, ApiError> {
    let ring = state.keys.current();
    let open = |column: &str, value: &Option<Vec<u8>>| {
        value
            .as_deref()
            .map(|v| ring.decrypt(Aad::new("contacts", column, &contact.id), v))
            .transpose()
            .map_err(|e| ApiError::Internal(e.into()))
    };
    let mut attributes: Option<serde_json::Map<String, serde_json::Value>> = None;
    let mut values = Vec::with_capacity(sources.len());
    for s in sources {
        let value =
            match s {
                ParameterSource::Text(t) => Some(t.clone()),
                ParameterSource::Field(ContactField::Name) => open("name", &contact.name)?
                    .map(|n| String::from_utf8_lossy(&n).trim().to_owned()),
                ParameterSource::Attribute(key) => {
                    if attributes.is_none() {
                        attributes = Some(match open("attributes", &contact.attributes)? {
                            Some(a) => serde_json::from_slice(&a)
                                .map_err(|e| ApiError::Internal(e.into()))?,
                            None => serde_json::Map::new(),
                        });
                    }
                    match attributes.as_ref().and_then(|a| a.get(key)) {
                        Some(serde_json::Value::String(v)) => Some(v.trim().to_owned()),
                        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                            Some(v.to_string())
                        }
                        _ => None,
                    }
                }
            };
        match value {
            Some(v) if !v.is_empty() => values.push(v),
            _ => return Ok(None),
        }
    }
    Ok(Some(values))
}

pub(crate) fn recipient(c: &ContactRow) -> Recipient {
    Recipient {
        restricted: c.restricted,
        marketing: Consent::parse(c.consent_marketing.as_deref()),
        utility: Consent::parse(c.consent_utility.as_deref()),
        authentication: Consent::parse(c.consent_authentication.as_deref()),
        last_inbound_at: c.last_inbound_at,
    }
}

/// Every contact of a campaign's segment now, in the segment's order, with
/// the reason it would be skipped (if any), and the template it would be sent.
pub(crate) struct Evaluation {
    pub campaign: Campaign,
    pub template: TemplateRef,
    pub category: Category,
    pub recipients: Vec<(String, Option<SkipReason>)>,
}

/// Reads the campaign's segment now, page by page, and decides for each
/// contact whether it would be sent the template.
pub(crate) async fn evaluate(
    state: &AppState,
    workspace_id: &str,
    id: &str,
) -> Result<Evaluation, ApiError> {
    let campaign = get_campaign(state, workspace_id, id).await?;
    let row = &campaign.row;
    let template = template_of(
        state,
        workspace_id,
        &row.template_name,
        &row.template_language,
    )
    .await?;
    let category = Category::parse(&template.category).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("templates.category holds an unknown value"))
    })?;
    let sources: Vec<&ParameterSource> = campaign
        .parameters
        .header
        .iter()
        .chain(&campaign.parameters.body)
        .collect();
    let mut recipients = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = super::segments::segment_contacts(
            state,
            workspace_id,
            &row.segment_id,
            after,
            PREFLIGHT_PAGE,
        )
        .await
        .map_err(|e| match e {
            ApiError::Problem(p) if p.status == 404 => Problem::new(
                axum::http::StatusCode::CONFLICT,
                "segment-gone",
                "Segment gone",
                "The campaign's segment was deleted.",
            )
            .into(),
            e => e,
        })?;
        for c in page {
            let filled = parameters_filled(state, &c, &sources)?;
            let reason = skip_reason(&recipient(&c), category, c.phone.is_some(), filled);
            recipients.push((c.id, reason));
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(Evaluation {
        campaign,
        template,
        category,
        recipients,
    })
}

/// Reads the campaign's segment now and counts who would be sent the
/// template and who would be skipped, and why.
pub async fn preflight(
    state: &AppState,
    workspace_id: &str,
    id: &str,
) -> Result<Preflight, ApiError> {
    Ok(summarise(state, &evaluate(state, workspace_id, id).await?))
}

/// The pre-flight's counts of an evaluation.
pub(crate) fn summarise(state: &AppState, e: &Evaluation) -> Preflight {
    let row = &e.campaign.row;
    let mut skipped: BTreeMap<String, i64> = SkipReason::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), 0))
        .collect();
    let recipients = e.recipients.len() as i64;
    let mut eligible = 0i64;
    for (_, reason) in &e.recipients {
        match reason {
            Some(reason) => *skipped.entry(reason.as_str().to_owned()).or_default() += 1,
            None => eligible += 1,
        }
    }
    let category = e.category;
    Preflight {
        campaign_id: row.id.clone(),
        ready: e.template.status == "APPROVED" && eligible > 0,
        template: PreflightTemplate {
            name: row.template_name.clone(),
            language: row.template_language.clone(),
            category: category.as_str().to_owned(),
            status: e.template.status.clone(),
        },
        recipients,
        eligible,
        skipped,
        cost_categories: BTreeMap::from([(category.as_str().to_owned(), eligible)]),
        computed_at: state.clock.now(),
    }
}
