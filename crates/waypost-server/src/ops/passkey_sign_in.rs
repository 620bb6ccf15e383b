//! Signing in with a passkey, for the dashboard: passwordless with a
//! discoverable passkey (the authenticator names the account, no email typed)
//! and as the second factor after a correct password. Like the password
//! check, attempts are throttled per address, failures are audited and count
//! toward the account's lockout, and a locked account stays locked.

use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_store::identity::UserRecord;
use waypost_store::passkeys::{ChallengeKind, PasskeyRecord};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, PasskeyAuthentication, PublicKeyCredential,
};

use super::passkeys::{
    Started, accept_assertion, credential_id_hash, decrypt_credential, invalid_challenge,
    save_challenge, take_challenge, user_handle, verify_assertion,
};
use super::sign_in::{Refusal, record_failure};
use crate::error::ApiError;
use crate::state::{AppState, RequestOrigin};

/// Starts a passwordless sign-in with any passkey the authenticator holds for this site.
pub async fn discover_start(state: &AppState) -> Result<Started, ApiError> {
    let (options, ceremony) = state
        .webauthn
        .start_discoverable_authentication()
        .map_err(|e| anyhow::anyhow!("cannot start passkey authentication: {e}"))?;
    let challenge_id = save_challenge(state, ChallengeKind::Discover, None, &ceremony).await?;
    let mut options = serde_json::to_value(options).map_err(anyhow::Error::from)?;
    // webauthn-rs asks for conditional mediation (autofill); the page offers
    // a button, which needs the ordinary modal prompt.
    if let Some(o) = options.as_object_mut() {
        o.remove("mediation");
    }
    Ok(Started {
        challenge_id,
        options,
    })
}

/// Finishes a passwordless sign-in: the account the passkey belongs to, or
/// why not. An unknown or used challenge is a 422 problem.
pub async fn discover_finish(
    state: &AppState,
    origin: &RequestOrigin,
    challenge_id: &str,
    credential: &PublicKeyCredential,
) -> Result<Result<(UserRecord, PasskeyRecord), Refusal>, ApiError> {
    if let Some(refusal) = throttled(state, origin) {
        return Ok(Err(refusal));
    }
    let taken: Option<(_, DiscoverableAuthentication)> =
        take_challenge(state, challenge_id, ChallengeKind::Discover, None).await?;
    let Some((_, ceremony)) = taken else {
        anonymous_failure(state, origin, "unknown_challenge").await?;
        return Err(invalid_challenge());
    };
    // The authenticator names the credential and the user handle; both must
    // lead to the same account.
    let (handle, cred_id) = match state
        .webauthn
        .identify_discoverable_authentication(credential)
    {
        Ok(found) => found,
        Err(_) => {
            anonymous_failure(state, origin, "no_user_handle").await?;
            return Ok(Err(Refusal::InvalidCredentials));
        }
    };
    let record = state
        .store
        .find_passkey(&credential_id_hash(state, cred_id))
        .await?;
    let user = match &record {
        Some(r) => Some(crate::emails::user(state, &r.user_id).await?),
        None => None,
    };
    let (Some(record), Some(user)) = (record, user) else {
        anonymous_failure(state, origin, "unknown_passkey").await?;
        return Ok(Err(Refusal::InvalidCredentials));
    };
    let now = state.clock.now();
    if let Some(until) = user.locked_until.filter(|u| *u > now) {
        return Ok(Err(Refusal::Locked(until)));
    }
    if user_handle(state, &user) != handle {
        return Ok(Err(record_failure(
            state,
            &user,
            origin,
            "wrong_user_handle",
            now,
        )
        .await?));
    }
    let passkey = decrypt_credential(state, &record).await?;
    let key = DiscoverableKey::from(&passkey);
    let outcome =
        match state
            .webauthn
            .finish_discoverable_authentication(credential, ceremony, &[key])
        {
            Ok(result) => accept_assertion(state, &user, &result).await?,
            Err(_) => Err("wrong_passkey"),
        };
    match outcome {
        Ok(record) => Ok(Ok((user, record))),
        Err(reason) => Ok(Err(record_failure(state, &user, origin, reason, now).await?)),
    }
}

/// Finishes the second factor for `user` (whose password was right) with an
/// answer to their [`super::passkeys::second_factor_challenge`]. `None`:
/// the challenge is unknown, used, expired or another user's.
pub async fn second_factor_finish(
    state: &AppState,
    origin: &RequestOrigin,
    user: &UserRecord,
    challenge_id: &str,
    credential: &PublicKeyCredential,
) -> Result<Option<Result<PasskeyRecord, Refusal>>, ApiError> {
    if let Some(refusal) = throttled(state, origin) {
        return Ok(Some(Err(refusal)));
    }
    let now = state.clock.now();
    if let Some(until) = user.locked_until.filter(|u| *u > now) {
        return Ok(Some(Err(Refusal::Locked(until))));
    }
    let taken: Option<(_, PasskeyAuthentication)> = take_challenge(
        state,
        challenge_id,
        ChallengeKind::Authenticate,
        Some(&user.id),
    )
    .await?;
    let Some((_, ceremony)) = taken else {
        return Ok(None);
    };
    Ok(Some(
        match verify_assertion(state, user, &ceremony, credential).await? {
            Ok(record) => Ok(record),
            Err(reason) => Err(record_failure(state, user, origin, reason, now).await?),
        },
    ))
}

/// The per-address sign-in limit, shared with the password step.
fn throttled(state: &AppState, origin: &RequestOrigin) -> Option<Refusal> {
    let info = state.limits.login_ip.check(&origin.ip?);
    if info.retry_after_secs.is_some() {
        return Some(Refusal::Throttled(info));
    }
    if let Some(slot) = &origin.rate_limit {
        slot.replace(info);
    }
    None
}

/// A failed passkey sign-in that names no account.
async fn anonymous_failure(
    state: &AppState,
    origin: &RequestOrigin,
    reason: &str,
) -> Result<(), ApiError> {
    let event = NewAuditEvent::new(None, Actor::System, "auth.login_failed")
        .details(serde_json::json!({ "reason": reason, "method": "passkey" }));
    state.audit(origin.stamp(event)).await?;
    Ok(())
}
