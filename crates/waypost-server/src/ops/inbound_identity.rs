//! Who an inbound webhook is about. Since 2026 a message carries the user's
//! BSUID (`from_user_id`, `contacts[].user_id`) and only sometimes the phone
//! (`from`, `wa_id`); statuses carry `recipient_user_id` and, except `failed`,
//! `contacts[]`. Contacts are found by whichever identifier arrives, and
//! identifiers a later webhook adds are linked to the same contact. Pricing
//! is read in both shapes (CBP and PMP with `type`).

use std::collections::HashMap;

use waypost_cloudapi::inbound::SystemMessage;
use waypost_cloudapi::status::Pricing;
use waypost_cloudapi::webhook::{MessagesValue, WebhookContact};
use waypost_cloudapi::{InboundContent, InboundMessage};
use waypost_core::bsuid::Bsuid;
use waypost_core::phone::E164;
use waypost_store::inbound::MessagePricing;
use waypost_store::messaging::{ChannelRow, ContactRow};

use crate::messaging::identity::{Identity, user_id_index};
use crate::ops::contact_events::IdentityChange;
use crate::ops::contacts::{apply_identity_change, link_identity, resolve_contact};
use crate::state::AppState;

fn bsuid(s: Option<&str>) -> Option<Bsuid> {
    s.and_then(|s| Bsuid::parse(s).ok())
}

fn phone(s: Option<&str>) -> Option<E164> {
    s.and_then(|s| E164::parse(s).ok())
}

/// The `contacts[]` entry of message `m`: the one with its BSUID or phone,
/// else the only one.
fn entry_of<'a>(value: &'a MessagesValue, m: &InboundMessage) -> Option<&'a WebhookContact> {
    let by_id = |c: &&WebhookContact| {
        (c.user_id.is_some() && c.user_id == m.from_user_id)
            || (c.wa_id.is_some() && c.wa_id == m.from)
    };
    value
        .contacts
        .iter()
        .find(by_id)
        .or_else(|| (value.contacts.len() == 1).then(|| &value.contacts[0]))
}

/// Everything message `m` (and its `contacts[]` entry) says about its sender.
pub fn sender_of(value: &MessagesValue, m: &InboundMessage) -> Identity {
    let entry = entry_of(value, m);
    Identity {
        phone: phone(m.from.as_deref().or(entry.and_then(|c| c.wa_id.as_deref()))),
        user_id: bsuid(
            m.from_user_id
                .as_deref()
                .or(entry.and_then(|c| c.user_id.as_deref())),
        ),
        parent_user_id: bsuid(
            m.from_parent_user_id
                .as_deref()
                .or(entry.and_then(|c| c.parent_user_id.as_deref())),
        ),
        username: entry
            .and_then(|c| c.profile.as_ref())
            .and_then(|p| p.username.clone()),
    }
}

/// The contact message `m` belongs to, created or linked as needed; a number
/// or BSUID change is applied to the existing contact first. `None` when the
/// message names nobody usable.
pub async fn contact_of(
    state: &AppState,
    channel: &ChannelRow,
    value: &MessagesValue,
    m: &InboundMessage,
    seen: &mut HashMap<String, ContactRow>,
) -> anyhow::Result<Option<ContactRow>> {
    let ws = &channel.workspace_id;
    if let InboundContent::System(system) = &m.content
        && let Some(c) = identity_change(state, ws, system, m).await?
    {
        seen.clear();
        return Ok(Some(c));
    }
    let who = sender_of(value, m);
    let key = match (&who.user_id, &who.phone, &who.parent_user_id) {
        (Some(id), _, _) | (None, None, Some(id)) => id.to_string(),
        (None, Some(p), _) => p.to_string(),
        (None, None, None) => return Ok(None),
    };
    if let Some(c) = seen.get(&key) {
        return Ok(Some(c.clone()));
    }
    let found = resolve_contact(state, ws, &who).await?;
    if let Some(c) = &found {
        seen.insert(key, c.clone());
    }
    Ok(found)
}

async fn identity_change(
    state: &AppState,
    workspace_id: &str,
    system: &SystemMessage,
    m: &InboundMessage,
) -> anyhow::Result<Option<ContactRow>> {
    let old_phone = phone(m.from.as_deref());
    apply_identity_change(state, workspace_id, system, old_phone.as_ref()).await
}

/// Links the BSUID (and phone, parent, username) a status reports to the
/// contact of the message it is about: a contact first reached by phone
/// becomes findable by BSUID, so its later BSUID-only messages stay its own.
/// Statuses whose message is not known yet are skipped; a later one links.
pub async fn link_status_recipients(
    state: &AppState,
    channel: &ChannelRow,
    value: &MessagesValue,
) -> anyhow::Result<()> {
    let ws = &channel.workspace_id;
    let mut done: Vec<String> = Vec::new();
    for s in &value.statuses {
        let Some(user_id) = bsuid(s.recipient_user_id.as_deref()) else {
            continue;
        };
        if s.recipient_type.as_deref() == Some("group") || done.contains(&s.id) {
            continue;
        }
        done.push(s.id.clone());
        let Some(message) = state
            .store
            .message_by_provider_id(&channel.id, &s.id)
            .await?
        else {
            continue;
        };
        let contact = state.store.get_contact(ws, &message.contact_id).await?;
        let index = user_id_index(&state.keys, ws, &user_id, false);
        let entry = value
            .contacts
            .iter()
            .find(|c| c.user_id.as_deref() == Some(user_id.as_str()));
        let who = Identity {
            phone: phone(
                s.recipient_id
                    .as_deref()
                    .or(entry.and_then(|c| c.wa_id.as_deref())),
            ),
            parent_user_id: bsuid(
                s.recipient_parent_user_id
                    .as_deref()
                    .or(entry.and_then(|c| c.parent_user_id.as_deref())),
            ),
            username: entry
                .and_then(|c| c.profile.as_ref())
                .and_then(|p| p.username.clone()),
            user_id: Some(user_id),
        };
        let complete = contact.user_id_index.as_deref() == Some(index.as_slice())
            && (who.phone.is_none() || contact.phone_index.is_some())
            && who.username.is_none();
        if !complete {
            link_identity(state, contact, &who, IdentityChange::Linked).await?;
        }
    }
    Ok(())
}

/// A status's `pricing`, in either shape, as stored per message.
pub fn pricing_of(p: &Pricing) -> MessagePricing {
    MessagePricing {
        pricing_model: Some(p.pricing_model.as_str().to_owned()),
        pricing_type: p.kind.clone(),
        pricing_category: Some(p.category.as_str().to_owned()),
        billable: p.billable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: serde_json::Value) -> MessagesValue {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn sender_from_a_bsuid_only_message_and_from_a_phone_message() {
        let v = value(
            serde_json::json!({"metadata":{"display_phone_number":"1","phone_number_id":"2"},
            "contacts":[{"profile":{"name":"S","username":"sheena"},"user_id":"US.134","parent_user_id":"US.ENT.118"}],
            "messages":[{"from_user_id":"US.134","id":"w","timestamp":"1","type":"text","text":{"body":"hi"}}]}),
        );
        let who = sender_of(&v, &v.messages[0]);
        assert_eq!(who.phone, None);
        assert_eq!(who.user_id.unwrap().as_str(), "US.134");
        assert!(who.parent_user_id.unwrap().is_parent());
        assert_eq!(who.username.as_deref(), Some("sheena"));
        let v = value(
            serde_json::json!({"metadata":{"display_phone_number":"1","phone_number_id":"2"},
            "contacts":[{"profile":{"name":"S"},"wa_id":"4915112345678"}],
            "messages":[{"from":"4915112345678","id":"w","timestamp":"1","type":"text","text":{"body":"hi"}}]}),
        );
        let who = sender_of(&v, &v.messages[0]);
        assert_eq!(who.phone.unwrap().as_str(), "+4915112345678");
        assert_eq!(who.user_id, None);
    }

    #[test]
    fn pricing_in_both_shapes() {
        let cbp: Pricing = serde_json::from_value(
            serde_json::json!({"billable":true,"pricing_model":"CBP","category":"service"}),
        )
        .unwrap();
        let p = pricing_of(&cbp);
        assert_eq!(
            (p.pricing_model.as_deref(), p.pricing_type, p.billable),
            (Some("CBP"), None, Some(true))
        );
        let pmp: Pricing = serde_json::from_value(
            serde_json::json!({"pricing_model":"PMP","type":"free_entry_point","category":"marketing"}),
        )
        .unwrap();
        let p = pricing_of(&pmp);
        assert_eq!(p.pricing_type.as_deref(), Some("free_entry_point"));
        assert_eq!(
            (p.pricing_category.as_deref(), p.billable),
            (Some("marketing"), None)
        );
    }
}
