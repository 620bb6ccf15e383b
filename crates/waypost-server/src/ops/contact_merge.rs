//! Two contacts that turn out to be one person: one first seen by phone
//! (created through the API, or before 2026), one first seen by BSUID (its
//! phone withheld), until a webhook carries both identifiers. The older
//! contact is kept; the other's messages, consent history, pending sends and
//! events move to it, and it is deleted. An opt-out on either side wins, so a
//! merge never re-opens a channel the person closed.

use waypost_core::{Actor, NewAuditEvent, WorkspaceId};
use waypost_crypto::Aad;
use waypost_store::messaging::{ContactRow, MessageFilter};

use crate::messaging::content_key;
use crate::messaging::identity::{Identity, apply_identity, contact_identity};
use crate::ops::contact_events::{IdentityChange, identifiers_changed};
use crate::state::AppState;

/// Messages re-sealed per page.
const PAGE: u32 = 500;

/// Merges `a` and `b` and returns the contact that remains.
pub async fn merge_contacts(
    state: &AppState,
    a: ContactRow,
    b: ContactRow,
) -> anyhow::Result<ContactRow> {
    let (mut kept, gone) = if (a.created_at, &a.id) <= (b.created_at, &b.id) {
        (a, b)
    } else {
        (b, a)
    };
    let before = kept.clone();
    let keys = &state.keys;
    // Identifiers are sealed to their row id, so they are re-sealed, not copied.
    let theirs = contact_identity(keys, &gone)?;
    let ours = contact_identity(keys, &kept)?;
    let missing = Identity {
        phone: theirs.phone.filter(|_| ours.phone.is_none()),
        user_id: theirs.user_id.filter(|_| ours.user_id.is_none()),
        parent_user_id: theirs
            .parent_user_id
            .filter(|_| ours.parent_user_id.is_none()),
        username: theirs.username.filter(|_| ours.username.is_none()),
    };
    apply_identity(keys, &mut kept, &missing);
    let ring = keys.current();
    let reseal = |column: &str, value: &Option<Vec<u8>>| -> anyhow::Result<Option<Vec<u8>>> {
        value
            .as_deref()
            .map(|v| {
                let plain = ring.decrypt(Aad::new("contacts", column, &gone.id), v)?;
                Ok(ring.encrypt(Aad::new("contacts", column, &kept.id), &plain))
            })
            .transpose()
    };
    if kept.name.is_none() {
        kept.name = reseal("name", &gone.name)?;
    }
    if kept.attributes.is_none() {
        kept.attributes = reseal("attributes", &gone.attributes)?;
    }
    for (mine, other) in [
        (&mut kept.consent_marketing, &gone.consent_marketing),
        (&mut kept.consent_utility, &gone.consent_utility),
        (
            &mut kept.consent_authentication,
            &gone.consent_authentication,
        ),
    ] {
        *mine = merged_consent(mine.take(), other.clone());
    }
    kept.restricted |= gone.restricted;
    kept.last_inbound_at = kept.last_inbound_at.max(gone.last_inbound_at);
    kept.updated_at = state.clock.now();
    let contents = resealed_contents(state, &gone, &kept).await?;
    let audit = NewAuditEvent::new(
        Some(WorkspaceId::parse(&kept.workspace_id)?),
        Actor::System,
        IdentityChange::Merged.audit_action(),
    )
    .target("contact", kept.id.clone())
    .details(serde_json::json!({
        "source": "provider",
        "merged_contact_id": gone.id,
        "messages_resealed": contents.len(),
    }));
    let event = identifiers_changed(
        state,
        &before,
        &kept,
        IdentityChange::Merged,
        Some(&gone.id),
    )?;
    state
        .store
        .merge_contacts(&kept, &gone.id, &contents, audit, &[event])
        .await?;
    metrics::counter!("waypost_contacts_merged_total").increment(1);
    Ok(kept)
}

/// Opted out on either side wins; else opted in on either side; else unknown.
fn merged_consent(a: Option<String>, b: Option<String>) -> Option<String> {
    let out = Some("opted_out".to_owned());
    if a == out || b == out { out } else { a.or(b) }
}

/// The retained content of `gone`'s messages, re-sealed with `kept`'s content
/// key (or dropped when `kept`'s key is shredded).
async fn resealed_contents(
    state: &AppState,
    gone: &ContactRow,
    kept: &ContactRow,
) -> anyhow::Result<Vec<(String, Option<Vec<u8>>)>> {
    let (Some(from), to) = (
        content_key(&state.keys, gone)?,
        content_key(&state.keys, kept)?,
    ) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut filter = MessageFilter {
        contact_id: Some(gone.id.clone()),
        ..MessageFilter::default()
    };
    loop {
        let page = state
            .store
            .list_messages(&gone.workspace_id, &filter, PAGE)
            .await?;
        filter.after = page.last().map(|m| m.id.clone());
        for m in &page {
            let Some(sealed) = &m.content else { continue };
            let aad = || Aad::new("messages", "content", &m.id);
            let plain = from.decrypt(aad(), sealed)?;
            out.push((m.id.clone(), to.as_ref().map(|k| k.encrypt(aad(), &plain))));
        }
        if page.len() < PAGE as usize {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opt_out_on_either_side_wins() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            merged_consent(s("opted_in"), s("opted_out")),
            s("opted_out")
        );
        assert_eq!(merged_consent(s("opted_out"), None), s("opted_out"));
        assert_eq!(merged_consent(None, s("opted_in")), s("opted_in"));
        assert_eq!(merged_consent(None, None), None);
    }
}
