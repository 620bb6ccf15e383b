//! Security notices by mail: what a change tells the account holder. Each
//! returns the sealed mail to attach to the change's audit event (so it is
//! queued in the change's transaction), or nothing when mail is off.

use waypost_core::mail::{MailKind, QueuedMail};
use waypost_store::identity::UserRecord;

use crate::mail::{self, letters};
use crate::state::{AppState, RequestOrigin};

fn when(state: &AppState) -> String {
    state.clock.now().format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn password_changed(state: &AppState, user: &UserRecord) -> Option<QueuedMail> {
    let letter = letters::password_changed(&user.email, &when(state));
    mail::queue(state, MailKind::PasswordChanged, &letter)
}

pub fn mfa_added(state: &AppState, email: &str, method: &str) -> Option<QueuedMail> {
    mail::queue(
        state,
        MailKind::MfaAdded,
        &letters::mfa_added(email, method),
    )
}

pub fn mfa_removed(state: &AppState, email: &str, method: &str) -> Option<QueuedMail> {
    mail::queue(
        state,
        MailKind::MfaRemoved,
        &letters::mfa_removed(email, method),
    )
}

pub fn api_key_created(
    state: &AppState,
    email: &str,
    name: &str,
    prefix: &str,
) -> Option<QueuedMail> {
    mail::queue(
        state,
        MailKind::ApiKeyCreated,
        &letters::api_key_created(email, name, prefix),
    )
}

pub fn recovery_code_used(state: &AppState, email: &str, remaining: i64) -> Option<QueuedMail> {
    mail::queue(
        state,
        MailKind::RecoveryCodeUsed,
        &letters::recovery_code_used(email, remaining),
    )
}

/// A notice when this sign-in comes from a network and device (user agent)
/// pair the account has not used before. The first sign-in of an account
/// sends none: there is nothing yet to compare with.
pub async fn new_sign_in(
    state: &AppState,
    user: &UserRecord,
    origin: &RequestOrigin,
) -> Result<Option<QueuedMail>, crate::error::ApiError> {
    if !state.config.mail_enabled() {
        return Ok(None);
    }
    let ip = origin.ip.map(|ip| ip.to_string());
    let history = state
        .store
        .sign_in_history(&user.id, ip.as_deref(), origin.user_agent.as_deref())
        .await?;
    if history.sessions == 0 || (history.same_network > 0 && history.same_device > 0) {
        return Ok(None);
    }
    let letter = letters::new_sign_in(
        &user.email,
        &when(state),
        ip.as_deref().unwrap_or("unknown"),
        origin.user_agent.as_deref().unwrap_or("unknown"),
    );
    Ok(mail::queue(state, MailKind::NewSignIn, &letter))
}
