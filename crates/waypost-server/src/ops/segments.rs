//! Segments: named, saved audience filters, counted live when read ("12,408
//! contacts, 11,930 with marketing consent"). The filter is stored encrypted
//! (AAD `segments`, `definition`, id): it may quote custom attribute values.

use waypost_core::{NewAuditEvent, SegmentId};
use waypost_crypto::Aad;
use waypost_store::StoreError;
use waypost_store::audiences::{AudienceCounts, SegmentRow};
use waypost_store::messaging::ContactRow;

use super::Ctx;
use super::audiences::{AudienceFilter, fields};
use crate::error::{ApiError, Problem, unprocessable};
use crate::state::AppState;

/// A segment with its filter opened.
#[derive(Debug, Clone)]
pub struct Segment {
    pub row: SegmentRow,
    pub filter: AudienceFilter,
}

/// A segment to save.
#[derive(Debug, Clone)]
pub struct NewSegment {
    pub name: String,
    pub filter: AudienceFilter,
}

impl NewSegment {
    pub fn parse(name: &str, filter: AudienceFilter) -> Result<Self, ApiError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(unprocessable("`name` must be 1 to 100 characters"));
        }
        Ok(Self {
            name: name.to_owned(),
            filter,
        })
    }
}

fn open(state: &AppState, row: SegmentRow) -> Result<Segment, ApiError> {
    let plain = state
        .keys
        .current()
        .decrypt(Aad::new("segments", "definition", &row.id), &row.definition)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let filter = serde_json::from_slice(&plain).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Segment { row, filter })
}

/// Saves a segment (audited) after checking its filter; `409 segment-exists` when the name is taken.
pub async fn create_segment(
    state: &AppState,
    ctx: &Ctx,
    input: NewSegment,
) -> Result<Segment, ApiError> {
    let fields = fields(state, &ctx.workspace).await?;
    let (filter, _) = input.filter.to_query(state, &ctx.workspace, &fields)?;
    let id = SegmentId::new().to_string();
    let now = state.clock.now();
    let json = serde_json::to_vec(&filter).expect("a filter serialises");
    let row = SegmentRow {
        definition: state
            .keys
            .current()
            .encrypt(Aad::new("segments", "definition", &id), &json),
        id,
        workspace_id: ctx.workspace.clone(),
        name: input.name,
        created_at: now,
        updated_at: now,
    };
    // The audit names the kinds of condition, not their values (they may be personal).
    let audit = NewAuditEvent::new(Some(ctx.workspace_id), ctx.actor.clone(), "segment.created")
        .target("segment", row.id.clone())
        .details(serde_json::json!({ "name": row.name, "conditions": conditions(&filter) }));
    match state
        .store
        .create_segment(&row, ctx.origin.stamp(audit))
        .await
    {
        Ok(()) => Ok(Segment { row, filter }),
        Err(StoreError::Conflict(_)) => Err(Problem::new(
            axum::http::StatusCode::CONFLICT,
            "segment-exists",
            "Segment exists",
            "The workspace already has a segment with this name.",
        )
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// The kinds of condition a filter has (`tags`, `attributes.city`, `consent.marketing`, …).
fn conditions(f: &AudienceFilter) -> Vec<String> {
    let mut c = Vec::new();
    if !f.tags.is_empty() {
        c.push("tags".to_owned());
    }
    c.extend(f.attributes.keys().map(|k| format!("attributes.{k}")));
    for (name, set) in [
        ("language", f.language.is_some()),
        ("consent.marketing", f.consent.marketing.is_some()),
        ("consent.utility", f.consent.utility.is_some()),
        ("consent.authentication", f.consent.authentication.is_some()),
        ("last_inbound_after", f.last_inbound_after.is_some()),
        ("last_inbound_before", f.last_inbound_before.is_some()),
        ("created_after", f.created_after.is_some()),
        ("created_before", f.created_before.is_some()),
    ] {
        if set {
            c.push(name.to_owned());
        }
    }
    c
}

pub async fn get_segment(
    state: &AppState,
    workspace_id: &str,
    id: &str,
) -> Result<Segment, ApiError> {
    open(state, state.store.get_segment(workspace_id, id).await?)
}

/// How many contacts the segment holds now, and how many of them may get marketing.
pub async fn count_segment(
    state: &AppState,
    workspace_id: &str,
    segment: &Segment,
) -> Result<AudienceCounts, ApiError> {
    let fields = fields(state, workspace_id).await?;
    let (_, query) = segment.filter.to_query(state, workspace_id, &fields)?;
    Ok(state.store.count_contacts(workspace_id, &query).await?)
}

/// A page of segments and the next cursor.
pub async fn list_segments(
    state: &AppState,
    workspace_id: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<Segment>, Option<String>), ApiError> {
    let rows = state
        .store
        .list_segments(workspace_id, after, limit)
        .await?;
    let next = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|s| s.id.clone()))
        .flatten();
    let segments = rows
        .into_iter()
        .map(|r| open(state, r))
        .collect::<Result<_, _>>()?;
    Ok((segments, next))
}

/// A page of the segment's contacts now.
pub async fn segment_contacts(
    state: &AppState,
    workspace_id: &str,
    id: &str,
    after: Option<String>,
    limit: u32,
) -> Result<(Vec<ContactRow>, Option<String>), ApiError> {
    let segment = get_segment(state, workspace_id, id).await?;
    super::audiences::find_contacts(state, workspace_id, &segment.filter, after, limit).await
}

/// Deletes a segment (audited).
pub async fn delete_segment(state: &AppState, ctx: &Ctx, id: &str) -> Result<(), ApiError> {
    let audit = NewAuditEvent::new(Some(ctx.workspace_id), ctx.actor.clone(), "segment.deleted")
        .target("segment", id.to_owned());
    state
        .store
        .delete_segment(&ctx.workspace, id, ctx.origin.stamp(audit))
        .await?;
    Ok(())
}
