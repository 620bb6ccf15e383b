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

/// An event ready for the store: `data` serialised and encrypted under its own id.
pub fn seal(
    ring: &KeyRing,
    workspace_id: WorkspaceId,
    event_type: EventType,
    subject_id: Option<String>,
    data: &serde_json::Value,
    at: DateTime<Utc>,
) -> NewCustomerEvent {
    let id = EventId::new().to_string();
    let plain = serde_json::to_vec(data).expect("JSON values serialise");
    let payload = ring.encrypt(Aad::new(TABLE, PAYLOAD, &id), &plain);
    NewCustomerEvent {
        id,
        workspace_id: workspace_id.to_string(),
        event_type: event_type.as_str().to_owned(),
        subject_id,
        payload,
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
    let data: serde_json::Value = serde_json::from_slice(&plain)?;
    Ok(serde_json::json!({
        "type": row.event_type,
        "timestamp": row.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    }))
}
