//! Contact imports from CSV, shared by `POST /v1/contacts/imports` and
//! `waypost contacts import`. The file is read as a stream (never held whole),
//! parsed by `csv-core`, and written in batches of [`BATCH_ROWS`], each one
//! transaction; every row gets a result (created, updated, invalid number,
//! invalid, duplicate) kept with the import.
//!
//! Columns: `phone` (required), `name`, `language`, `time_zone`, `tags`
//! (separated by `;` or `|`), `consent_marketing` with its evidence
//! `consent_source`, `consent_captured_at` and `consent_text` (the text the
//! person was shown), and any custom field the workspace has defined. An
//! unknown column fails the import before any row is written. Marketing
//! consent is recorded only with all three pieces of evidence; without them
//! the contact is imported without marketing consent and its result says
//! so. An import never turns a contact's opt-out into an opt-in.
//!
//! The caller's import key makes the upload idempotent: the same key with the
//! same file answers the finished import again; with another file it is a
//! conflict; an import that failed or stopped (its process died) runs again,
//! and rows it had already written keep their first result.

use std::collections::HashMap;
use std::fmt::Display;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use waypost_core::audience::{
    FieldType, ImportOutcome, Language, Tag, TimeZoneName, parse_consent_cell,
};
use waypost_core::phone::E164;
use waypost_core::{ImportId, NewAuditEvent};
use waypost_store::imports::{ImportBegin, ImportRow, ImportRowResult};

use super::Ctx;
use super::audiences::{Fields, attribute_index, fields};
use super::contact_import_batch::{ConsentCell, ParsedRow, write_batch};
use crate::error::{ApiError, Problem};
use crate::messaging::phone_index;
use crate::state::AppState;

/// Bounds of one import: file size, data rows, columns, bytes of one row.
pub const MAX_IMPORT_BYTES: u64 = 100 * 1024 * 1024;
pub const MAX_IMPORT_ROWS: i64 = 1_000_000;
const MAX_COLUMNS: usize = 100;
const MAX_ROW_BYTES: usize = 64 * 1024;
/// Rows written per transaction.
pub const BATCH_ROWS: usize = 500;
/// A `running` import not advanced for this long is taken to have died.
const STALE_AFTER: Duration = Duration::minutes(2);

/// The caller's name for an import: 1 to 100 of `A-Z a-z 0-9 . _ : -`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportKey(String);

impl ImportKey {
    pub fn parse(input: &str) -> Result<Self, ApiError> {
        let ok = (1..=100).contains(&input.len())
            && input
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(crate::error::unprocessable(
                "the import key must be 1 to 100 characters of A-Z, a-z, 0-9, `.`, `_`, `:` and `-`",
            ))
        }
    }
}

/// How far an import has come, for progress bars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportProgress {
    pub rows: i64,
    pub bytes: u64,
}

/// The finished import, and whether an earlier upload with the same key made it.
#[derive(Debug, Clone)]
pub struct ImportResult {
    pub import: ImportRow,
    pub replayed: bool,
}

fn problem(status: u16, kind: &str, title: &str, detail: impl Into<String>) -> ApiError {
    Problem::new(
        axum::http::StatusCode::from_u16(status).expect("a valid status"),
        kind,
        title,
        detail,
    )
    .into()
}

/// What a column of the file holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Column {
    Phone,
    Name,
    Language,
    TimeZone,
    Tags,
    ConsentMarketing,
    ConsentSource,
    ConsentCapturedAt,
    ConsentText,
    Attribute(String, FieldType),
}

fn columns(header: &[&str], fields: &Fields) -> Result<Vec<Column>, ApiError> {
    let mut seen = std::collections::HashSet::new();
    let cols = header
        .iter()
        .map(|h| {
            let name = h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase();
            if !seen.insert(name.clone()) {
                return Err(problem(422, "invalid-import", "Invalid import", format!("column `{name}` appears twice")));
            }
            Ok(match name.as_str() {
                "phone" => Column::Phone,
                "name" => Column::Name,
                "language" => Column::Language,
                "time_zone" => Column::TimeZone,
                "tags" => Column::Tags,
                "consent_marketing" => Column::ConsentMarketing,
                "consent_source" => Column::ConsentSource,
                "consent_captured_at" => Column::ConsentCapturedAt,
                "consent_text" => Column::ConsentText,
                other => match fields.get(other) {
                    Some(t) => Column::Attribute(other.to_owned(), *t),
                    None => {
                        return Err(Problem::new(
                            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                            "unknown-column",
                            "Unknown column",
                            format!(
                                "column `{}` is neither a contact column nor a custom field of the workspace (define it with POST /v1/contacts/fields)",
                                other.chars().take(64).collect::<String>()
                            ),
                        )
                        .with("column", other.chars().take(64).collect::<String>().into())
                        .into());
                    }
                },
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !cols.contains(&Column::Phone) {
        return Err(problem(
            422,
            "invalid-import",
            "Invalid import",
            "the header has no `phone` column",
        ));
    }
    Ok(cols)
}

/// Either a row to write, or its result already.
enum Parsed {
    Write(Box<ParsedRow>),
    Done(ImportRowResult),
}

fn done(row: i64, outcome: ImportOutcome, detail: impl Into<String>) -> Parsed {
    Parsed::Done(ImportRowResult {
        row_number: row,
        outcome: outcome.as_str().to_owned(),
        contact_id: None,
        consent: None,
        detail: Some(detail.into()),
    })
}

fn parse_time(cell: &str) -> Option<DateTime<Utc>> {
    let t = cell.trim();
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
        })
}

/// One data row: validated, or its result when it is not valid.
fn parse_row(
    state: &AppState,
    workspace_id: &str,
    cols: &[Column],
    cells: &[&str],
    row: i64,
    now: DateTime<Utc>,
) -> Parsed {
    let mut p = ParsedRow {
        row,
        ..ParsedRow::default()
    };
    let (mut consent, mut source, mut captured, mut text) = (None, None, None, None);
    let mut phone = None;
    for (col, cell) in cols
        .iter()
        .zip(cells.iter().copied().chain(std::iter::repeat("")))
    {
        let cell = cell.trim();
        match col {
            Column::Phone => phone = Some(cell),
            _ if cell.is_empty() => {}
            Column::Name if cell.chars().count() > 200 => {
                return done(
                    row,
                    ImportOutcome::Invalid,
                    "name: must be at most 200 characters",
                );
            }
            Column::Name => p.name = Some(cell.to_owned()),
            Column::Language => match Language::parse(cell) {
                Ok(l) => p.language = Some(l.as_str().to_owned()),
                Err(e) => return done(row, ImportOutcome::Invalid, format!("language: {e}")),
            },
            Column::TimeZone => match TimeZoneName::parse(cell) {
                Ok(t) => p.time_zone = Some(t.as_str().to_owned()),
                Err(e) => return done(row, ImportOutcome::Invalid, format!("time_zone: {e}")),
            },
            Column::Tags => {
                for t in cell.split([';', '|']).filter(|t| !t.trim().is_empty()) {
                    match Tag::parse(t) {
                        Ok(t) => p.tags.push(t.to_string()),
                        Err(e) => return done(row, ImportOutcome::Invalid, format!("tags: {e}")),
                    }
                }
                p.tags.sort();
                p.tags.dedup();
            }
            Column::ConsentMarketing => match parse_consent_cell(cell) {
                Ok(c) => consent = c,
                Err(e) => {
                    return done(
                        row,
                        ImportOutcome::Invalid,
                        format!("consent_marketing: {e}"),
                    );
                }
            },
            Column::ConsentSource if cell.chars().count() > 200 => {
                return done(
                    row,
                    ImportOutcome::Invalid,
                    "consent_source: must be at most 200 characters",
                );
            }
            Column::ConsentSource => source = Some(cell.to_owned()),
            Column::ConsentCapturedAt => match parse_time(cell) {
                Some(t) if t <= now + Duration::minutes(5) => captured = Some(t),
                Some(_) => {
                    return done(
                        row,
                        ImportOutcome::Invalid,
                        "consent_captured_at: must not be in the future",
                    );
                }
                None => {
                    return done(
                        row,
                        ImportOutcome::Invalid,
                        "consent_captured_at: must be an RFC 3339 time or a date YYYY-MM-DD",
                    );
                }
            },
            Column::ConsentText if cell.chars().count() > 4000 => {
                return done(
                    row,
                    ImportOutcome::Invalid,
                    "consent_text: must be at most 4000 characters",
                );
            }
            Column::ConsentText => text = Some(cell.to_owned()),
            Column::Attribute(key, t) => match t.parse_text(cell) {
                Ok(v) => {
                    if let Some(i) = attribute_index(&state.keys, workspace_id, key, &v) {
                        p.attribute_indexes.push((key.clone(), i));
                    }
                    p.attributes.insert(key.clone(), v);
                }
                Err(e) => return done(row, ImportOutcome::Invalid, format!("{key}: {e}")),
            },
        }
    }
    let phone = match phone.map(E164::parse) {
        Some(Ok(phone)) => phone,
        Some(Err(e)) => return done(row, ImportOutcome::InvalidNumber, format!("phone: {e}")),
        None => return done(row, ImportOutcome::InvalidNumber, "phone: missing"),
    };
    p.index = phone_index(&state.keys, workspace_id, &phone);
    p.phone = Some(phone);
    p.consent = match (consent, source, captured, text) {
        (None, ..) => ConsentCell::None,
        (Some(true), Some(source), Some(at), Some(text)) => ConsentCell::OptIn { source, at, text },
        (Some(true), ..) => ConsentCell::MissingEvidence,
        (Some(false), source, at, _) => ConsentCell::OptOut {
            source: source.unwrap_or_else(|| "import".to_owned()),
            at: at.unwrap_or(now),
        },
    };
    Parsed::Write(Box::new(p))
}

/// Imports a CSV file read from `body`, calling `progress` after each batch.
pub async fn import_contacts<S, B, E>(
    state: &AppState,
    ctx: &Ctx,
    key: ImportKey,
    mut body: S,
    progress: &mut (dyn FnMut(ImportProgress) + Send),
) -> Result<ImportResult, ApiError>
where
    S: Stream<Item = Result<B, E>> + Unpin + Send,
    B: AsRef<[u8]>,
    E: Display,
{
    let now = state.clock.now();
    let mut import = ImportRow {
        id: ImportId::new().to_string(),
        workspace_id: ctx.workspace.clone(),
        import_key: key.0.clone(),
        content_hash: None,
        status: "running".to_owned(),
        rows_total: 0,
        created: 0,
        updated: 0,
        invalid_number: 0,
        invalid: 0,
        duplicate: 0,
        consent_recorded: 0,
        error: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
    };
    let audit = NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "contact_import.started",
    )
    .target("contact_import", import.id.clone())
    .details(serde_json::json!({ "key": key.0 }));
    match state
        .store
        .begin_import(&import, ctx.origin.stamp(audit))
        .await?
    {
        ImportBegin::Started => {}
        ImportBegin::Existing(existing) if existing.status == "completed" => {
            let hash = drain_hash(&mut body).await?;
            if existing.content_hash.as_deref() == Some(hash.as_slice()) {
                return Ok(ImportResult {
                    import: *existing,
                    replayed: true,
                });
            }
            return Err(Problem::new(
                axum::http::StatusCode::CONFLICT,
                "import-key-reused",
                "Import key reused",
                "An import with this key finished with another file; choose a new key.",
            )
            .with("import_id", existing.id.into())
            .into());
        }
        ImportBegin::Existing(existing)
            if existing.status == "running" && existing.updated_at > now - STALE_AFTER =>
        {
            return Err(Problem::new(
                axum::http::StatusCode::CONFLICT,
                "import-in-progress",
                "Import in progress",
                "An import with this key is running; wait for it or use its id to follow it.",
            )
            .with("import_id", existing.id.into())
            .into());
        }
        ImportBegin::Existing(existing) => {
            state
                .store
                .restart_import(&ctx.workspace, &existing.id, now)
                .await?;
            import = *existing;
        }
    }
    let outcome = run(state, ctx, &import, &mut body, progress).await;
    let finished = state.clock.now();
    import.updated_at = finished;
    import.finished_at = Some(finished);
    let (action, failure) = match &outcome {
        Ok((hash, rows)) => {
            import.status = "completed".to_owned();
            import.content_hash = Some(hash.clone());
            import.rows_total = *rows;
            ("contact_import.completed", None)
        }
        Err(e) => {
            import.status = "failed".to_owned();
            import.error = Some(failure_text(e));
            ("contact_import.failed", import.error.clone())
        }
    };
    let audit = NewAuditEvent::new(Some(ctx.workspace_id), ctx.actor.clone(), action)
        .target("contact_import", import.id.clone());
    let audit = ctx.origin.stamp(audit);
    let saved = state.store.finish_import(&import, audit.clone()).await?;
    tracing::info!(
        import_id = %saved.id, status = %saved.status, rows = saved.rows_total,
        created = saved.created, updated = saved.updated, error = ?failure,
        "contact import finished"
    );
    outcome?;
    Ok(ImportResult {
        import: saved,
        replayed: false,
    })
}

/// What an import's failure says to whoever reads it later (no values from the file).
fn failure_text(e: &ApiError) -> String {
    match e {
        ApiError::Problem(p) => p.detail.clone(),
        _ => "internal error".to_owned(),
    }
}

async fn drain_hash<S, B, E>(body: &mut S) -> Result<Vec<u8>, ApiError>
where
    S: Stream<Item = Result<B, E>> + Unpin + Send,
    B: AsRef<[u8]>,
    E: Display,
{
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(read_failed)?;
        bytes += chunk.as_ref().len() as u64;
        if bytes > MAX_IMPORT_BYTES {
            return Err(too_large());
        }
        hash.update(chunk.as_ref());
    }
    Ok(hash.finalize().to_vec())
}

fn read_failed(e: impl Display) -> ApiError {
    problem(
        400,
        "upload-interrupted",
        "Upload interrupted",
        format!("the file could not be read to its end: {e}"),
    )
}

fn too_large() -> ApiError {
    problem(
        413,
        "import-too-large",
        "Import too large",
        format!(
            "an import holds at most {MAX_IMPORT_BYTES} bytes and {MAX_IMPORT_ROWS} rows; split the file"
        ),
    )
}

/// Reads, parses and writes the whole file; returns its hash and the data rows read.
async fn run<S, B, E>(
    state: &AppState,
    ctx: &Ctx,
    import: &ImportRow,
    body: &mut S,
    progress: &mut (dyn FnMut(ImportProgress) + Send),
) -> Result<(Vec<u8>, i64), ApiError>
where
    S: Stream<Item = Result<B, E>> + Unpin + Send,
    B: AsRef<[u8]>,
    E: Display,
{
    let fields = fields(state, &ctx.workspace).await?;
    let now = state.clock.now();
    let mut reader = csv_core::ReaderBuilder::new().build();
    let mut hash = Sha256::new();
    let (mut out, mut ends) = (vec![0u8; 4096], vec![0usize; 16]);
    let (mut out_len, mut ends_len) = (0usize, 0usize);
    let mut cols: Option<Vec<Column>> = None;
    let mut seen: HashMap<Vec<u8>, i64> = HashMap::new();
    let (mut pending, mut results) = (Vec::new(), Vec::new());
    let (mut row, mut bytes) = (0i64, 0u64);
    // The chunk being parsed and how far into it: draining each record off
    // the front would move the rest of the chunk once per row.
    let (mut chunk, mut pos): (Vec<u8>, usize) = (Vec::new(), 0);
    let mut finished_input = false;
    let mut batches = 0u64;
    loop {
        if pos == chunk.len() && !finished_input {
            match body.next().await {
                Some(c) => {
                    let c = c.map_err(read_failed)?;
                    bytes += c.as_ref().len() as u64;
                    if bytes > MAX_IMPORT_BYTES {
                        return Err(too_large());
                    }
                    hash.update(c.as_ref());
                    chunk = c.as_ref().to_vec();
                    pos = 0;
                    continue;
                }
                None => finished_input = true,
            }
        }
        let (res, read, written, ended) =
            reader.read_record(&chunk[pos..], &mut out[out_len..], &mut ends[ends_len..]);
        pos += read;
        out_len += written;
        ends_len += ended;
        match res {
            csv_core::ReadRecordResult::InputEmpty => continue,
            csv_core::ReadRecordResult::OutputFull => {
                if out.len() >= MAX_ROW_BYTES {
                    return Err(problem(
                        422,
                        "invalid-import",
                        "Invalid import",
                        format!("row {} is longer than {MAX_ROW_BYTES} bytes", row + 1),
                    ));
                }
                out.resize(out.len() * 2, 0);
            }
            csv_core::ReadRecordResult::OutputEndsFull => {
                if ends.len() >= MAX_COLUMNS {
                    return Err(problem(
                        422,
                        "invalid-import",
                        "Invalid import",
                        format!("a row has more than {MAX_COLUMNS} columns"),
                    ));
                }
                ends.resize(ends.len() * 2, 0);
            }
            csv_core::ReadRecordResult::Record => {
                let record = &out[..out_len];
                let mut start = 0;
                let mut cells = Vec::with_capacity(ends_len);
                let mut utf8 = true;
                for &end in &ends[..ends_len] {
                    match std::str::from_utf8(&record[start..end]) {
                        Ok(s) => cells.push(s),
                        Err(_) => utf8 = false,
                    }
                    start = end;
                }
                let blank = cells.iter().all(|c| c.trim().is_empty());
                match &cols {
                    None if !utf8 => {
                        return Err(problem(
                            422,
                            "invalid-import",
                            "Invalid import",
                            "the header is not UTF-8",
                        ));
                    }
                    None => cols = Some(columns(&cells, &fields)?),
                    Some(_) if blank && utf8 => {}
                    Some(cols) => {
                        row += 1;
                        if row > MAX_IMPORT_ROWS {
                            return Err(too_large());
                        }
                        let parsed = if utf8 {
                            parse_row(state, &ctx.workspace, cols, &cells, row, now)
                        } else {
                            done(row, ImportOutcome::Invalid, "the row is not UTF-8")
                        };
                        match parsed {
                            Parsed::Done(r) => results.push(r),
                            Parsed::Write(p) => match seen.get(&p.index) {
                                Some(first) => {
                                    let d = done(
                                        row,
                                        ImportOutcome::Duplicate,
                                        format!("same number as row {first}"),
                                    );
                                    if let Parsed::Done(r) = d {
                                        results.push(r);
                                    }
                                }
                                None => {
                                    seen.insert(p.index.clone(), row);
                                    pending.push(*p);
                                }
                            },
                        }
                        if pending.len() + results.len() >= BATCH_ROWS {
                            write_batch(
                                state,
                                import,
                                std::mem::take(&mut pending),
                                std::mem::take(&mut results),
                                row,
                            )
                            .await?;
                            batches += 1;
                            if batches.is_power_of_two()
                                && batches.trailing_zeros().is_multiple_of(2)
                            {
                                // After 1, 4, 16, 64, … batches: the lookups plan for the table
                                // as it is now, at a cost that stays small against the writes.
                                // Only a plan depends on it: the import goes on without.
                                if let Err(e) = state.store.analyze_contacts().await {
                                    tracing::warn!(error = %e, "contact import: cannot refresh the planner's statistics");
                                }
                            }
                            progress(ImportProgress { rows: row, bytes });
                        }
                    }
                }
                out_len = 0;
                ends_len = 0;
            }
            csv_core::ReadRecordResult::End => break,
        }
    }
    if cols.is_none() {
        return Err(problem(
            422,
            "invalid-import",
            "Invalid import",
            "the file is empty: it needs a header row with a `phone` column",
        ));
    }
    if !pending.is_empty() || !results.is_empty() {
        write_batch(state, import, pending, results, row).await?;
    }
    progress(ImportProgress { rows: row, bytes });
    Ok((hash.finalize().to_vec(), row))
}
