//! Contact operations shared by sending and receiving.

use waypost_core::phone::E164;
use waypost_store::messaging::ContactRow;

use crate::error::{ApiError, Problem};
use crate::messaging::{new_contact_row, phone_index};
use crate::state::AppState;

/// Finds the workspace's contact for a number, creating it when new (inbound
/// messages from unknown numbers). A concurrent creation is resolved by re-reading.
pub async fn find_or_create_contact(
    state: &AppState,
    workspace_id: &str,
    phone: &E164,
) -> anyhow::Result<ContactRow> {
    let index = phone_index(&state.keys, workspace_id, phone);
    if let Some(found) = state
        .store
        .contact_by_phone_index(workspace_id, &index)
        .await?
    {
        return Ok(found);
    }
    let row = new_contact_row(
        &state.keys,
        workspace_id,
        phone,
        None,
        None,
        state.clock.now(),
    );
    let ws = waypost_core::WorkspaceId::parse(workspace_id)?;
    let audit =
        waypost_core::NewAuditEvent::new(Some(ws), waypost_core::Actor::System, "contact.created")
            .target("contact", row.id.clone())
            .details(serde_json::json!({ "source": "inbound" }));
    match state.store.create_contact(&row, audit).await {
        Ok(()) => Ok(row),
        Err(waypost_store::StoreError::Conflict(_)) => state
            .store
            .contact_by_phone_index(workspace_id, &index)
            .await?
            .ok_or_else(|| anyhow::anyhow!("contact vanished after a conflicting insert")),
        Err(e) => Err(e.into()),
    }
}

/// A phone number from field `field` of a request, or a 422 naming the field.
pub fn parse_phone(field: &str, input: &str) -> Result<E164, ApiError> {
    E164::parse(input).map_err(|e| {
        Problem::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-phone",
            "Invalid phone number",
            format!("`{field}` {e}"),
        )
        .with("field", field.into())
        .into()
    })
}
