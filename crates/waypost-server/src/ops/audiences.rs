//! Audiences: a contact's profile (name, language, time zone, typed custom
//! attributes, tags), the workspace's custom field definitions, and filters
//! that find contacts by tag, attribute, language, consent per category, last
//! inbound time and creation time.
//!
//! # What is stored how
//!
//! Names and custom attribute values are personal data: they stay encrypted
//! (`contacts.name`, `contacts.attributes`, AES-GCM bound to row and column), as
//! before. To filter on an attribute without plaintext in the database, each
//! scalar value gets a blind index, HMAC-SHA256 under the key ring's
//! blind-index key over `workspace:field:canonical value` (canonical: typed,
//! text folded to lower case and trimmed; see
//! [`waypost_core::audience::canonical_value`]), in `contact_attribute_index`.
//! A filter computes the same HMAC and matches rows by equality. The price,
//! stated plainly: equality is all such an index answers (no ranges or
//! prefixes on custom values, which would need order-revealing encryption or
//! plaintext), and someone holding a copy of the database can see which
//! contacts share a value (not what it is); someone who also holds the key can
//! test guesses, as with the phone index. Values written before this index
//! existed are indexed the next time the contact's attributes are written.
//!
//! Language (`pt_BR`) and time zone (`Europe/Berlin`) are kept in plaintext:
//! coarse values shared by many people, needed in SQL to pick a template
//! language and to schedule sends in the recipient's time. Tags are the
//! business's own slugs (`vip`), not values about the person, and are plain
//! like conversation labels. Consent state and timestamps were plain already.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_core::NewAuditEvent;
use waypost_core::audience::{
    ConsentFilter, FieldKey, FieldType, Language, Tag, TimeZoneName, canonical_value,
};
use waypost_crypto::Aad;
use waypost_store::StoreError;
use waypost_store::audiences::{ContactFieldRow, ContactProfileWrite, ContactQuery};
use waypost_store::messaging::ContactRow;

use super::Ctx;
use crate::error::{ApiError, Problem, unprocessable};
use crate::keys::Keys;
use crate::state::AppState;

/// Most tags on one contact, custom fields per workspace, and bytes of a contact's attributes.
pub const MAX_TAGS: usize = 50;
pub const MAX_FIELDS: usize = 200;
pub const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;
/// Longest field name that is indexed (longer free-form keys are kept, not filterable).
const MAX_INDEXED_KEY: usize = 64;

/// The workspace's custom fields, by key.
pub type Fields = BTreeMap<String, FieldType>;

fn field_problem(field: &str, e: impl std::fmt::Display) -> ApiError {
    Problem::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
        "Invalid request",
        format!("`{field}` {e}"),
    )
    .with("field", field.into())
    .into()
}

/// A custom field to define.
#[derive(Debug, Clone)]
pub struct NewField {
    pub key: FieldKey,
    pub field_type: FieldType,
}

impl NewField {
    pub fn parse(key: &str, field_type: FieldType) -> Result<Self, ApiError> {
        Ok(Self {
            key: FieldKey::parse(key).map_err(|e| field_problem("key", e))?,
            field_type,
        })
    }
}

/// Defines a custom field (audited); `409 field-exists` when the key is taken.
pub async fn define_field(
    state: &AppState,
    ctx: &Ctx,
    input: NewField,
) -> Result<ContactFieldRow, ApiError> {
    if state.store.list_contact_fields(&ctx.workspace).await?.len() >= MAX_FIELDS {
        return Err(unprocessable(format!(
            "a workspace has at most {MAX_FIELDS} custom fields"
        )));
    }
    let row = ContactFieldRow {
        workspace_id: ctx.workspace.clone(),
        field_key: input.key.to_string(),
        field_type: input.field_type.as_str().to_owned(),
        created_at: state.clock.now(),
    };
    let audit = NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "contact_field.created",
    )
    .target("contact_field", row.field_key.clone())
    .details(serde_json::json!({ "type": row.field_type }));
    match state
        .store
        .create_contact_field(&row, ctx.origin.stamp(audit))
        .await
    {
        Ok(()) => Ok(row),
        Err(StoreError::Conflict(_)) => Err(Problem::new(
            axum::http::StatusCode::CONFLICT,
            "field-exists",
            "Field exists",
            format!("The workspace already has a field `{}`.", row.field_key),
        )
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// The workspace's custom fields and their types.
pub async fn fields(state: &AppState, workspace_id: &str) -> Result<Fields, ApiError> {
    state
        .store
        .list_contact_fields(workspace_id)
        .await?
        .into_iter()
        .map(|f| {
            let t = f.field_type.parse().map_err(|_| {
                ApiError::Internal(anyhow::anyhow!(
                    "contact_fields.field_type holds an unknown value"
                ))
            })?;
            Ok((f.field_key, t))
        })
        .collect()
}

/// The blind index of one attribute value, or `None` when it cannot be filtered on.
pub fn attribute_index(
    keys: &Keys,
    workspace_id: &str,
    field: &str,
    value: &serde_json::Value,
) -> Option<Vec<u8>> {
    if field.len() > MAX_INDEXED_KEY {
        return None;
    }
    let canonical = canonical_value(value)?;
    Some(
        keys.current()
            .blind_index(
                "contact.attribute",
                format!("{workspace_id}:{field}:{canonical}").as_bytes(),
            )
            .to_vec(),
    )
}

/// A value for `field`: checked against its type when the field is defined
/// (text given for a number, boolean or date is parsed), kept as is otherwise.
pub fn typed_value(
    fields: &Fields,
    field: &str,
    value: &serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    let at = format!("attributes.{field}");
    match (fields.get(field), value) {
        (Some(t), serde_json::Value::String(s)) if *t != FieldType::Text => {
            t.parse_text(s).map_err(|e| field_problem(&at, e))
        }
        (Some(t), v) => t.check(v).map_err(|e| field_problem(&at, e)),
        (None, v) => Ok(v.clone()),
    }
}

/// A validated change to a contact's profile; `None` leaves a part as it is.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    pub name: Option<String>,
    /// Replaces every attribute.
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// `Some(None)` clears it.
    pub language: Option<Option<Language>>,
    pub time_zone: Option<Option<TimeZoneName>>,
    /// Replaces every tag.
    pub tags: Option<Vec<Tag>>,
    pub restricted: Option<bool>,
}

/// What a caller sends to change a profile, as text; empty `language` or
/// `time_zone` clears it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawProfile<'a> {
    pub name: Option<&'a str>,
    pub attributes: Option<&'a serde_json::Value>,
    pub language: Option<&'a str>,
    pub time_zone: Option<&'a str>,
    pub tags: Option<&'a [String]>,
    pub restricted: Option<bool>,
}

impl ProfileChange {
    /// Checks every part against its rule and `fields`' types; a 422 names the field.
    pub fn parse(raw: RawProfile<'_>, fields: &Fields) -> Result<Self, ApiError> {
        if raw.name.is_some_and(|n| n.chars().count() > 200) {
            return Err(field_problem("name", "must be at most 200 characters"));
        }
        let attributes = raw
            .attributes
            .map(|a| {
                let map = a
                    .as_object()
                    .ok_or_else(|| field_problem("attributes", "must be a JSON object"))?;
                if serde_json::to_vec(a).map_or(0, |v| v.len()) > MAX_ATTRIBUTES_BYTES {
                    return Err(field_problem(
                        "attributes",
                        format!("must be at most {MAX_ATTRIBUTES_BYTES} bytes of JSON"),
                    ));
                }
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), typed_value(fields, k, v)?)))
                    .collect::<Result<serde_json::Map<_, _>, ApiError>>()
            })
            .transpose()?;
        let language = raw
            .language
            .map(|l| match l.trim() {
                "" => Ok(None),
                l => Language::parse(l)
                    .map(Some)
                    .map_err(|e| field_problem("language", e)),
            })
            .transpose()?;
        let time_zone = raw
            .time_zone
            .map(|t| match t.trim() {
                "" => Ok(None),
                t => TimeZoneName::parse(t)
                    .map(Some)
                    .map_err(|e| field_problem("time_zone", e)),
            })
            .transpose()?;
        let tags = raw.tags.map(parse_tags).transpose()?;
        Ok(Self {
            name: raw.name.map(str::to_owned),
            attributes,
            language,
            time_zone,
            tags,
            restricted: raw.restricted,
        })
    }

    /// The names of the parts it changes (for audit details).
    pub fn changed(&self) -> Vec<&'static str> {
        [
            self.name.as_ref().map(|_| "name"),
            self.attributes.as_ref().map(|_| "attributes"),
            self.language.as_ref().map(|_| "language"),
            self.time_zone.as_ref().map(|_| "time_zone"),
            self.tags.as_ref().map(|_| "tags"),
            self.restricted.map(|_| "restricted"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// Tags from text: each a slug, at most [`MAX_TAGS`], duplicates folded.
pub fn parse_tags(tags: &[String]) -> Result<Vec<Tag>, ApiError> {
    let mut parsed = tags
        .iter()
        .map(|t| Tag::parse(t).map_err(|e| field_problem("tags", e)))
        .collect::<Result<Vec<_>, _>>()?;
    parsed.sort();
    parsed.dedup();
    if parsed.len() > MAX_TAGS {
        return Err(field_problem(
            "tags",
            format!("must hold at most {MAX_TAGS} tags"),
        ));
    }
    Ok(parsed)
}

/// Applies a change to a contact row (values encrypted) and returns what the
/// store writes: the row, and the tags and attribute indexes when changed, with `audit`.
pub fn apply_profile(
    state: &AppState,
    mut row: ContactRow,
    change: &ProfileChange,
    audit: NewAuditEvent,
) -> ContactProfileWrite {
    let ring = state.keys.current();
    if let Some(name) = &change.name {
        row.name = Some(ring.encrypt(Aad::new("contacts", "name", &row.id), name.as_bytes()));
    }
    let indexes = change.attributes.as_ref().map(|a| {
        let json = serde_json::to_vec(a).expect("JSON serialises");
        row.attributes = Some(ring.encrypt(Aad::new("contacts", "attributes", &row.id), &json));
        a.iter()
            .filter_map(|(k, v)| {
                attribute_index(&state.keys, &row.workspace_id, k, v).map(|i| (k.clone(), i))
            })
            .collect()
    });
    if let Some(l) = &change.language {
        row.language = l.as_ref().map(|l| l.as_str().to_owned());
    }
    if let Some(t) = &change.time_zone {
        row.time_zone = t.as_ref().map(|t| t.as_str().to_owned());
    }
    if let Some(r) = change.restricted {
        row.restricted = r;
    }
    row.updated_at = state.clock.now();
    ContactProfileWrite {
        contact: row,
        new: false,
        tags: change
            .tags
            .as_ref()
            .map(|t| t.iter().map(|t| t.to_string()).collect()),
        attribute_indexes: indexes,
        audit,
    }
}

/// Changes a contact's profile, writing `audit` (already stamped) with it.
pub async fn update_profile(
    state: &AppState,
    row: ContactRow,
    change: &ProfileChange,
    audit: NewAuditEvent,
) -> Result<ContactRow, ApiError> {
    let write = apply_profile(state, row, change, audit);
    state.store.write_contact_profile(&write).await?;
    Ok(write.contact)
}

/// The consent states a filter asks for, per category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentFilters {
    #[schema(value_type = Option<String>, example = "opted_in")]
    pub marketing: Option<ConsentFilter>,
    #[schema(value_type = Option<String>)]
    pub utility: Option<ConsentFilter>,
    #[schema(value_type = Option<String>)]
    pub authentication: Option<ConsentFilter>,
}

/// Which contacts: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceFilter {
    /// The contact has every one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Custom attributes equal to these values (text compares ignoring case).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Consent per category: `opted_in`, `opted_out` or `unknown` (never recorded).
    #[serde(default, skip_serializing_if = "is_default")]
    pub consent: ConsentFilters,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_inbound_after: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_inbound_before: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_after: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_before: Option<DateTime<Utc>>,
}

fn is_default(c: &ConsentFilters) -> bool {
    *c == ConsentFilters::default()
}

/// Most tag and attribute conditions in one filter.
pub const MAX_CONDITIONS: usize = 20;

impl AudienceFilter {
    /// Validates the filter and turns it into a store query (blind indexes
    /// computed here); the filter comes back in canonical form.
    pub fn to_query(
        &self,
        state: &AppState,
        workspace_id: &str,
        fields: &Fields,
    ) -> Result<(AudienceFilter, ContactQuery), ApiError> {
        if self.tags.len() + self.attributes.len() > MAX_CONDITIONS {
            return Err(unprocessable(format!(
                "a filter has at most {MAX_CONDITIONS} tag and attribute conditions"
            )));
        }
        let tags: Vec<String> = parse_tags(&self.tags)?
            .iter()
            .map(|t| t.to_string())
            .collect();
        let mut attributes = BTreeMap::new();
        let mut indexes = Vec::new();
        for (k, v) in &self.attributes {
            let value = typed_value(fields, k, v)?;
            let index = attribute_index(&state.keys, workspace_id, k, &value).ok_or_else(|| {
                field_problem(
                    &format!("attributes.{k}"),
                    "must be a string, number or boolean (and the key at most 64 bytes)",
                )
            })?;
            indexes.push(index);
            attributes.insert(k.clone(), value);
        }
        let language = self
            .language
            .as_deref()
            .map(|l| Language::parse(l).map_err(|e| field_problem("language", e)))
            .transpose()?
            .map(|l| l.as_str().to_owned());
        let stored = |c: Option<ConsentFilter>| c.map(|c| c.stored().map(str::to_owned));
        let query = ContactQuery {
            tags: tags.clone(),
            attribute_indexes: indexes,
            language: language.clone(),
            consent_marketing: stored(self.consent.marketing),
            consent_utility: stored(self.consent.utility),
            consent_authentication: stored(self.consent.authentication),
            last_inbound_after: self.last_inbound_after,
            last_inbound_before: self.last_inbound_before,
            created_after: self.created_after,
            created_before: self.created_before,
            after: None,
        };
        let canonical = AudienceFilter {
            tags,
            attributes,
            language,
            ..self.clone()
        };
        Ok((canonical, query))
    }
}

/// A page of contacts matching a filter, with the cursor of the next page.
pub async fn find_contacts(
    state: &AppState,
    workspace_id: &str,
    filter: &AudienceFilter,
    after: Option<String>,
    limit: u32,
) -> Result<(Vec<ContactRow>, Option<String>), ApiError> {
    let fields = fields(state, workspace_id).await?;
    let (_, mut query) = filter.to_query(state, workspace_id, &fields)?;
    query.after = after;
    let rows = state
        .store
        .find_contacts(workspace_id, &query, limit)
        .await?;
    let next = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|c| c.id.clone()))
        .flatten();
    Ok((rows, next))
}

/// Each contact's tags, for a page of contacts (one query).
pub async fn tags_of(
    state: &AppState,
    rows: &[ContactRow],
) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let ids: Vec<String> = rows.iter().map(|c| c.id.clone()).collect();
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, tag) in state.store.contact_tags(&ids).await? {
        tags.entry(id).or_default().push(tag);
    }
    Ok(tags)
}
