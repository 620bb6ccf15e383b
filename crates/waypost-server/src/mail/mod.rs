//! Outgoing mail: letters (plain text plus simple HTML, `letters`), sealed
//! under the key ring into a [`QueuedMail`] that rides on the audit event of
//! the change causing it, and the worker that sends them over SMTP
//! (`deliver`). Mail is only queued when SMTP is configured; without it the
//! flows that need a link hand it to an operator instead (see the README).

pub mod deliver;
pub mod letters;

use serde::{Deserialize, Serialize};
use waypost_core::mail::{MailKind, QueuedMail, mask_address};
use waypost_crypto::{Aad, KeyRing};

pub const TABLE: &str = "mail_outbox";
pub const COLUMN: &str = "sealed";

/// One message: recipient, subject and both bodies.
#[derive(Clone, Serialize, Deserialize)]
pub struct Letter {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl std::fmt::Debug for Letter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Letter")
            .field("to", &mask_address(&self.to))
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Seals `letter` for the outbox, due at `now`.
pub fn seal(
    ring: &KeyRing,
    kind: MailKind,
    letter: &Letter,
    now: chrono::DateTime<chrono::Utc>,
) -> QueuedMail {
    let id = format!("mail_{}", ulid::Ulid::new());
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(letter).expect("a letter serialises"));
    QueuedMail {
        sealed: ring.encrypt(Aad::new(TABLE, COLUMN, &id), &plain),
        recipient_hint: mask_address(&letter.to),
        kind,
        id,
        created_at: now,
    }
}

/// Seals `letter` when mail is configured; `None` otherwise (nothing is queued
/// that no worker would send).
pub fn queue(
    state: &crate::state::AppState,
    kind: MailKind,
    letter: &Letter,
) -> Option<QueuedMail> {
    state
        .config
        .mail_enabled()
        .then(|| seal(&state.keys.current(), kind, letter, state.clock.now()))
}
