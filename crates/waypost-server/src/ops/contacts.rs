//! Contact operations shared by sending and receiving: finding a contact by
//! any identifier it has (BSUID first, then phone, then parent BSUID),
//! creating one, linking identifiers a later webhook adds (merging two
//! contacts that turn out to be one person), and the number and BSUID
//! changes WhatsApp reports in system messages.

use waypost_cloudapi::inbound::SystemMessage;
use waypost_core::bsuid::Bsuid;
use waypost_core::phone::E164;
use waypost_core::{Actor, NewAuditEvent, WorkspaceId};
use waypost_store::StoreError;
use waypost_store::messaging::ContactRow;

use crate::error::{ApiError, Problem};
use crate::messaging::identity::{Identity, apply_identity, user_id_index};
use crate::messaging::{new_identified_contact, phone_index};
use crate::ops::Ctx;
use crate::ops::audiences::{ProfileChange, apply_profile};
use crate::ops::contact_events::{IdentityChange, changed, identifiers_changed};
use crate::ops::contact_merge::merge_contacts;
use crate::state::AppState;

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

/// A business-scoped user id from field `field` of a request, or a 422 naming
/// the field (the input is never echoed: it identifies a person).
pub fn parse_user_id(field: &str, input: &str) -> Result<Bsuid, ApiError> {
    Bsuid::parse(input).map_err(|e| {
        Problem::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-user-id",
            "Invalid user id",
            format!("`{field}` {e}"),
        )
        .with("field", field.into())
        .into()
    })
}

/// A contact the API adds, known by phone, BSUID or both, with its profile.
pub struct NewContact {
    pub who: Identity,
    pub profile: ProfileChange,
}

/// Adds a contact (audited). `409 contact-exists`, naming the contact that
/// holds it, when the phone or BSUID already belongs to one; `429
/// quota-exceeded` when the plan's `contacts` limit is reached.
pub async fn create_contact(
    state: &AppState,
    ctx: &Ctx,
    input: NewContact,
) -> Result<ContactRow, ApiError> {
    if input.who.user_id.is_none() && input.who.phone.is_none() {
        return Err(crate::error::unprocessable(
            "give `phone`, `user_id` or both",
        ));
    }
    crate::ops::plans::check_new_contact(state, &ctx.workspace).await?;
    let row = new_identified_contact(
        &state.keys,
        &ctx.workspace,
        &input.who,
        None,
        None,
        state.clock.now(),
    );
    let audit = NewAuditEvent::new(Some(ctx.workspace_id), ctx.actor.clone(), "contact.created")
        .target("contact", row.id.clone())
        .details(serde_json::json!({
            "source": "api",
            "identifiers": names(&input.who),
            "profile": input.profile.changed(),
        }));
    let mut write = apply_profile(state, row, &input.profile, ctx.origin.stamp(audit));
    write.new = true;
    match state.store.write_contact_profile(&write).await {
        Ok(()) => Ok(write.contact),
        Err(StoreError::Conflict(_)) => Err(exists(state, &ctx.workspace, &input.who).await),
        Err(e) => Err(e.into()),
    }
}

/// The `409` for a phone or BSUID another contact holds, naming which and whose.
async fn exists(state: &AppState, workspace_id: &str, who: &Identity) -> ApiError {
    let by_user_id = Identity {
        user_id: who.user_id.clone(),
        ..Identity::default()
    };
    let (what, holder) = match find_contact(state, workspace_id, &by_user_id).await {
        Ok(Some(c)) => ("user id", Some(c)),
        Ok(None) => (
            "phone number",
            find_contact(
                state,
                workspace_id,
                &Identity {
                    phone: who.phone.clone(),
                    ..Identity::default()
                },
            )
            .await
            .ok()
            .flatten(),
        ),
        Err(e) => return ApiError::Internal(e),
    };
    let problem = Problem::new(
        axum::http::StatusCode::CONFLICT,
        "contact-exists",
        "Contact exists",
        format!("The workspace already has a contact with this {what}."),
    );
    match holder {
        Some(c) => problem.with("contact_id", c.id.into()).into(),
        None => problem.into(),
    }
}

/// The contact any of `who`'s identifiers belongs to: BSUID first (it is
/// always sent since 2026), then the phone, then the parent BSUID.
pub async fn find_contact(
    state: &AppState,
    workspace_id: &str,
    who: &Identity,
) -> anyhow::Result<Option<ContactRow>> {
    let store = &state.store;
    if let Some(id) = &who.user_id
        && let Some(c) = store
            .contact_by_user_id_index(
                workspace_id,
                &user_id_index(&state.keys, workspace_id, id, false),
            )
            .await?
    {
        return Ok(Some(c));
    }
    if let Some(phone) = &who.phone
        && let Some(c) = store
            .contact_by_phone_index(workspace_id, &phone_index(&state.keys, workspace_id, phone))
            .await?
    {
        return Ok(Some(c));
    }
    if let Some(parent) = &who.parent_user_id {
        return Ok(store
            .contact_by_parent_user_id_index(
                workspace_id,
                &user_id_index(&state.keys, workspace_id, parent, true),
            )
            .await?);
    }
    Ok(None)
}

/// Finds the contact of `who` and links the identifiers it lacks, or creates
/// it. `None` when `who` carries no identifier at all.
pub async fn resolve_contact(
    state: &AppState,
    workspace_id: &str,
    who: &Identity,
) -> anyhow::Result<Option<ContactRow>> {
    if who.is_empty() {
        return Ok(None);
    }
    let wanted = who
        .user_id
        .as_ref()
        .map(|id| user_id_index(&state.keys, workspace_id, id, false));
    let found = find_contact(state, workspace_id, who).await?;
    // Found by phone (or parent) but holding another BSUID: another person,
    // whose number this user now has.
    let another_person =
        |c: &ContactRow| wanted.is_some() && c.user_id_index.is_some() && c.user_id_index != wanted;
    let mut phone_taken = false;
    match found {
        Some(row) if !another_person(&row) => {
            return link_identity(state, row, who, IdentityChange::Linked)
                .await
                .map(Some);
        }
        Some(_) => phone_taken = true,
        None => {}
    }
    // A taken number is added after creation, where `link_identity` releases it.
    let first = Identity {
        phone: who.phone.clone().filter(|_| !phone_taken),
        ..who.clone()
    };
    let row = new_identified_contact(
        &state.keys,
        workspace_id,
        &first,
        None,
        None,
        state.clock.now(),
    );
    let audit = system_audit(workspace_id, "contact.created", &row.id)?
        .details(serde_json::json!({ "source": "inbound", "identifiers": names(who) }));
    match state.store.create_contact(&row, audit).await {
        Ok(()) if phone_taken => link_identity(state, row, who, IdentityChange::Linked)
            .await
            .map(Some),
        Ok(()) => Ok(Some(row)),
        // Created meanwhile by a concurrent webhook: use that one.
        Err(StoreError::Conflict(_)) => find_contact(state, workspace_id, who).await,
        Err(e) => Err(e.into()),
    }
}

/// Adds `who`'s identifiers to `row` (audited, and told as a customer event,
/// as `change`). When another contact already holds `who`'s phone or BSUID,
/// the two are one person seen twice: they are merged first.
pub async fn link_identity(
    state: &AppState,
    mut row: ContactRow,
    who: &Identity,
    change: IdentityChange,
) -> anyhow::Result<ContactRow> {
    let ws = row.workspace_id.clone();
    // Indexes are unique per workspace: one `row` already holds is nobody else's.
    let phone_idx = who
        .phone
        .as_ref()
        .map(|p| phone_index(&state.keys, &ws, p))
        .filter(|i| row.phone_index.as_ref() != Some(i));
    if let Some(index) = &phone_idx
        && let Some(other) = state.store.contact_by_phone_index(&ws, index).await?
        && other.id != row.id
    {
        let theirs = other.user_id_index.clone();
        let ours = who
            .user_id
            .as_ref()
            .map(|id| user_id_index(&state.keys, &ws, id, false));
        if theirs.is_some() && ours.is_some() && theirs != ours {
            // Another person's BSUID: the number was recycled and is no longer theirs.
            release_phone(state, other).await?;
        } else {
            row = merge_contacts(state, row, other).await?;
        }
    }
    let user_idx = who
        .user_id
        .as_ref()
        .map(|id| user_id_index(&state.keys, &ws, id, false))
        .filter(|i| row.user_id_index.as_ref() != Some(i));
    if let Some(index) = &user_idx
        && let Some(other) = state.store.contact_by_user_id_index(&ws, index).await?
        && other.id != row.id
    {
        row = merge_contacts(state, row, other).await?;
    }
    let before = row.clone();
    if !apply_identity(&state.keys, &mut row, who) {
        return Ok(row);
    }
    row.updated_at = state.clock.now();
    let audit = system_audit(&ws, change.audit_action(), &row.id)?.details(
        serde_json::json!({ "source": "provider", "identifiers": changed(&before, &row) }),
    );
    let event = identifiers_changed(state, &before, &row, change, None)?;
    match state
        .store
        .update_contact_identity(&row, Some(audit), &[event])
        .await
    {
        Ok(()) => Ok(row),
        Err(StoreError::Conflict(_)) => Ok(before),
        Err(e) => Err(e.into()),
    }
}

/// Takes the phone off a contact whose number now belongs to someone else.
async fn release_phone(state: &AppState, mut row: ContactRow) -> anyhow::Result<()> {
    let before = row.clone();
    row.phone = None;
    row.phone_index = None;
    row.updated_at = state.clock.now();
    let change = IdentityChange::PhoneReleased;
    let audit = system_audit(&row.workspace_id, change.audit_action(), &row.id)?.details(
        serde_json::json!({ "source": "provider", "reason": "number now used by another user id" }),
    );
    let event = identifiers_changed(state, &before, &row, change, None)?;
    state
        .store
        .update_contact_identity(&row, Some(audit), &[event])
        .await?;
    Ok(())
}

/// Applies a `user_changed_number` or `user_changed_user_id` system message
/// to the contact it is about (found by the previous BSUID, or the old phone
/// in `from`): the new BSUID, parent BSUID and, when shared, phone replace the
/// old ones on the same contact, so its history, consent and opt-out stay.
/// `None` when the contact is unknown or the message is of another type.
pub async fn apply_identity_change(
    state: &AppState,
    workspace_id: &str,
    system: &SystemMessage,
    old_phone: Option<&E164>,
) -> anyhow::Result<Option<ContactRow>> {
    let change = match system.kind.as_deref() {
        Some("user_changed_number") => IdentityChange::NumberChanged,
        Some("user_changed_user_id") => IdentityChange::UserIdChanged,
        _ => return Ok(None),
    };
    let bsuid = |s: &Option<String>| s.as_deref().and_then(|s| Bsuid::parse(s).ok());
    let previous = Identity {
        phone: old_phone.cloned(),
        user_id: bsuid(&system.previous_user_id),
        parent_user_id: bsuid(&system.previous_parent_user_id),
        username: None,
    };
    let Some(row) = find_contact(state, workspace_id, &previous).await? else {
        return Ok(None);
    };
    let new_phone = system
        .wa_id
        .as_deref()
        .or(system.new_wa_id.as_deref())
        .and_then(|p| E164::parse(p).ok());
    let next = Identity {
        phone: new_phone,
        user_id: bsuid(&system.user_id),
        parent_user_id: bsuid(&system.parent_user_id),
        username: None,
    };
    link_identity(state, row, &next, change).await.map(Some)
}

fn system_audit(
    workspace_id: &str,
    action: &str,
    contact_id: &str,
) -> anyhow::Result<NewAuditEvent> {
    let ws = WorkspaceId::parse(workspace_id)?;
    Ok(
        NewAuditEvent::new(Some(ws), Actor::System, action)
            .target("contact", contact_id.to_owned()),
    )
}

/// The names (never the values) of the identifiers `who` has.
fn names(who: &Identity) -> Vec<&'static str> {
    [
        ("phone", who.phone.is_some()),
        ("user_id", who.user_id.is_some()),
        ("parent_user_id", who.parent_user_id.is_some()),
        ("username", who.username.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, has)| has.then_some(n))
    .collect()
}
