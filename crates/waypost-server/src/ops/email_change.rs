//! Email verification and change. A person confirms their address with a
//! mailed link; a change of address takes effect only when the new address
//! confirms it, the old address is told at once and, once it happened, gets
//! a link to undo it (which also ends every session). Links are one-time,
//! stored as hashes, and open `/account/email?token=…`.

use axum::http::StatusCode;
use chrono::Duration;
use secrecy::ExposeSecret;
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_core::auth::Email;
use waypost_core::mail::{MailKind, mask_address};
use waypost_crypto::token;
use waypost_store::account::{EmailChange, EmailTokenRecord};

use crate::auth::Caller;
use crate::auth::caller::require_recent_auth;
use crate::error::{ApiError, Problem, unprocessable};
use crate::mail::{self, letters};
use crate::state::{AppState, RequestOrigin};

const LINK_HOURS: i64 = 24;
const UNDO_DAYS: i64 = 7;

/// What a link does, for the page that asks to confirm it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Verify,
    Change,
    Undo,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Change => "change",
            Self::Undo => "undo",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Verify, Self::Change, Self::Undo]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

fn link(state: &AppState, secret: &str) -> String {
    format!("{}/account/email?token={secret}", state.config.public_url())
}

fn mail_off() -> ApiError {
    Problem::new(
        StatusCode::CONFLICT,
        "mail-off",
        "Mail is not configured",
        "This Waypost sends no mail (WAYPOST_SMTP_URL is unset), so addresses cannot be confirmed.",
    )
    .into()
}

fn new_token(
    state: &AppState,
    user_id: &str,
    purpose: Purpose,
    email: &str,
    valid: Duration,
) -> (EmailTokenRecord, String) {
    let now = state.clock.now();
    let secret = token::generate_session_token();
    let id = format!("emt_{}", ulid::Ulid::new());
    let record = EmailTokenRecord {
        sealed_email: crate::emails::seal(&state.keys, "email_tokens", &id, email),
        id,
        user_id: user_id.to_owned(),
        purpose: purpose.as_str().to_owned(),
        email: email.to_owned(),
        token_hash: token::hash_session_token(secret.expose_secret()).to_vec(),
        created_at: now,
        expires_at: now + valid,
        used_at: None,
    };
    let url = link(state, secret.expose_secret());
    (record, url)
}

/// Mails the signed-in person a link confirming their current address.
pub async fn request_verification(
    state: &AppState,
    origin: &RequestOrigin,
    caller: &Caller,
) -> Result<(), ApiError> {
    // Who asks comes first: an API key learns nothing of the mail set-up.
    let user = &caller.session()?.user;
    if !state.config.mail_enabled() {
        return Err(mail_off());
    }
    send_verification(state, Some(origin), &user.id, &user.email, caller.actor()).await
}

/// Mails a new account (made by setup) a link confirming its address; does
/// nothing without mail.
pub async fn verify_new_account(
    state: &AppState,
    user_id: &str,
    email: &str,
) -> Result<(), ApiError> {
    if state.config.mail_enabled() {
        send_verification(state, None, user_id, email, Actor::User(user_id.to_owned())).await?;
    }
    Ok(())
}

async fn send_verification(
    state: &AppState,
    origin: Option<&RequestOrigin>,
    user_id: &str,
    email: &str,
    actor: Actor,
) -> Result<(), ApiError> {
    let (record, url) = new_token(
        state,
        user_id,
        Purpose::Verify,
        email,
        Duration::hours(LINK_HOURS),
    );
    let event = NewAuditEvent::new(None, actor, "account.email_verification_sent")
        .target("user", user_id.to_owned())
        .mail(mail::queue(
            state,
            MailKind::EmailVerification,
            &letters::verify_address(email, &url),
        ));
    let event = match origin {
        Some(origin) => origin.stamp(event),
        None => event,
    };
    state.store.create_email_token(&record, event).await?;
    Ok(())
}

/// Asks to change the signed-in person's address (step-up): the new address
/// gets a confirmation link, the old one a notice.
pub async fn request_change(
    state: &AppState,
    origin: &RequestOrigin,
    caller: &Caller,
    new_email: &str,
) -> Result<(), ApiError> {
    require_recent_auth(state, caller)?;
    if !state.config.mail_enabled() {
        return Err(mail_off());
    }
    let user = &caller.session()?.user;
    let email = Email::parse(new_email).map_err(|e| unprocessable(format!("`email`: {e}")))?;
    if email.as_str() == user.email {
        return Err(unprocessable(
            "`email`: this is already the account's address",
        ));
    }
    if crate::emails::user_by_email(state, email.as_str())
        .await?
        .is_some()
    {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "Conflict",
            "Another account uses this address.",
        )
        .into());
    }
    let (record, url) = new_token(
        state,
        &user.id,
        Purpose::Change,
        email.as_str(),
        Duration::hours(LINK_HOURS),
    );
    let event = NewAuditEvent::new(None, caller.actor(), "account.email_change_requested")
        .target("user", user.id.clone())
        .details(serde_json::json!({ "to": mask_address(email.as_str()) }))
        .mail(mail::queue(
            state,
            MailKind::EmailVerification,
            &letters::verify_address(email.as_str(), &url),
        ))
        .mail(mail::queue(
            state,
            MailKind::EmailChanged,
            &letters::change_requested(&user.email, email.as_str()),
        ));
    state
        .store
        .create_email_token(&record, origin.stamp(event))
        .await?;
    Ok(())
}

fn invalid_link() -> ApiError {
    Problem::new(
        StatusCode::NOT_FOUND,
        "email-link-invalid",
        "Link invalid",
        "This link is unknown, used or expired.",
    )
    .into()
}

/// The usable link a token names and what it does.
pub async fn pending(
    state: &AppState,
    token: &str,
) -> Result<(EmailTokenRecord, Purpose), ApiError> {
    let record = crate::emails::email_token(state, &token::hash_session_token(token.trim()))
        .await?
        .ok_or_else(invalid_link)?;
    let purpose = Purpose::parse(&record.purpose).ok_or_else(invalid_link)?;
    if record.used_at.is_some() || record.expires_at <= state.clock.now() {
        return Err(invalid_link());
    }
    Ok((record, purpose))
}

/// The link's address sealed again for the account's row (ciphertexts are bound to theirs).
fn for_user(state: &AppState, user_id: &str, email: &str) -> waypost_store::identity::SealedEmail {
    crate::emails::seal(&state.keys, "users", user_id, email)
}

/// Uses a link (verify, apply a change, or undo one); returns what it did.
pub async fn confirm(
    state: &AppState,
    origin: &RequestOrigin,
    token: &str,
) -> Result<Purpose, ApiError> {
    let (record, purpose) = pending(state, token).await?;
    let user = crate::emails::user(state, &record.user_id).await?;
    let actor = Actor::User(user.id.clone());
    let now = state.clock.now();
    let (change, follow_up, event) = match purpose {
        Purpose::Verify => (
            EmailChange::Verify,
            None,
            NewAuditEvent::new(None, actor, "account.email_verified"),
        ),
        Purpose::Change => {
            let (undo, url) = new_token(
                state,
                &user.id,
                Purpose::Undo,
                &user.email,
                Duration::days(UNDO_DAYS),
            );
            let letter = letters::email_changed(&user.email, &record.email, &url);
            let event = NewAuditEvent::new(None, actor, "account.email_changed")
                .details(serde_json::json!({ "from": mask_address(&user.email), "to": mask_address(&record.email) }))
                .mail(mail::queue(state, MailKind::EmailChanged, &letter));
            (
                EmailChange::Apply(for_user(state, &user.id, &record.email)),
                Some(undo),
                event,
            )
        }
        Purpose::Undo => {
            let event = NewAuditEvent::new(None, actor, "account.email_change_undone")
                .details(serde_json::json!({ "from": mask_address(&user.email), "to": mask_address(&record.email) }))
                .mail(mail::queue(state, MailKind::EmailChanged, &letters::email_restored(&record.email)));
            (
                EmailChange::Undo(for_user(state, &user.id, &record.email)),
                None,
                event,
            )
        }
    };
    let event = origin.stamp(event.target("user", user.id.clone()));
    match state
        .store
        .use_email_token(&record, change, follow_up.as_ref(), now, event)
        .await
    {
        Err(waypost_store::StoreError::NotFound(_)) => Err(invalid_link()),
        other => {
            other?;
            Ok(purpose)
        }
    }
}
