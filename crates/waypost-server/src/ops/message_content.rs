//! Reading what messages said: retained content is decrypted with its
//! contact's key; otherwise the reader is told why there is none.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use waypost_crypto::{Aad, ContentKey};
use waypost_store::messaging::MessageRow;

use crate::error::ApiError;
use crate::messaging::content_key;
use crate::state::AppState;

/// Why a message shows no content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContentState {
    /// The workspace keeps no content (retention `none`), or never had it.
    NotRetained,
    /// The contact was erased: its key, and so the content, is gone.
    Erased,
    /// Retained content whose retention period ended.
    Expired,
}

/// A message's content, or the reason it has none.
#[derive(Debug, Clone, PartialEq)]
pub struct Said {
    pub content: Option<serde_json::Value>,
    pub state: Option<ContentState>,
}

/// Fields of a stored provider request (outbound) or webhook message (inbound,
/// kept whole before content was normalised) that are addressing, not content.
const ADDRESSING: [&str; 11] = [
    "messaging_product",
    "recipient_type",
    "to",
    "recipient",
    "type",
    "biz_opaque_callback_data",
    "from",
    "from_user_id",
    "from_parent_user_id",
    "id",
    "timestamp",
];

/// The content of each row, in order. Contacts are loaded once per call.
pub async fn content_of(
    state: &AppState,
    workspace: &str,
    rows: &[MessageRow],
    now: DateTime<Utc>,
) -> Result<Vec<Said>, ApiError> {
    let mut keys: HashMap<String, Option<ContentKey>> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for m in rows {
        let Some(sealed) = &m.content else {
            let state = match m.content_expires_at {
                Some(at) if at <= now => ContentState::Expired,
                _ => ContentState::NotRetained,
            };
            out.push(Said {
                content: None,
                state: Some(state),
            });
            continue;
        };
        if !keys.contains_key(&m.contact_id) {
            let key = match state.store.get_contact(workspace, &m.contact_id).await {
                Ok(c) => content_key(&state.keys, &c).map_err(ApiError::Internal)?,
                Err(waypost_store::StoreError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            };
            keys.insert(m.contact_id.clone(), key);
        }
        let opened = keys[&m.contact_id].as_ref().and_then(|k| {
            let plain = k
                .decrypt(Aad::new("messages", "content", &m.id), sealed)
                .ok()?;
            serde_json::from_slice::<serde_json::Value>(&plain).ok()
        });
        out.push(match opened {
            Some(v) => Said {
                content: Some(shown(v)),
                state: None,
            },
            None => Said {
                content: None,
                state: Some(ContentState::Erased),
            },
        });
    }
    Ok(out)
}

/// Readers get the content fields only.
fn shown(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        for k in ADDRESSING {
            o.remove(k);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_requests_and_webhooks_lose_their_addressing() {
        let v = serde_json::json!({"messaging_product": "whatsapp", "to": "15551234567", "type": "text",
            "text": {"body": "hi"}, "biz_opaque_callback_data": "msg_1"});
        assert_eq!(shown(v), serde_json::json!({"text": {"body": "hi"}}));
        let v = serde_json::json!({"from": "15551234567", "id": "wamid.A", "timestamp": "1",
            "type": "location", "location": {"latitude": 1.5, "longitude": 2.5}});
        assert_eq!(
            shown(v),
            serde_json::json!({"location": {"latitude": 1.5, "longitude": 2.5}})
        );
    }
}
