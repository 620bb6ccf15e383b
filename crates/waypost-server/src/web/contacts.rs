//! Contacts: the list with search (an exact number through the blind index,
//! or a name), one contact with consent history, and erasure with step-up.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use waypost_core::auth::Action;
use waypost_crypto::Aad;
use waypost_store::messaging::ContactRow;

use super::form::{Button, PageForm};
use super::page::{Chrome, Page, PageError, needs_reauth, render};
use super::signin::reauth_redirect;
use crate::auth::permission::act;
use crate::error::ApiError;
use crate::http::contacts::{ConsentEntry, ContactView, consent_entries, view_one, views};
use crate::messaging::identity::Identity;
use crate::ops::contacts::find_contact;
use crate::ops::privacy;
use crate::state::AppState;

/// How many contacts a name search reads (names are encrypted, so it decrypts them).
const NAME_SCAN: u32 = 2_000;
const PAGE_SIZE: u32 = 100;

/// A contact's decrypted name.
pub fn contact_name(state: &AppState, c: &ContactRow) -> Result<Option<String>, ApiError> {
    c.name
        .as_deref()
        .map(|v| {
            state
                .keys
                .current()
                .decrypt(Aad::new("contacts", "name", &c.id), v)
                .map(|p| String::from_utf8_lossy(&p).into_owned())
        })
        .transpose()
        .map_err(|e| ApiError::Internal(e.into()))
}

#[derive(Template)]
#[template(path = "contacts.html")]
struct ContactsPage {
    chrome: Chrome,
    q: String,
    contacts: Vec<ContactView>,
    note: Option<String>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct ContactsQuery {
    q: Option<String>,
    after: Option<String>,
    erased: Option<String>,
}

/// `GET /contacts`.
pub async fn index(
    State(state): State<AppState>,
    page: Page<act::ContactsRead>,
    Query(query): Query<ContactsQuery>,
) -> Result<Response, PageError> {
    let ws = page.workspace_id.to_string();
    let q = query.q.unwrap_or_default().trim().to_owned();
    let mut note = query.erased.is_some().then(|| {
        "The contact was erased: its messages, consent history, media and events are gone."
            .to_owned()
    });
    let mut next = None;
    let contacts = if q.is_empty() {
        let rows = state
            .store
            .list_contacts(&ws, query.after.as_deref(), PAGE_SIZE)
            .await?;
        next = (rows.len() as u32 == PAGE_SIZE)
            .then(|| rows.last().map(|c| c.id.clone()))
            .flatten();
        views(&state, rows).await?
    } else if let Ok(phone) = waypost_core::phone::E164::parse(&q) {
        let who = Identity {
            phone: Some(phone),
            ..Identity::default()
        };
        match find_contact(&state, &ws, &who)
            .await
            .map_err(ApiError::Internal)?
        {
            Some(c) => vec![view_one(&state, c).await?],
            None => Vec::new(),
        }
    } else {
        let needle = q.to_lowercase();
        let rows = state.store.list_contacts(&ws, None, NAME_SCAN).await?;
        if rows.len() as u32 == NAME_SCAN {
            note = Some(format!(
                "Name search looked at the first {NAME_SCAN} contacts; search by number to find anyone."
            ));
        }
        let mut found = Vec::new();
        for c in rows {
            if contact_name(&state, &c)?.is_some_and(|n| n.to_lowercase().contains(&needle)) {
                found.push(c);
            }
        }
        views(&state, found).await?
    };
    Ok(render(
        StatusCode::OK,
        &ContactsPage {
            chrome: page.chrome,
            q,
            contacts,
            note,
            next,
        },
    ))
}

#[derive(Template)]
#[template(path = "contact.html")]
struct ContactPage {
    chrome: Chrome,
    contact: ContactView,
    history: Vec<ConsentEntry>,
    can_erase: bool,
    error: Option<String>,
}

/// `GET /contacts/{id}`.
pub async fn show(
    State(state): State<AppState>,
    page: Page<act::ContactsRead>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let ws = page.workspace_id.to_string();
    let row = state.store.get_contact(&ws, &id).await?;
    let history = consent_entries(&state, &ws, &id).await?;
    Ok(render(
        StatusCode::OK,
        &ContactPage {
            can_erase: page.chrome.may(Action::PrivacyManage),
            chrome: page.chrome,
            contact: view_one(&state, row).await?,
            history,
            error: None,
        },
    ))
}

#[derive(Deserialize)]
pub struct EraseForm {
    confirm: String,
}

/// `POST /contacts/{id}/erase`: needs a recent sign-in (else the
/// re-authentication page, which returns here) and the word typed out.
pub async fn erase(
    State(state): State<AppState>,
    page: Page<act::PrivacyManage>,
    Path(id): Path<String>,
    PageForm(f): PageForm<EraseForm>,
) -> Result<Response, PageError> {
    let ws = page.workspace_id.to_string();
    let row = state.store.get_contact(&ws, &id).await?;
    if !f.confirm.trim().eq_ignore_ascii_case("erase") {
        let history = consent_entries(&state, &ws, &id).await?;
        return Ok(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ContactPage {
                can_erase: true,
                chrome: page.chrome,
                contact: view_one(&state, row).await?,
                history,
                error: Some("Type ERASE to confirm.".into()),
            },
        ));
    }
    let ctx = page.ctx();
    let subject = match privacy::subject_of_contact(&state, &ctx, &page.caller, row) {
        Ok(s) => s,
        Err(e) if needs_reauth(&e) => {
            return Ok(reauth_redirect(&format!("/contacts/{id}#erase")));
        }
        Err(e) => return Err(e.into()),
    };
    privacy::erase(&state, &ctx, &subject).await?;
    Ok(Redirect::to("/contacts?erased=1").into_response())
}

/// The subject behind a contact, for a data-subject request from its page;
/// a stale sign-in sends the member to re-authenticate and come back.
async fn contact_subject(
    state: &AppState,
    page: &Page<act::PrivacyManage>,
    id: &str,
) -> Result<Result<privacy::Subject, Response>, PageError> {
    let row = state
        .store
        .get_contact(&page.workspace_id.to_string(), id)
        .await?;
    match privacy::subject_of_contact(state, &page.ctx(), &page.caller, row) {
        Ok(s) => Ok(Ok(s)),
        Err(e) if needs_reauth(&e) => Ok(Err(reauth_redirect(&format!("/contacts/{id}#rights")))),
        Err(e) => Err(e.into()),
    }
}

/// `POST /contacts/{id}/export`: everything about the person, as a JSON download.
pub async fn export(
    State(state): State<AppState>,
    page: Page<act::PrivacyManage>,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    let s = match contact_subject(&state, &page, &id).await? {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    let doc = crate::http::privacy::subject_export(&state, &page.ctx(), &s).await?;
    let bytes = serde_json::to_vec_pretty(&doc).map_err(anyhow::Error::from)?;
    let disposition = format!("attachment; filename=\"waypost-export-{id}.json\"");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).map_err(anyhow::Error::from)?,
            ),
        ],
        bytes,
    )
        .into_response())
}

async fn restriction(
    state: AppState,
    page: Page<act::PrivacyManage>,
    id: String,
    restricted: bool,
) -> Result<Response, PageError> {
    let s = match contact_subject(&state, &page, &id).await? {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    privacy::set_restricted(&state, &page.ctx(), &s, restricted).await?;
    Ok(Redirect::to(&format!("/contacts/{id}")).into_response())
}

/// `POST /contacts/{id}/restrict`: nothing is sent to the person until lifted.
pub async fn restrict(
    State(state): State<AppState>,
    page: Page<act::PrivacyManage>,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    restriction(state, page, id, true).await
}

/// `POST /contacts/{id}/unrestrict`.
pub async fn unrestrict(
    State(state): State<AppState>,
    page: Page<act::PrivacyManage>,
    Path(id): Path<String>,
    PageForm(Button {}): PageForm<Button>,
) -> Result<Response, PageError> {
    restriction(state, page, id, false).await
}
