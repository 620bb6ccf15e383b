//! Contact import from the browser: a CSV file posted as `multipart/form-data`
//! and streamed field by field into `ops::contact_import` (the same operation
//! as `POST /v1/contacts/imports`), then its counts (created, updated,
//! invalid, duplicate), the rows that need attention, and the per-row results
//! as a CSV download. The form's CSRF token must come before the file, so a
//! forged upload is refused before a byte of it is read.

use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use waypost_core::ImportId;
use waypost_crypto::token;
use waypost_store::imports::{ImportRow, ImportRowResult};

use super::form::expired_form;
use super::page::{Chrome, Page, PageError, render};
use crate::auth::permission::act;
use crate::error::{ApiError, unprocessable};
use crate::ops::contact_import::{ImportKey, MAX_IMPORT_BYTES, import_contacts};
use crate::state::AppState;

/// Rows of the results scanned for the ones that need attention.
const ATTENTION_SCAN: u32 = 1000;
/// Of those, how many the page shows.
const ATTENTION_SHOWN: usize = 50;

#[derive(Template)]
#[template(path = "import_new.html")]
struct ImportForm {
    chrome: Chrome,
    key: String,
    max_mb: u64,
    error: Option<String>,
}

fn form_page(chrome: Chrome, status: StatusCode, error: Option<String>) -> Response {
    render(
        status,
        &ImportForm {
            chrome,
            // A new name per form: submitting the same form twice replays the first import.
            key: format!("web-{}", ImportId::new()),
            max_mb: MAX_IMPORT_BYTES / 1_000_000,
            error,
        },
    )
}

/// `GET /audiences/imports`.
pub async fn new_form(page: Page<act::ContactsWrite>) -> Response {
    form_page(page.chrome, StatusCode::OK, None)
}

/// `POST /audiences/imports`: the fields `csrf`, `key` and `file`, in that order.
pub async fn upload(
    State(state): State<AppState>,
    page: Page<act::ContactsWrite>,
    mut multipart: Multipart,
) -> Result<Response, PageError> {
    let mut key: Option<String> = None;
    let mut csrf_ok = false;
    let ring = state.keys.current();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Ok(refused(
                    page,
                    unprocessable(format!("The upload could not be read: {e}.")),
                ));
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "csrf" => {
                let t = field.text().await.unwrap_or_default();
                csrf_ok = token::verify_csrf_token(&page.session().token_hash, &ring, &t);
            }
            _ if !csrf_ok => return Ok(expired_form()),
            "key" => key = Some(field.text().await.unwrap_or_default()),
            "file" => {
                if field.file_name().is_none_or(str::is_empty) {
                    return Ok(refused(page, unprocessable("Choose a CSV file to import.")));
                }
                let key = match ImportKey::parse(key.as_deref().unwrap_or_default()) {
                    Ok(k) => k,
                    Err(e) => return Ok(refused(page, e)),
                };
                let body = Box::pin(field);
                let result = import_contacts(&state, &page.ctx(), key, body, &mut |_| {}).await;
                return match result {
                    Ok(r) => Ok(Redirect::to(&format!("/audiences/imports/{}", r.import.id))
                        .into_response()),
                    Err(e) => Ok(refused(page, e)),
                };
            }
            _ => {}
        }
    }
    if !csrf_ok {
        return Ok(expired_form());
    }
    Ok(refused(page, unprocessable("Choose a CSV file to import.")))
}

/// The form again with what was wrong, for refusals the member can fix.
fn refused(page: Page<act::ContactsWrite>, e: ApiError) -> Response {
    match e {
        ApiError::Problem(p) if p.status < 500 => {
            form_page(page.chrome, p.status_code(), Some(p.detail))
        }
        e => PageError(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    chrome: Chrome,
    i: ImportRow,
    attention: Vec<ImportRowResult>,
    more_attention: bool,
    running: bool,
}

/// `GET /audiences/imports/{id}`: counts, refreshed while the import runs.
pub async fn show(
    State(state): State<AppState>,
    page: Page<act::ContactsRead>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let i = state
        .store
        .get_import(&page.workspace_id.to_string(), &id)
        .await?;
    let mut attention: Vec<ImportRowResult> = state
        .store
        .import_results(&i.id, 0, ATTENTION_SCAN)
        .await?
        .into_iter()
        .filter(|r| !matches!(r.outcome.as_str(), "created" | "updated"))
        .collect();
    let more_attention = attention.len() > ATTENTION_SHOWN;
    attention.truncate(ATTENTION_SHOWN);
    Ok(render(
        StatusCode::OK,
        &ImportPage {
            chrome: page.chrome,
            running: i.status == "running",
            i,
            attention,
            more_attention,
        },
    ))
}

/// `GET /audiences/imports/{id}/results.csv`.
pub async fn results(
    State(state): State<AppState>,
    page: Page<act::ContactsRead>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let import = state
        .store
        .get_import(&page.workspace_id.to_string(), &id)
        .await?;
    Ok(crate::http::contact_imports::results_csv(state, import.id))
}
