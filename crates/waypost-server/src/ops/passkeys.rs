//! WebAuthn passkeys of the signed-in user: registering (step-up required),
//! renaming and removing them, and the ceremony plumbing every passkey flow
//! shares (sign-in in `passkey_sign_in`, step-up, the API and the pages):
//! ceremony state is encrypted, kept five minutes and taken once; a passkey is
//! found by a keyed hash of its credential id and its stored credential (with
//! the signature counter) is encrypted at rest.

use axum::http::StatusCode;
use chrono::Duration;
use serde::Serialize;
use serde::de::DeserializeOwned;
use waypost_core::NewAuditEvent;
use waypost_crypto::Aad;
use waypost_store::identity::UserRecord;
use waypost_store::passkeys::{
    ChallengeKind, ChallengeRecord, MAX_PASSKEYS_PER_USER, PasskeyRecord,
};
use webauthn_rs::prelude::{
    AuthenticationResult, CredentialID, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Uuid,
};

use crate::auth::Caller;
use crate::auth::caller::require_recent_auth;
use crate::error::{ApiError, Problem};
use crate::state::{AppState, RequestOrigin};

/// How long a started ceremony may be finished.
const CHALLENGE_TTL_SECS: i64 = 5 * 60;
const MAX_NAME_CHARS: usize = 64;

/// A started ceremony: `options` go to the browser's
/// `navigator.credentials.create()` / `get()`, the answer comes back with `challenge_id`.
pub struct Started {
    pub challenge_id: String,
    pub options: serde_json::Value,
}

/// Whether a new passkey must be discoverable (stored on the authenticator
/// with the account's user handle), so it can sign in without an email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residency {
    /// The authenticator decides (API clients, security keys with few slots).
    Any,
    /// The dashboard's passkeys, used for passwordless sign-in.
    Discoverable,
}

pub fn invalid_challenge() -> ApiError {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-challenge",
        "Unknown or expired challenge",
        "The WebAuthn challenge is unknown, already used or older than 5 minutes; start again.",
    )
    .into()
}

/// A passkey's label: 1 to 64 printable characters, trimmed.
pub fn valid_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim().to_owned();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-name",
            "Invalid name",
            format!("`name` must be 1 to {MAX_NAME_CHARS} printable characters."),
        )
        .into());
    }
    Ok(name)
}

/// Starts registering a passkey for the signed-in user (step-up required).
pub async fn register_start(
    state: &AppState,
    caller: &Caller,
    residency: Residency,
) -> Result<Started, ApiError> {
    require_recent_auth(state, caller)?;
    let user = &caller.session()?.user;
    let existing = user_passkeys(state, &user.id).await?;
    if existing.len() as i64 >= MAX_PASSKEYS_PER_USER {
        return Err(waypost_store::StoreError::Conflict(format!(
            "a user may hold at most {MAX_PASSKEYS_PER_USER} passkeys"
        ))
        .into());
    }
    let exclude: Vec<CredentialID> = existing.iter().map(|(_, p)| p.cred_id().clone()).collect();
    let (options, registration) = state
        .webauthn
        .start_passkey_registration(
            user_handle(state, user),
            &user.email,
            &user.email,
            Some(exclude),
        )
        .map_err(|e| anyhow::anyhow!("cannot start passkey registration: {e}"))?;
    let challenge_id = save_challenge(
        state,
        ChallengeKind::Register,
        Some(&user.id),
        &registration,
    )
    .await?;
    let mut options = serde_json::to_value(options).map_err(anyhow::Error::from)?;
    if residency == Residency::Discoverable {
        // The registration state does not depend on this: webauthn-rs accepts
        // either kind of credential when the ceremony finishes.
        let selection = &mut options["publicKey"]["authenticatorSelection"];
        selection["residentKey"] = "required".into();
        selection["requireResidentKey"] = true.into();
    }
    Ok(Started {
        challenge_id,
        options,
    })
}

/// Finishes registration: checks the authenticator's answer and stores the
/// passkey (audited, with a notice to the account's email).
pub async fn register_finish(
    state: &AppState,
    origin: &RequestOrigin,
    caller: &Caller,
    challenge_id: &str,
    name: &str,
    credential: &RegisterPublicKeyCredential,
) -> Result<PasskeyRecord, ApiError> {
    let user = &caller.session()?.user;
    let name = valid_name(name)?;
    let registration: PasskeyRegistration =
        take_challenge(state, challenge_id, ChallengeKind::Register, Some(&user.id))
            .await?
            .ok_or_else(invalid_challenge)?
            .1;
    let passkey = state
        .webauthn
        .finish_passkey_registration(credential, &registration)
        .map_err(|_| {
            ApiError::from(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "passkey-rejected",
                "Passkey refused",
                "The authenticator's answer does not match the challenge, origin or policy.",
            ))
        })?;
    let id = format!("pk_{}", ulid::Ulid::new());
    let record = PasskeyRecord {
        credential_id_hash: credential_id_hash(state, passkey.cred_id()),
        credential: encrypt_credential(state, &id, &passkey)?,
        id,
        user_id: user.id.clone(),
        name,
        created_at: state.clock.now(),
        last_used_at: None,
    };
    let event = NewAuditEvent::new(None, caller.actor(), "mfa.passkey_added")
        .target("passkey", record.id.clone())
        .details(serde_json::json!({ "name": record.name }))
        .mail(super::notices::mfa_added(
            state,
            &user.email,
            &format!("the passkey \"{}\"", record.name),
        ));
    state
        .store
        .create_passkey(&record, origin.stamp(event))
        .await?;
    Ok(record)
}

/// The signed-in user's passkeys, oldest first.
pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<PasskeyRecord>, ApiError> {
    let user = &caller.session()?.user;
    Ok(state.store.list_passkeys(&user.id).await?)
}

/// Renames one of the signed-in user's passkeys (a label only: no step-up).
pub async fn rename(
    state: &AppState,
    origin: &RequestOrigin,
    caller: &Caller,
    id: &str,
    name: &str,
) -> Result<(), ApiError> {
    let user = &caller.session()?.user;
    let name = valid_name(name)?;
    let event = NewAuditEvent::new(None, caller.actor(), "mfa.passkey_renamed")
        .target("passkey", id.to_owned())
        .details(serde_json::json!({ "name": name }));
    state
        .store
        .rename_passkey(&user.id, id, &name, origin.stamp(event))
        .await?;
    Ok(())
}

/// Removes one of the signed-in user's passkeys (step-up required).
pub async fn remove(
    state: &AppState,
    origin: &RequestOrigin,
    caller: &Caller,
    id: &str,
) -> Result<(), ApiError> {
    require_recent_auth(state, caller)?;
    let user = &caller.session()?.user;
    let event = NewAuditEvent::new(None, caller.actor(), "mfa.passkey_removed")
        .target("passkey", id.to_owned())
        .mail(super::notices::mfa_removed(state, &user.email, "a passkey"));
    state
        .store
        .delete_passkey(&user.id, id, origin.stamp(event))
        .await?;
    Ok(())
}

/// The WebAuthn user handle: stable, opaque, and not the user id itself.
pub fn user_handle(state: &AppState, user: &UserRecord) -> Uuid {
    let digest = state
        .keys
        .current()
        .blind_index("passkey.user_handle", user.id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

pub fn credential_id_hash(state: &AppState, id: &[u8]) -> Vec<u8> {
    state
        .keys
        .current()
        .blind_index("passkey.credential_id", id)
        .to_vec()
}

fn encrypt_credential(state: &AppState, id: &str, passkey: &Passkey) -> Result<Vec<u8>, ApiError> {
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(passkey).map_err(anyhow::Error::from)?);
    Ok(state
        .keys
        .current()
        .encrypt(Aad::new("passkeys", "credential", id), &plain))
}

pub async fn decrypt_credential(
    state: &AppState,
    record: &PasskeyRecord,
) -> Result<Passkey, ApiError> {
    let aad = Aad::new("passkeys", "credential", &record.id);
    let plain = state
        .keys
        .decrypt(state.store.as_ref(), aad, &record.credential)
        .await?;
    Ok(serde_json::from_slice(&plain).map_err(anyhow::Error::from)?)
}

/// The user's passkeys with their decrypted credentials.
pub async fn user_passkeys(
    state: &AppState,
    user_id: &str,
) -> Result<Vec<(PasskeyRecord, Passkey)>, ApiError> {
    let mut out = Vec::new();
    for record in state.store.list_passkeys(user_id).await? {
        let passkey = decrypt_credential(state, &record).await?;
        out.push((record, passkey));
    }
    Ok(out)
}

/// Encrypts and stores a ceremony's state; returns its id.
pub async fn save_challenge(
    state: &AppState,
    kind: ChallengeKind,
    user_id: Option<&str>,
    ceremony: &impl Serialize,
) -> Result<String, ApiError> {
    let id = format!("wac_{}", ulid::Ulid::new());
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(ceremony).map_err(anyhow::Error::from)?);
    let now = state.clock.now();
    let record = ChallengeRecord {
        state: state
            .keys
            .current()
            .encrypt(Aad::new("webauthn_challenges", "state", &id), &plain),
        id: id.clone(),
        user_id: user_id.map(str::to_owned),
        kind: kind.as_str().to_owned(),
        created_at: now,
        expires_at: now + Duration::seconds(CHALLENGE_TTL_SECS),
    };
    state.store.create_webauthn_challenge(&record).await?;
    Ok(id)
}

/// Takes (deletes) a live challenge of `kind` and decrypts its state; `None`
/// when unknown, used, expired or (with `owner`) started by another user.
pub async fn take_challenge<T: DeserializeOwned>(
    state: &AppState,
    id: &str,
    kind: ChallengeKind,
    owner: Option<&str>,
) -> Result<Option<(Option<String>, T)>, ApiError> {
    let now = state.clock.now();
    let Some(record) = state.store.take_webauthn_challenge(id, kind, now).await? else {
        return Ok(None);
    };
    if owner.is_some() && record.user_id.as_deref() != owner {
        return Ok(None);
    }
    let aad = Aad::new("webauthn_challenges", "state", &record.id);
    let plain = state
        .keys
        .decrypt(state.store.as_ref(), aad, &record.state)
        .await?;
    let ceremony = serde_json::from_slice(&plain).map_err(anyhow::Error::from)?;
    Ok(Some((record.user_id, ceremony)))
}

/// A passkey assertion challenge for a user who has passkeys, as the second
/// factor after a correct password; `None` without passkeys.
pub async fn second_factor_challenge(
    state: &AppState,
    user: &UserRecord,
) -> Result<Option<Started>, ApiError> {
    let passkeys: Vec<Passkey> = user_passkeys(state, &user.id)
        .await?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    if passkeys.is_empty() {
        return Ok(None);
    }
    let (options, auth) = state
        .webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(|e| anyhow::anyhow!("cannot start passkey authentication: {e}"))?;
    let challenge_id =
        save_challenge(state, ChallengeKind::Authenticate, Some(&user.id), &auth).await?;
    Ok(Some(Started {
        challenge_id,
        options: serde_json::to_value(options).map_err(anyhow::Error::from)?,
    }))
}

/// Checks an assertion against a taken ceremony for `user`; see [`accept_assertion`].
pub async fn verify_assertion(
    state: &AppState,
    user: &UserRecord,
    ceremony: &PasskeyAuthentication,
    credential: &PublicKeyCredential,
) -> Result<Result<PasskeyRecord, &'static str>, ApiError> {
    let Ok(result) = state
        .webauthn
        .finish_passkey_authentication(credential, ceremony)
    else {
        return Ok(Err("wrong_passkey"));
    };
    accept_assertion(state, user, &result).await
}

/// After a valid signature: the passkey must be `user`'s and its signature
/// counter must move forward (a counter that does not suggests a cloned
/// authenticator). Stores the new counter. `Err(reason)` for the audit log.
pub async fn accept_assertion(
    state: &AppState,
    user: &UserRecord,
    result: &AuthenticationResult,
) -> Result<Result<PasskeyRecord, &'static str>, ApiError> {
    let hash = credential_id_hash(state, result.cred_id());
    let Some(record) = state
        .store
        .find_passkey(&hash)
        .await?
        .filter(|r| r.user_id == user.id)
    else {
        return Ok(Err("unknown_passkey"));
    };
    // The ceremony holds the counter as it was at start; compare with the
    // stored one too, so two ceremonies started together cannot both pass.
    let mut passkey = decrypt_credential(state, &record).await?;
    let stored: serde_json::Value = serde_json::to_value(&passkey).map_err(anyhow::Error::from)?;
    let stored_counter = stored["cred"]["counter"].as_u64().unwrap_or(0);
    if (result.counter() > 0 || stored_counter > 0) && u64::from(result.counter()) <= stored_counter
    {
        return Ok(Err("passkey_counter_regressed"));
    }
    passkey.update_credential(result);
    let encrypted = encrypt_credential(state, &record.id, &passkey)?;
    state
        .store
        .record_passkey_use(&record.id, &encrypted, state.clock.now())
        .await?;
    Ok(Ok(record))
}

/// Checks a passkey answer to a step-up challenge; the challenge must have
/// been issued to this user.
pub async fn check_step_up_assertion(
    state: &AppState,
    user: &UserRecord,
    challenge_id: &str,
    credential: &PublicKeyCredential,
) -> Result<bool, ApiError> {
    let taken: Option<(_, PasskeyAuthentication)> = take_challenge(
        state,
        challenge_id,
        ChallengeKind::Authenticate,
        Some(&user.id),
    )
    .await?;
    let Some((_, ceremony)) = taken else {
        return Ok(false);
    };
    Ok(verify_assertion(state, user, &ceremony, credential)
        .await?
        .is_ok())
}
