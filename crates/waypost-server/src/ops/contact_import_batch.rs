//! One batch of a contact import: the valid rows of the batch are matched to
//! existing contacts by phone blind index (one query), sealed, and written
//! with their results in one transaction. Existing contacts keep what a row
//! leaves empty; attributes merge key by key; tags are added, never removed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use waypost_core::audience::ImportOutcome;
use waypost_core::phone::E164;
use waypost_crypto::Aad;
use waypost_store::imports::{ImportBatch, ImportContactWrite, ImportRow, ImportRowResult};
use waypost_store::messaging::{ConsentRow, ContactRow};

use crate::error::ApiError;
use crate::messaging::new_contact_row;
use crate::ops::plans::contacts_room;
use crate::state::AppState;

/// What a row says about marketing consent.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum ConsentCell {
    #[default]
    None,
    /// `consent_marketing` says yes, but source, time or text is missing.
    MissingEvidence,
    OptIn {
        source: String,
        at: DateTime<Utc>,
        text: String,
    },
    OptOut {
        source: String,
        at: DateTime<Utc>,
    },
}

/// A valid row, parsed and indexed, waiting for its batch.
#[derive(Debug, Clone, Default)]
pub(crate) struct ParsedRow {
    pub row: i64,
    pub phone: Option<E164>,
    pub index: Vec<u8>,
    pub name: Option<String>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
    pub tags: Vec<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub attribute_indexes: Vec<(String, Vec<u8>)>,
    pub consent: ConsentCell,
}

fn internal(e: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Internal(e.into())
}

/// The consent record a row asks for, and what its result says of consent.
fn consent_record(
    state: &AppState,
    import: &ImportRow,
    contact: &mut ContactRow,
    p: &ParsedRow,
    now: DateTime<Utc>,
) -> (Option<ConsentRow>, Option<&'static str>) {
    let (status, source, at, evidence) = match &p.consent {
        ConsentCell::None => return (None, None),
        ConsentCell::MissingEvidence => return (None, Some("not_recorded")),
        // An opt-out the person sent is theirs; a list does not undo it.
        ConsentCell::OptIn { .. } if contact.consent_marketing.as_deref() == Some("opted_out") => {
            return (None, Some("kept_opt_out"));
        }
        ConsentCell::OptIn { source, at, text } => (
            "opted_in",
            source,
            *at,
            serde_json::json!({ "text_shown": text, "import_id": import.id, "row": p.row }),
        ),
        ConsentCell::OptOut { source, at } => (
            "opted_out",
            source,
            *at,
            serde_json::json!({ "import_id": import.id, "row": p.row }),
        ),
    };
    let id = format!("cns_{}", ulid::Ulid::new());
    contact.consent_marketing = Some(status.to_owned());
    let evidence = state.keys.current().encrypt(
        Aad::new("contact_consents", "evidence", &id),
        evidence.to_string().as_bytes(),
    );
    let row = ConsentRow {
        workspace_id: contact.workspace_id.clone(),
        contact_id: contact.id.clone(),
        status: status.to_owned(),
        categories: "marketing".to_owned(),
        source: source.clone(),
        evidence: Some(evidence),
        captured_at: at,
        recorded_at: now,
        id,
    };
    (Some(row), Some("recorded"))
}

/// The result of a row refused because the plan's `contacts` limit is reached.
fn over_quota(row: i64, limit: i64) -> ImportRowResult {
    ImportRowResult {
        row_number: row,
        outcome: ImportOutcome::Invalid.as_str().to_owned(),
        contact_id: None,
        consent: None,
        detail: Some(format!(
            "quota-exceeded: the plan's quota `contacts` ({limit}) is used up; the contact was not created"
        )),
    }
}

/// Writes a batch: `pending` rows as contacts, with `results` of the rows
/// already decided; `rows_read` is the last row number read.
pub(crate) async fn write_batch(
    state: &AppState,
    import: &ImportRow,
    pending: Vec<ParsedRow>,
    mut results: Vec<ImportRowResult>,
    rows_read: i64,
) -> Result<(), ApiError> {
    let ws = &import.workspace_id;
    let indexes: Vec<Vec<u8>> = pending.iter().map(|p| p.index.clone()).collect();
    let existing: HashMap<Vec<u8>, ContactRow> = state
        .store
        .contacts_by_phone_indexes(ws, &indexes)
        .await?
        .into_iter()
        .filter_map(|c| c.phone_index.clone().map(|i| (i, c)))
        .collect();
    let ring = state.keys.current();
    let now = state.clock.now();
    // Rows that would add contacts past the plan's limit are refused; rows
    // updating existing contacts still apply.
    let mut room = contacts_room(state, ws)
        .await?
        .map(|(limit, held)| (limit, (limit - held).max(0)));
    let mut writes = Vec::with_capacity(pending.len());
    for p in pending {
        let phone = p.phone.as_ref().expect("a parsed row has a phone");
        let (mut contact, new) = match existing.get(&p.index) {
            Some(c) => (c.clone(), false),
            None => (
                new_contact_row(&state.keys, ws, phone, None, None, now),
                true,
            ),
        };
        if new && let Some((limit, left)) = room.as_mut() {
            if *left == 0 {
                results.push(over_quota(p.row, *limit));
                continue;
            }
            *left -= 1;
        }
        let seal = |column: &str, id: &str, bytes: &[u8]| {
            ring.encrypt(Aad::new("contacts", column, id), bytes)
        };
        if let Some(name) = &p.name {
            contact.name = Some(seal("name", &contact.id, name.as_bytes()));
        }
        if !p.attributes.is_empty() {
            let mut merged: serde_json::Map<String, serde_json::Value> = match &contact.attributes {
                Some(sealed) => {
                    let plain = ring
                        .decrypt(Aad::new("contacts", "attributes", &contact.id), sealed)
                        .map_err(internal)?;
                    serde_json::from_slice(&plain).map_err(internal)?
                }
                None => serde_json::Map::new(),
            };
            merged.extend(p.attributes.clone());
            let json = serde_json::to_vec(&merged).map_err(internal)?;
            contact.attributes = Some(seal("attributes", &contact.id, &json));
        }
        if p.language.is_some() {
            contact.language.clone_from(&p.language);
        }
        if p.time_zone.is_some() {
            contact.time_zone.clone_from(&p.time_zone);
        }
        let (consent, note) = consent_record(state, import, &mut contact, &p, now);
        contact.updated_at = now;
        results.push(ImportRowResult {
            row_number: p.row,
            outcome: if new {
                ImportOutcome::Created
            } else {
                ImportOutcome::Updated
            }
            .as_str()
            .to_owned(),
            contact_id: Some(contact.id.clone()),
            consent: note.map(str::to_owned),
            detail: (note == Some("not_recorded")).then(|| {
                "consent_marketing: not recorded without consent_source, consent_captured_at and consent_text"
                    .to_owned()
            }),
        });
        writes.push(ImportContactWrite {
            contact,
            new,
            tags: p.tags,
            attribute_indexes: p.attribute_indexes,
            consent,
        });
    }
    results.sort_by_key(|r| r.row_number);
    state
        .store
        .apply_import_batch(&ImportBatch {
            import_id: import.id.clone(),
            workspace_id: ws.clone(),
            writes,
            results,
            rows_read,
            at: now,
        })
        .await?;
    Ok(())
}
