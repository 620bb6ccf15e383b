//! The `contact.identifiers_changed` customer event: told whenever a contact's
//! phone, BSUID, parent BSUID or username changes (linked by a webhook, merged
//! with another contact, a number or BSUID change, a recycled number released),
//! so a customer's own records can follow. It names identifiers as the API
//! shows them: the BSUIDs, the phone masked, and only whether a username exists.

use waypost_core::WorkspaceId;
use waypost_core::events::EventType;
use waypost_core::redact::mask_phone;
use waypost_store::NewCustomerEvent;
use waypost_store::messaging::ContactRow;

use crate::messaging::identity::contact_identity;
use crate::state::AppState;

/// Why a contact's identifiers changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityChange {
    /// A webhook carried an identifier the contact lacked.
    Linked,
    /// A `user_changed_number` system message.
    NumberChanged,
    /// A `user_changed_user_id` system message.
    UserIdChanged,
    /// Another contact turned out to be the same person and was folded in.
    Merged,
    /// The number now belongs to another user and was taken off this contact.
    PhoneReleased,
}

impl IdentityChange {
    pub const fn as_str(self) -> &'static str {
        match self {
            IdentityChange::Linked => "linked",
            IdentityChange::NumberChanged => "number_changed",
            IdentityChange::UserIdChanged => "user_id_changed",
            IdentityChange::Merged => "merged",
            IdentityChange::PhoneReleased => "phone_released",
        }
    }

    /// The audit action recorded with the same change.
    pub const fn audit_action(self) -> &'static str {
        match self {
            IdentityChange::Linked => "contact.linked",
            IdentityChange::NumberChanged => "contact.number_changed",
            IdentityChange::UserIdChanged => "contact.user_id_changed",
            IdentityChange::Merged => "contact.merged",
            IdentityChange::PhoneReleased => "contact.phone_released",
        }
    }
}

/// The sealed event for `after`, the contact as written; `merged_contact_id`
/// names the contact folded into it.
pub fn identifiers_changed(
    state: &AppState,
    before: &ContactRow,
    after: &ContactRow,
    change: IdentityChange,
    merged_contact_id: Option<&str>,
) -> anyhow::Result<NewCustomerEvent> {
    let who = contact_identity(&state.keys, after)?;
    let mut data = serde_json::json!({
        "contact_id": after.id,
        "reason": change.as_str(),
        "changed": changed(before, after),
        "user_id": who.user_id.map(|u| u.to_string()),
        "parent_user_id": who.parent_user_id.map(|u| u.to_string()),
        "phone": who.phone.map(|p| mask_phone(p.as_str())),
        "has_username": who.username.is_some(),
    });
    if let Some(id) = merged_contact_id {
        data["merged_contact_id"] = id.into();
    }
    Ok(crate::events::seal(
        &state.keys.current(),
        WorkspaceId::parse(&after.workspace_id)?,
        EventType::ContactIdentifiersChanged,
        Some(after.id.clone()),
        &data,
        state.clock.now(),
    ))
}

/// The names of the identifiers that differ between two versions of a row.
pub fn changed(before: &ContactRow, after: &ContactRow) -> Vec<&'static str> {
    [
        ("phone", before.phone_index != after.phone_index),
        ("user_id", before.user_id_index != after.user_id_index),
        (
            "parent_user_id",
            before.parent_user_id_index != after.parent_user_id_index,
        ),
        ("username", before.username != after.username),
    ]
    .into_iter()
    .filter_map(|(n, c)| c.then_some(n))
    .collect()
}
