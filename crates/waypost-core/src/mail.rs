//! Outgoing mail as the domain sees it: what kind of message, for which
//! recipient (masked, for operators), and its sealed content. Sealing and
//! sending happen in the server; this crate only names the kinds and the
//! rules that do not need I/O (backoff, how many attempts).

use chrono::Duration;

/// Every kind of mail Waypost sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    PasswordReset,
    EmailVerification,
    Invitation,
    NewSignIn,
    PasswordChanged,
    MfaAdded,
    MfaRemoved,
    ApiKeyCreated,
    RecoveryCodeUsed,
    AccountDeletion,
    EmailChanged,
    WorkspaceDeletion,
    /// A suspension or a security alert in a workspace the recipient owns.
    SecurityNotice,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::EmailVerification => "email_verification",
            Self::Invitation => "invitation",
            Self::NewSignIn => "new_sign_in",
            Self::PasswordChanged => "password_changed",
            Self::MfaAdded => "mfa_added",
            Self::MfaRemoved => "mfa_removed",
            Self::ApiKeyCreated => "api_key_created",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::AccountDeletion => "account_deletion",
            Self::EmailChanged => "email_changed",
            Self::WorkspaceDeletion => "workspace_deletion",
            Self::SecurityNotice => "security_notice",
        }
    }
}

/// A mail ready to queue: it is inserted in the transaction of the change
/// that causes it (carried by that change's audit event).
#[derive(Clone)]
pub struct QueuedMail {
    pub id: String,
    pub kind: MailKind,
    /// The recipient masked (`a***@example.com`), for operators' views.
    pub recipient_hint: String,
    /// Recipient, subject and bodies, encrypted by the server's key ring.
    pub sealed: Vec<u8>,
    /// When it was queued by the application's clock; first due then.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for QueuedMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedMail")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("recipient_hint", &self.recipient_hint)
            .finish_non_exhaustive()
    }
}

/// How many times a mail is tried before it is given up.
pub const MAX_ATTEMPTS: i32 = 8;

/// The wait before attempt `attempts + 1`: 10 s doubling, capped at one hour.
pub fn retry_delay(attempts: i32, base_ms: u64) -> Duration {
    let factor = 1u64 << attempts.clamp(0, 16);
    let ms = base_ms.saturating_mul(factor).min(3_600_000);
    Duration::milliseconds(ms as i64)
}

/// `alice@example.com` → `a***@example.com`; never the full local part.
pub fn mask_address(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_local_part() {
        assert_eq!(mask_address("alice@example.com"), "a***@example.com");
        assert_eq!(mask_address("nonsense"), "***");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(retry_delay(0, 10_000), Duration::seconds(10));
        assert_eq!(retry_delay(1, 10_000), Duration::seconds(20));
        assert_eq!(retry_delay(30, 10_000), Duration::hours(1));
    }
}
