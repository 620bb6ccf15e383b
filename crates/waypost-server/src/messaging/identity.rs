//! What identifies a contact: a phone number and/or a business-scoped user id
//! (BSUID), with the parent BSUID and the username when the provider sends
//! them. Each is stored encrypted; the phone and the ids are also stored as
//! blind indexes (keyed per workspace) so they can be found without decrypting.

use waypost_core::bsuid::Bsuid;
use waypost_core::phone::E164;
use waypost_crypto::Aad;
use waypost_store::messaging::ContactRow;

use crate::keys::Keys;

/// The identifiers one webhook or request gives for a person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub phone: Option<E164>,
    pub user_id: Option<Bsuid>,
    pub parent_user_id: Option<Bsuid>,
    /// Personal data like the phone: encrypted, never logged.
    pub username: Option<String>,
}

impl Identity {
    pub fn is_empty(&self) -> bool {
        self.phone.is_none() && self.user_id.is_none() && self.parent_user_id.is_none()
    }
}

/// The blind index of a BSUID (`parent` picks the parent's domain). The
/// workspace is part of the input, like for phones.
pub fn user_id_index(keys: &Keys, workspace_id: &str, id: &Bsuid, parent: bool) -> Vec<u8> {
    let domain = if parent {
        "contact.parent_user_id"
    } else {
        "contact.user_id"
    };
    keys.current()
        .blind_index(domain, format!("{workspace_id}:{id}").as_bytes())
        .to_vec()
}

/// Writes the identifiers `identity` has into `row` (sealed, with their
/// indexes); the ones it lacks stay as they were. Returns whether anything changed.
pub fn apply_identity(keys: &Keys, row: &mut ContactRow, identity: &Identity) -> bool {
    let ring = keys.current();
    let seal =
        |column: &str, bytes: &[u8]| ring.encrypt(Aad::new("contacts", column, &row.id), bytes);
    let mut changed = false;
    if let Some(phone) = &identity.phone {
        let index = super::phone_index(keys, &row.workspace_id, phone);
        if row.phone_index.as_deref() != Some(index.as_slice()) {
            row.phone = Some(seal("phone", phone.as_str().as_bytes()));
            row.phone_index = Some(index);
            changed = true;
        }
    }
    if let Some(id) = &identity.user_id {
        let index = user_id_index(keys, &row.workspace_id, id, false);
        if row.user_id_index.as_deref() != Some(index.as_slice()) {
            row.user_id = Some(seal("user_id", id.as_str().as_bytes()));
            row.user_id_index = Some(index);
            changed = true;
        }
    }
    if let Some(id) = &identity.parent_user_id {
        let index = user_id_index(keys, &row.workspace_id, id, true);
        if row.parent_user_id_index.as_deref() != Some(index.as_slice()) {
            row.parent_user_id = Some(seal("parent_user_id", id.as_str().as_bytes()));
            row.parent_user_id_index = Some(index);
            changed = true;
        }
    }
    if let Some(name) = &identity.username {
        let same = open(keys, row, "username", row.username.as_deref())
            .ok()
            .flatten()
            .is_some_and(|old| old == *name);
        if !same {
            row.username = Some(seal("username", name.as_bytes()));
            changed = true;
        }
    }
    changed
}

fn open(
    keys: &Keys,
    row: &ContactRow,
    column: &str,
    value: Option<&[u8]>,
) -> anyhow::Result<Option<String>> {
    value
        .map(|v| {
            let plain = keys
                .current()
                .decrypt(Aad::new("contacts", column, &row.id), v)?;
            Ok(String::from_utf8(plain.to_vec())?)
        })
        .transpose()
}

/// The identifiers a contact has, decrypted.
pub fn contact_identity(keys: &Keys, row: &ContactRow) -> anyhow::Result<Identity> {
    let bsuid = |column: &str, value: Option<&[u8]>| -> anyhow::Result<Option<Bsuid>> {
        Ok(open(keys, row, column, value)?
            .map(|s| Bsuid::parse(&s))
            .transpose()?)
    };
    Ok(Identity {
        phone: open(keys, row, "phone", row.phone.as_deref())?
            .map(|s| E164::parse(&s))
            .transpose()?,
        user_id: bsuid("user_id", row.user_id.as_deref())?,
        parent_user_id: bsuid("parent_user_id", row.parent_user_id.as_deref())?,
        username: open(keys, row, "username", row.username.as_deref())?,
    })
}
