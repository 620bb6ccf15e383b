//! Building and reading customer events. The `data` object is encrypted at
//! rest because, when a workspace retains content, it may carry message text.

use chrono::{DateTime, Utc};
use waypost_core::events::EventType;
use waypost_core::{EventId, WorkspaceId};
use waypost_crypto::{Aad, KeyRing};
use waypost_store::{CustomerEventRow, NewCustomerEvent, Store};

use crate::keys::Keys;

pub const TABLE: &str = "customer_events";
pub const PAYLOAD: &str = "payload";
pub const CONTENT: &str = "content";

/// Inbound content an event carries while in transit, and whose key seals it.
pub struct HeldContent<'a> {
    pub key: &'a waypost_crypto::ContentKey,
    pub contact_id: &'a str,
    /// A JSON object whose fields join the event's `data` on delivery.
    pub content: &'a serde_json::Value,
}

/// An event ready for the store: `data` serialised and encrypted under its own id.
pub fn seal(
    ring: &KeyRing,
    workspace_id: WorkspaceId,
    event_type: EventType,
    subject_id: Option<String>,
    data: &serde_json::Value,
    at: DateTime<Utc>,
) -> NewCustomerEvent {
    seal_with_content(
        ring,
        &workspace_id.to_string(),
        event_type,
        subject_id,
        data,
        None,
        at,
    )
}

/// [`seal`], with inbound content encrypted under the contact's content key
/// beside the payload, so erasing the contact shreds it even in transit.
pub fn seal_with_content(
    ring: &KeyRing,
    workspace_id: &str,
    event_type: EventType,
    subject_id: Option<String>,
    data: &serde_json::Value,
    held: Option<HeldContent<'_>>,
    at: DateTime<Utc>,
) -> NewCustomerEvent {
    let id = EventId::new().to_string();
    let plain = serde_json::to_vec(data).expect("JSON values serialise");
    let payload = ring.encrypt(Aad::new(TABLE, PAYLOAD, &id), &plain);
    let (content, content_contact_id) = match held {
        Some(h) => {
            let plain = serde_json::to_vec(h.content).expect("JSON values serialise");
            (
                Some(h.key.encrypt(Aad::new(TABLE, CONTENT, &id), &plain)),
                Some(h.contact_id.to_owned()),
            )
        }
        None => (None, None),
    };
    NewCustomerEvent {
        id,
        workspace_id: workspace_id.to_owned(),
        event_type: event_type.as_str().to_owned(),
        subject_id,
        payload,
        content,
        content_contact_id,
        created_at: at,
    }
}

/// The webhook body of a stored event: `{type, timestamp, data}`.
pub async fn open(
    keys: &Keys,
    store: &dyn Store,
    row: &CustomerEventRow,
) -> anyhow::Result<serde_json::Value> {
    let plain = keys
        .decrypt(store, Aad::new(TABLE, PAYLOAD, &row.id), &row.payload)
        .await?;
    let mut data: serde_json::Value = serde_json::from_slice(&plain)?;
    if row.event_type == EventType::MessageReceived.as_str() {
        let content = match (&row.content, &row.content_contact_id) {
            (Some(sealed), Some(contact_id)) => {
                open_content(keys, store, row, contact_id, sealed).await
            }
            _ => None,
        };
        let object = data.as_object_mut().expect("event data is an object");
        match content {
            Some(serde_json::Value::Object(fields)) => object.extend(fields),
            _ => {
                // Delivered everywhere and removed, or its contact was erased.
                object.insert("content_state".into(), "not_retained".into());
            }
        }
    }
    Ok(serde_json::json!({
        "type": row.event_type,
        "timestamp": row.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    }))
}

/// The held content of an event, or `None` when its contact or key is gone.
async fn open_content(
    keys: &Keys,
    store: &dyn Store,
    row: &CustomerEventRow,
    contact_id: &str,
    sealed: &[u8],
) -> Option<serde_json::Value> {
    let contact = store
        .get_contact(&row.workspace_id, contact_id)
        .await
        .ok()?;
    let key = crate::messaging::content_key(keys, &contact).ok()??;
    let plain = key
        .decrypt(Aad::new(TABLE, CONTENT, &row.id), sealed)
        .ok()?;
    serde_json::from_slice(&plain).ok()
}
