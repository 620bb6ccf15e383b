//! The assistant's knowledge base: FAQ entries (a question and its answer,
//! one passage) and uploaded text or markdown documents, split into passages
//! that the database's full-text search finds. Business content, not
//! customers' data: stored as written so it can be searched.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_core::NewAuditEvent;
use waypost_core::assistant::chunk_document;
use waypost_store::knowledge::KnowledgeDocumentRow;

use super::Ctx;
use crate::error::{ApiError, unprocessable};
use crate::state::AppState;

/// The largest document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 512 * 1024;
/// About how long a passage is.
const CHUNK_CHARS: usize = 800;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFaq {
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub question: String,
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    pub answer: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KnowledgeView {
    pub id: String,
    /// `faq` or `document`.
    pub kind: String,
    pub title: String,
    /// Passages the search can return.
    pub chunks: i64,
    pub created_at: DateTime<Utc>,
}

fn view(r: KnowledgeDocumentRow) -> KnowledgeView {
    KnowledgeView {
        id: r.id,
        kind: r.kind,
        title: r.title,
        chunks: r.chunks,
        created_at: r.created_at,
    }
}

async fn add(
    state: &AppState,
    ctx: &Ctx,
    kind: &str,
    title: String,
    chunks: Vec<String>,
) -> Result<KnowledgeView, ApiError> {
    let row = KnowledgeDocumentRow {
        id: format!("kb_{}", ulid::Ulid::new()),
        workspace_id: ctx.workspace.clone(),
        kind: kind.into(),
        title,
        chunks: chunks.len() as i64,
        created_at: state.clock.now(),
    };
    let audit = ctx
        .origin
        .stamp(NewAuditEvent::new(
            Some(ctx.workspace_id),
            ctx.actor.clone(),
            "knowledge.added",
        ))
        .target("knowledge", row.id.clone())
        .details(serde_json::json!({"kind": kind, "chunks": row.chunks}));
    state.store.add_knowledge(&row, &chunks, audit).await?;
    Ok(view(row))
}

pub async fn add_faq(state: &AppState, ctx: &Ctx, faq: NewFaq) -> Result<KnowledgeView, ApiError> {
    let (q, a) = (faq.question.trim(), faq.answer.trim());
    if q.is_empty() || q.len() > 500 || a.is_empty() || a.len() > 4000 {
        return Err(unprocessable(
            "`question` (1 to 500 characters) and `answer` (1 to 4000) are required",
        ));
    }
    let passage = format!("Q: {q}\nA: {a}");
    add(state, ctx, "faq", q.to_owned(), vec![passage]).await
}

/// A text or markdown document, split into passages.
pub async fn add_document(
    state: &AppState,
    ctx: &Ctx,
    title: String,
    body: &[u8],
) -> Result<KnowledgeView, ApiError> {
    if title.trim().is_empty() || title.len() > 200 {
        return Err(unprocessable(
            "the document's title must be 1 to 200 characters",
        ));
    }
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(unprocessable(format!(
            "a document may have at most {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| unprocessable("a document must be UTF-8 text or markdown"))?;
    let chunks = chunk_document(text, CHUNK_CHARS);
    if chunks.is_empty() {
        return Err(unprocessable("the document is empty"));
    }
    add(state, ctx, "document", title.trim().to_owned(), chunks).await
}

pub async fn list(state: &AppState, ctx: &Ctx) -> Result<Vec<KnowledgeView>, ApiError> {
    Ok(state
        .store
        .list_knowledge(&ctx.workspace)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

pub async fn delete(state: &AppState, ctx: &Ctx, id: &str) -> Result<(), ApiError> {
    let audit = ctx
        .origin
        .stamp(NewAuditEvent::new(
            Some(ctx.workspace_id),
            ctx.actor.clone(),
            "knowledge.deleted",
        ))
        .target("knowledge", id.to_owned());
    Ok(state
        .store
        .delete_knowledge(&ctx.workspace, id, audit)
        .await?)
}
