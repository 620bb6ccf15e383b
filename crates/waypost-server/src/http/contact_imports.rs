//! Contact imports over HTTP: the CSV body is streamed into
//! `ops::contact_import`; results are read back as JSON pages or downloaded
//! as CSV, streamed page by page.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use waypost_store::imports::{ImportRow, ImportRowResult};

use super::idempotency::IDEMPOTENCY_HEADER;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::ops::Ctx;
use crate::ops::contact_import::{ImportKey, import_contacts};
use crate::ops::paging::page_limit;
use crate::state::{AppState, RequestOrigin};

#[derive(Serialize, ToSchema)]
pub struct ImportView {
    pub id: String,
    /// The caller's import key (the `Idempotency-Key` of the upload).
    pub key: String,
    /// `running`, `completed` or `failed`.
    pub status: String,
    /// Data rows read (the header not counted).
    pub rows: i64,
    pub created: i64,
    pub updated: i64,
    pub invalid_number: i64,
    pub invalid: i64,
    pub duplicate: i64,
    /// Rows whose marketing consent (or opt-out) was recorded with its evidence.
    pub consent_recorded: i64,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<ImportRow> for ImportView {
    fn from(i: ImportRow) -> Self {
        Self {
            id: i.id,
            key: i.import_key,
            status: i.status,
            rows: i.rows_total,
            created: i.created,
            updated: i.updated,
            invalid_number: i.invalid_number,
            invalid: i.invalid,
            duplicate: i.duplicate,
            consent_recorded: i.consent_recorded,
            error: i.error,
            created_at: i.created_at,
            finished_at: i.finished_at,
        }
    }
}

/// Imports contacts from a CSV file (`Content-Type: text/csv`), read as a stream.
///
/// Columns: `phone` (required), `name`, `language`, `time_zone`, `tags`
/// (`;`-separated), `consent_marketing` (yes/no) with its evidence
/// `consent_source`, `consent_captured_at` and `consent_text`, and the
/// workspace's custom fields. Marketing consent is recorded only with all
/// three pieces of evidence. The `Idempotency-Key` names the import: the same
/// key and file answer the finished import again (200).
#[utoipa::path(operation_id = "import_contacts", post, path = "/v1/contacts/imports", tag = "contacts",
    params(("Idempotency-Key" = String, Header, pattern = "^[A-Za-z0-9._:-]{1,100}$", description = "Your name for this import; reusing it with the same file is safe")),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = ImportView), (status = 200, body = ImportView, description = "replayed: this key and file were imported before"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "import-key-reused or import-in-progress"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "import-too-large"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "unknown-column, invalid-import")),
    security(("api_key" = ["contacts:write"]), ("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ContactsWrite>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ImportView>), ApiError> {
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/csv"));
    if !csv {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the file with Content-Type: text/csv",
        )
        .into());
    }
    let key = headers
        .get(IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            crate::error::unprocessable(
                "the `Idempotency-Key` header names the import and is required",
            )
        })?;
    let key = ImportKey::parse(key)?;
    let ctx = Ctx::of(&auth, origin);
    let result = import_contacts(&state, &ctx, key, body.into_data_stream(), &mut |_| {}).await?;
    let status = if result.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(result.import.into())))
}

/// One import and its counts.
#[utoipa::path(operation_id = "get_contact_import", get, path = "/v1/contacts/imports/{id}", tag = "contacts",
    params(("id" = String, Path)),
    responses((status = 200, body = ImportView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["contacts:read"]), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<act::ContactsRead>,
    Path(id): Path<String>,
) -> Result<Json<ImportView>, ApiError> {
    let row = state
        .store
        .get_import(&auth.workspace_id.to_string(), &id)
        .await?;
    Ok(Json(row.into()))
}

#[derive(Serialize, ToSchema)]
pub struct ImportRowView {
    /// The data row (1 = the first row after the header).
    pub row: i64,
    /// `created`, `updated`, `invalid_number`, `invalid` or `duplicate`.
    pub outcome: String,
    pub contact_id: Option<String>,
    /// `recorded`, `not_recorded` (evidence missing), `kept_opt_out`, or absent.
    pub consent: Option<String>,
    /// What was wrong, naming the column (never the value).
    pub detail: Option<String>,
}

impl From<ImportRowResult> for ImportRowView {
    fn from(r: ImportRowResult) -> Self {
        Self {
            row: r.row_number,
            outcome: r.outcome,
            contact_id: r.contact_id,
            consent: r.consent,
            detail: r.detail,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ImportRowPage {
    pub data: Vec<ImportRowView>,
    /// Pass as `after` for the next page.
    pub next_cursor: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
pub struct RowPageQuery {
    /// The `next_cursor` of the previous page (a row number).
    pub after: Option<i64>,
    /// Page size, 1 to 1000 (default 500).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// An import's per-row results, in row order.
#[utoipa::path(operation_id = "contact_import_rows", get, path = "/v1/contacts/imports/{id}/rows", tag = "contacts",
    params(("id" = String, Path), RowPageQuery),
    responses((status = 200, body = ImportRowPage), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["contacts:read"]), ("session" = [])))]
pub async fn rows(
    State(state): State<AppState>,
    auth: Authorized<act::ContactsRead>,
    Path(id): Path<String>,
    Query(q): Query<RowPageQuery>,
) -> Result<Json<ImportRowPage>, ApiError> {
    let import = state
        .store
        .get_import(&auth.workspace_id.to_string(), &id)
        .await?;
    let limit = page_limit(q.limit, 500, 1000)?;
    let rows = state
        .store
        .import_results(&import.id, q.after.unwrap_or(0), limit)
        .await?;
    let next_cursor = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|r| r.row_number))
        .flatten();
    Ok(Json(ImportRowPage {
        data: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// A CSV cell, quoted when it must be (RFC 4180).
fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// An import's per-row results as a CSV file (`row,outcome,contact_id,consent,detail`).
#[utoipa::path(operation_id = "download_contact_import_rows", get, path = "/v1/contacts/imports/{id}/rows.csv", tag = "contacts",
    params(("id" = String, Path)),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["contacts:read"]), ("session" = [])))]
pub async fn download(
    State(state): State<AppState>,
    auth: Authorized<act::ContactsRead>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let import = state
        .store
        .get_import(&auth.workspace_id.to_string(), &id)
        .await?;
    Ok(results_csv(state, import.id))
}

/// An import's per-row results as a CSV download, streamed page by page (the
/// caller has checked the import belongs to the workspace).
pub fn results_csv(state: AppState, import_id: String) -> Response {
    let disposition = format!("attachment; filename=\"{import_id}-results.csv\"");
    let header_line = "row,outcome,contact_id,consent,detail\n".to_owned();
    // Page by page, so a million-row import never sits in memory.
    let pages = futures_util::stream::unfold(Some(0i64), move |after| {
        let state = state.clone();
        let import_id = import_id.clone();
        async move {
            let after = after?;
            match state.store.import_results(&import_id, after, 1000).await {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let next = (rows.len() == 1000)
                        .then(|| rows.last().map(|r| r.row_number))
                        .flatten();
                    let text: String = rows
                        .iter()
                        .map(|r| {
                            format!(
                                "{},{},{},{},{}\n",
                                r.row_number,
                                r.outcome,
                                r.contact_id.as_deref().unwrap_or(""),
                                r.consent.as_deref().unwrap_or(""),
                                cell(r.detail.as_deref().unwrap_or(""))
                            )
                        })
                        .collect();
                    Some((Ok::<_, std::io::Error>(text), next))
                }
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok(header_line) }),
        pages,
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
