//! Signing in and proving it is still you: the password check (with per-address
//! throttling, account lockout and phantom lockouts for unknown accounts), the
//! second factor (TOTP or a recovery code), opening a session, and step-up
//! re-authentication. The JSON API and the dashboard's sign-in pages both call
//! these and differ only in how they answer.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_core::auth::Email;
use waypost_crypto::password::PasswordCheck;
use waypost_crypto::{Aad, token, totp};
use waypost_store::identity::{SessionRecord, UserRecord};

use crate::auth::rate_limit::RateLimitInfo;
use crate::error::ApiError;
use crate::state::{AppState, RequestOrigin};

/// Why a sign-in attempt was turned away.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// Too many attempts from this address.
    Throttled(RateLimitInfo),
    /// The account (or the phantom of an unknown one) is locked until then.
    Locked(DateTime<Utc>),
    /// Wrong email, password or second factor; deliberately not saying which.
    InvalidCredentials,
}

/// A second factor presented with (or after) the password.
#[derive(Debug, Clone, Default)]
pub enum SecondFactor {
    #[default]
    None,
    Totp(String),
    Recovery(String),
}

/// Checks an email and password. A wrong password counts toward the account's
/// lockout; an unknown email costs the same hashing time and locks a phantom,
/// so neither timing nor lockouts reveal which accounts exist.
pub async fn check_password(
    state: &AppState,
    origin: &RequestOrigin,
    email: &str,
    password: &SecretString,
) -> Result<Result<UserRecord, Refusal>, ApiError> {
    if let Some(ip) = origin.ip {
        let info = state.limits.login_ip.check(&ip);
        if info.retry_after_secs.is_some() {
            return Ok(Err(Refusal::Throttled(info)));
        }
        // The answer's `RateLimit-*` headers show the sign-in quota.
        if let Some(slot) = &origin.rate_limit {
            slot.replace(info);
        }
    }
    let now = state.clock.now();
    let password = password.expose_secret().to_owned();
    let user = match Email::parse(email) {
        Ok(email) => crate::emails::user_by_email(state, email.as_str()).await?,
        Err(_) => None,
    };
    let Some(user) = user else {
        let key = state
            .keys
            .current()
            .blind_index("login.email", email.trim().to_lowercase().as_bytes());
        let hasher = state.hasher.clone();
        tokio::task::spawn_blocking(move || hasher.verify_dummy(&password))
            .await
            .map_err(anyhow::Error::from)?;
        if let Some(until) = state.phantom_lockouts.locked_until(&key, now) {
            return Ok(Err(Refusal::Locked(until)));
        }
        // Unknown accounts count too (credential stuffing), by a keyed hash of the email.
        let account: String = key.iter().take(8).map(|b| format!("{b:02x}")).collect();
        count_sign_in(
            state,
            origin,
            &format!("unknown:{account}"),
            None,
            false,
            now,
        );
        let event = NewAuditEvent::new(None, Actor::System, "auth.login_failed")
            .details(serde_json::json!({ "reason": "unknown_account" }));
        state.audit(origin.stamp(event)).await?;
        let policy = state.config.lockout_policy();
        return Ok(Err(match state.phantom_lockouts.fail(key, now, policy) {
            Some(until) => Refusal::Locked(until),
            None => Refusal::InvalidCredentials,
        }));
    };
    let hasher = state.hasher.clone();
    let stored = user.password_hash.clone();
    let (check, rehash) = tokio::task::spawn_blocking(move || {
        let check = hasher.verify(&password, &stored);
        let rehash = matches!(check, PasswordCheck::Valid { needs_rehash: true })
            .then(|| hasher.hash(&password));
        (check, rehash)
    })
    .await
    .map_err(anyhow::Error::from)?;
    if let Some(until) = user.locked_until.filter(|u| *u > now) {
        return Ok(Err(Refusal::Locked(until)));
    }
    if matches!(check, PasswordCheck::Invalid) {
        return Ok(Err(record_failure(
            state,
            &user,
            origin,
            "wrong_password",
            now,
        )
        .await?));
    }
    if let Some(hash) = rehash {
        state.store.set_password_hash(&user.id, &hash).await?;
    }
    Ok(Ok(user))
}

/// Whether the user must present a second factor (TOTP or a passkey).
pub async fn needs_second_factor(state: &AppState, user: &UserRecord) -> Result<bool, ApiError> {
    Ok(user.totp_enabled || state.store.count_passkeys(&user.id).await? > 0)
}

/// Checks the second factor of a user whose password was right. `Err(reason)`
/// names the failure for the audit log; `mfa_required` means none was given.
pub async fn check_second_factor(
    state: &AppState,
    user: &UserRecord,
    factor: &SecondFactor,
    now: DateTime<Utc>,
) -> Result<Result<(), &'static str>, ApiError> {
    if !user.totp_enabled {
        if state.store.count_passkeys(&user.id).await? == 0 {
            return Ok(Ok(()));
        }
        return Ok(match factor {
            SecondFactor::None => Err("mfa_required"),
            _ => Err("wrong_totp"),
        });
    }
    Ok(match factor {
        SecondFactor::None => Err("mfa_required"),
        SecondFactor::Totp(code) => {
            if check_totp(state, user, code, now).await? {
                Ok(())
            } else {
                Err("wrong_totp")
            }
        }
        SecondFactor::Recovery(code) => {
            let Some(normalized) = token::normalize_recovery_code(code) else {
                return Ok(Err("wrong_recovery_code"));
            };
            let hash = recovery_code_hash(state, &user.id, &normalized);
            if state.store.use_recovery_code(&user.id, &hash, now).await? {
                let left = state.store.unused_recovery_codes(&user.id).await?;
                let event = NewAuditEvent::new(
                    None,
                    Actor::User(user.id.clone()),
                    "mfa.recovery_code_used",
                )
                .target("user", user.id.clone())
                .details(serde_json::json!({ "remaining": left }))
                .mail(super::notices::recovery_code_used(state, &user.email, left));
                state.audit(event).await?;
                Ok(())
            } else {
                Err("wrong_recovery_code")
            }
        }
    })
}

/// A recovery code's keyed hash, bound to its user.
pub fn recovery_code_hash(state: &AppState, user_id: &str, normalized: &str) -> Vec<u8> {
    state
        .keys
        .current()
        .blind_index(
            "recovery_code",
            format!("{user_id}:{normalized}").as_bytes(),
        )
        .to_vec()
}

/// Checks a TOTP code and claims its time step, so each code works once.
pub async fn check_totp(
    state: &AppState,
    user: &UserRecord,
    code: &str,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let Some(encrypted) = &user.totp_secret else {
        return Ok(false);
    };
    let aad = Aad::new("users", "totp_secret", &user.id);
    let secret = totp::TotpSecret::from_bytes(
        state
            .keys
            .decrypt(state.store.as_ref(), aad, encrypted)
            .await?
            .to_vec(),
    );
    let last = user.totp_last_step.map(|s| s as u64);
    let Some(step) = totp::verify_totp(&secret, code, now.timestamp().max(0) as u64, last) else {
        return Ok(false);
    };
    Ok(state.store.claim_totp_step(&user.id, step as i64).await?)
}

/// Audits a failed attempt and counts it toward the account's lockout.
pub async fn record_failure(
    state: &AppState,
    user: &UserRecord,
    origin: &RequestOrigin,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Refusal, ApiError> {
    count_sign_in(state, origin, &user.id, Some(&user.id), false, now);
    let failure = NewAuditEvent::new(None, Actor::User(user.id.clone()), "auth.login_failed")
        .target("user", user.id.clone())
        .details(serde_json::json!({ "reason": reason }));
    let lockout =
        NewAuditEvent::new(None, Actor::System, "auth.locked").target("user", user.id.clone());
    let outcome = state
        .store
        .record_login_failure(
            &user.id,
            now,
            state.config.lockout_policy(),
            origin.stamp(failure),
            origin.stamp(lockout),
        )
        .await?;
    Ok(match outcome.locked_until {
        Some(until) => Refusal::Locked(until),
        None => Refusal::InvalidCredentials,
    })
}

/// Clears the failure counters and opens a session (audited `auth.login` with
/// `details`); the token goes into the cookie and nowhere else.
pub async fn open_session(
    state: &AppState,
    user: &UserRecord,
    origin: &RequestOrigin,
    details: serde_json::Value,
) -> Result<(SecretString, SessionRecord), ApiError> {
    let now = state.clock.now();
    state.store.clear_login_failures(&user.id).await?;
    count_sign_in(state, origin, &user.id, Some(&user.id), true, now);
    let token = token::generate_session_token();
    let session = SessionRecord {
        id: format!("ses_{}", ulid::Ulid::new()),
        token_hash: token::hash_session_token(token.expose_secret()).to_vec(),
        user_id: user.id.clone(),
        created_at: now,
        last_seen_at: now,
        reauthenticated_at: now,
        ip: origin.ip.map(|ip| ip.to_string()),
        user_agent: origin.user_agent.clone(),
        revoked_at: None,
    };
    let notice = super::notices::new_sign_in(state, user, origin).await?;
    let event = NewAuditEvent::new(None, Actor::User(user.id.clone()), "auth.login")
        .target("session", session.id.clone())
        .details(details)
        .mail(notice);
    state
        .store
        .create_session(&session, origin.stamp(event))
        .await?;
    Ok((token, session))
}

/// Whether `password` is the user's.
pub async fn verify_password(
    state: &AppState,
    user: &UserRecord,
    password: &SecretString,
) -> Result<bool, ApiError> {
    let hasher = state.hasher.clone();
    let (password, stored) = (
        password.expose_secret().to_owned(),
        user.password_hash.clone(),
    );
    let check = tokio::task::spawn_blocking(move || hasher.verify(&password, &stored))
        .await
        .map_err(anyhow::Error::from)?;
    Ok(matches!(check, PasswordCheck::Valid { .. }))
}

/// Marks a session as re-authenticated now (audited), unlocking sensitive actions
/// for the step-up window.
pub async fn mark_reauthenticated(
    state: &AppState,
    origin: &RequestOrigin,
    user: &UserRecord,
    session: &SessionRecord,
) -> Result<(), ApiError> {
    let event = NewAuditEvent::new(None, Actor::User(user.id.clone()), "auth.reauthenticated")
        .target("session", session.id.clone());
    state
        .store
        .mark_reauthenticated(&session.id, state.clock.now(), origin.stamp(event))
        .await?;
    Ok(())
}

/// Counts a sign-in attempt for the detectors: per user (with the network it
/// came from), per network, and per (network, account) pair.
fn count_sign_in(
    state: &AppState,
    origin: &RequestOrigin,
    account: &str,
    user_id: Option<&str>,
    success: bool,
    now: DateTime<Utc>,
) {
    use waypost_core::trust::{ScopeKind, network_of, signal};
    if !state.signals.enabled() {
        return;
    }
    let name = if success {
        signal::SIGN_IN
    } else {
        signal::SIGN_IN_FAILURE
    };
    let net = origin.ip.map(network_of);
    if let Some(user) = user_id {
        state
            .signals
            .add(now, None, &[(ScopeKind::User, user)], name, 1);
        if let (true, Some(net)) = (success, &net) {
            let seen = format!("{}{net}", signal::NETWORK_PREFIX);
            state
                .signals
                .add(now, None, &[(ScopeKind::User, user)], &seen, 1);
        }
    }
    if let (false, Some(net)) = (success, &net) {
        let pair = format!("{net} {account}");
        state.signals.add(
            now,
            None,
            &[(ScopeKind::Network, net), (ScopeKind::NetworkUser, &pair)],
            name,
            1,
        );
    }
}
