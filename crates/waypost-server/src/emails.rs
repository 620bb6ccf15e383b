//! Members' email addresses at rest, like contacts' phone numbers: sealed
//! under the data key (bound to table, column and row, so re-encrypted on key
//! rotation) and found by a blind index of the normalised address. The store
//! only ever sees ciphertexts and indexes; this module seals, opens and looks
//! up, and converts the plaintext an older version left behind.

use anyhow::Context;
use waypost_crypto::Aad;
use waypost_store::account::EmailTokenRecord;
use waypost_store::identity::{Member, SealedEmail, UserRecord};
use waypost_store::legacy_emails::LEGACY_EMAIL_TABLES;
use waypost_store::members::InvitationRecord;
use waypost_store::{Store, StoreError};

use crate::error::ApiError;
use crate::keys::Keys;
use crate::state::AppState;

/// Blind-index domain of an address (global: an address is one account).
const INDEX_DOMAIN: &str = "user.email";
/// Rows converted per query by [`seal_legacy`].
const LEGACY_BATCH: u32 = 500;

/// Trimmed and lowercased, as `Email::parse` stores it, so that any spelling
/// of an address finds the same index.
fn normalise(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The blind index of an address.
pub fn index(keys: &Keys, email: &str) -> Vec<u8> {
    keys.current()
        .blind_index(INDEX_DOMAIN, normalise(email).as_bytes())
        .to_vec()
}

/// Seals `email` for row `id` of `table` (`users`, `invitations`, `email_tokens`).
pub fn seal(keys: &Keys, table: &str, id: &str, email: &str) -> SealedEmail {
    let normal = normalise(email);
    let ring = keys.current();
    SealedEmail {
        sealed: ring.encrypt(Aad::new(table, "email", id), normal.as_bytes()),
        index: ring.blind_index(INDEX_DOMAIN, normal.as_bytes()).to_vec(),
    }
}

async fn open(
    keys: &Keys,
    store: &dyn Store,
    table: &str,
    id: &str,
    sealed: &[u8],
) -> anyhow::Result<String> {
    let plain = keys
        .decrypt(store, Aad::new(table, "email", id), sealed)
        .await
        .with_context(|| format!("cannot open the email of {table} {id}"))?;
    String::from_utf8(plain.to_vec()).with_context(|| format!("the email of {table} {id}"))
}

/// Fills `user.email` from its sealed form.
pub async fn open_user(state: &AppState, mut user: UserRecord) -> Result<UserRecord, ApiError> {
    user.email = open(
        &state.keys,
        state.store.as_ref(),
        "users",
        &user.id,
        &user.sealed_email,
    )
    .await?;
    Ok(user)
}

/// The user with this id, address opened; `NotFound` as the store says.
pub async fn user(state: &AppState, id: &str) -> Result<UserRecord, ApiError> {
    let user = state.store.get_user_sealed(id).await?;
    open_user(state, user).await
}

/// The user signing in with `email` (any case, surrounding spaces ignored).
pub async fn user_by_email(state: &AppState, email: &str) -> Result<Option<UserRecord>, ApiError> {
    match state
        .store
        .find_user_by_email_index(&index(&state.keys, email))
        .await?
    {
        Some(user) => Ok(Some(open_user(state, user).await?)),
        None => Ok(None),
    }
}

/// The workspace's members with their addresses, ordered by address.
pub async fn members(state: &AppState, workspace_id: &str) -> Result<Vec<Member>, ApiError> {
    let mut members = state.store.list_members_sealed(workspace_id).await?;
    for m in &mut members {
        m.email = open(
            &state.keys,
            state.store.as_ref(),
            "users",
            &m.user_id,
            &m.sealed_email,
        )
        .await?;
    }
    members.sort_by(|a, b| a.email.cmp(&b.email));
    Ok(members)
}

/// The workspace's owners' user ids and addresses.
pub async fn owners(
    state: &AppState,
    workspace_id: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut owners = Vec::new();
    for (id, sealed) in state.store.workspace_owners(workspace_id).await? {
        let email = open(&state.keys, state.store.as_ref(), "users", &id, &sealed).await?;
        owners.push((id, email));
    }
    Ok(owners)
}

/// Fills `inv.email` from its sealed form.
pub async fn open_invitation(
    state: &AppState,
    mut inv: InvitationRecord,
) -> Result<InvitationRecord, ApiError> {
    inv.email = open(
        &state.keys,
        state.store.as_ref(),
        "invitations",
        &inv.id,
        &inv.sealed_email,
    )
    .await?;
    Ok(inv)
}

/// Fills `t.email` from its sealed form.
pub async fn open_token(
    state: &AppState,
    mut t: EmailTokenRecord,
) -> Result<EmailTokenRecord, ApiError> {
    t.email = open(
        &state.keys,
        state.store.as_ref(),
        "email_tokens",
        &t.id,
        &t.sealed_email.sealed,
    )
    .await?;
    Ok(t)
}

/// Seals every plaintext address an older version stored (the migration
/// that encrypted emails could not); run at startup before serving. Returns
/// how many rows it converted.
pub async fn seal_legacy(store: &dyn Store, keys: &Keys) -> Result<u64, StoreError> {
    let mut sealed = 0;
    for &t in LEGACY_EMAIL_TABLES {
        loop {
            let rows = store.legacy_emails(t, LEGACY_BATCH).await?;
            let before = sealed;
            for row in &rows {
                let email = seal(keys, t.table, &row.id, &row.legacy_email);
                if store
                    .seal_legacy_email(t, &row.id, &row.legacy_email, &email)
                    .await?
                {
                    sealed += 1;
                }
            }
            // A short batch was the last; a batch that moved nothing would repeat.
            if (rows.len() as u32) < LEGACY_BATCH || sealed == before {
                break;
            }
        }
    }
    if sealed > 0 {
        store.scrub_legacy_emails().await?;
        tracing::info!(rows = sealed, "stored email addresses encrypted");
    }
    Ok(sealed)
}

/// The workspace's invitations (newest first) with their addresses.
pub async fn invitations(
    state: &AppState,
    workspace_id: &str,
) -> Result<Vec<InvitationRecord>, ApiError> {
    let mut out = Vec::new();
    for inv in state.store.list_invitations(workspace_id).await? {
        out.push(open_invitation(state, inv).await?);
    }
    Ok(out)
}

/// The invitation a token's hash names, with its address.
pub async fn invitation(
    state: &AppState,
    token_hash: &[u8],
) -> Result<Option<InvitationRecord>, ApiError> {
    match state.store.find_invitation(token_hash).await? {
        Some(inv) => Ok(Some(open_invitation(state, inv).await?)),
        None => Ok(None),
    }
}

/// The email link a token's hash names, with its address.
pub async fn email_token(
    state: &AppState,
    token_hash: &[u8],
) -> Result<Option<EmailTokenRecord>, ApiError> {
    match state.store.find_email_token(token_hash).await? {
        Some(t) => Ok(Some(open_token(state, t).await?)),
        None => Ok(None),
    }
}
