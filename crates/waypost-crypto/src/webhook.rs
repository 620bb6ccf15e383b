//! Standard Webhooks signatures for customer webhooks: `whsec_` secrets
//! (base64 of 32 random bytes after the prefix), `v1,` + base64 HMAC-SHA256
//! over `{id}.{timestamp}.{body}`, and the matching verifier used by
//! `waypost webhooks verify`. Verification compares in constant time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Every webhook secret starts with this.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a secret Waypost generates.
const SECRET_BYTES: usize = 32;
/// Receivers reject timestamps further than this from their clock.
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;

/// Why a secret or signature was refused. Never carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSignatureError {
    #[error("the secret is not `whsec_` followed by base64")]
    MalformedSecret,
    #[error("the timestamp is not an integer number of seconds")]
    MalformedTimestamp,
    #[error("the timestamp is {0} s away from now (more than the tolerance)")]
    TimestampOutOfTolerance(i64),
    #[error("no `v1,` signature in the header matches")]
    NoMatch,
}

/// A decoded signing key.
pub struct WebhookKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookKey([redacted])")
    }
}

impl WebhookKey {
    /// Decodes `whsec_<base64>` (the prefix is optional, as in the reference libraries).
    pub fn parse(secret: &str) -> Result<Self, WebhookSignatureError> {
        let b64 = secret.strip_prefix(WEBHOOK_SECRET_PREFIX).unwrap_or(secret);
        let bytes = STANDARD
            .decode(b64.trim())
            .map_err(|_| WebhookSignatureError::MalformedSecret)?;
        if bytes.is_empty() {
            return Err(WebhookSignatureError::MalformedSecret);
        }
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// Checks a `webhook-signature` header (space-separated `v1,…` entries)
    /// and, when `now` is given, that the timestamp is within the tolerance.
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signature_header: &str,
        body: &[u8],
        now: Option<i64>,
    ) -> Result<(), WebhookSignatureError> {
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| WebhookSignatureError::MalformedTimestamp)?;
        if let Some(now) = now
            && (now - ts).abs() > DEFAULT_TOLERANCE_SECS
        {
            return Err(WebhookSignatureError::TimestampOutOfTolerance(now - ts));
        }
        let expected = self.mac(id, ts, body);
        let matched = signature_header
            .split_whitespace()
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| STANDARD.decode(s).ok())
            .any(|sig| crate::token::ct_eq(&sig, &expected));
        if matched {
            Ok(())
        } else {
            Err(WebhookSignatureError::NoMatch)
        }
    }
}

/// A new secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_webhook_secret() -> SecretString {
    let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
    rand::rng().fill_bytes(bytes.as_mut());
    SecretString::from(format!(
        "{WEBHOOK_SECRET_PREFIX}{}",
        STANDARD.encode(bytes.as_ref())
    ))
}

/// Signs with each key, space-separated (several while a secret is rotated).
pub fn signature_header(keys: &[&WebhookKey], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| k.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a stored secret is well formed (for data read back from storage).
pub fn is_webhook_secret(secret: &SecretString) -> bool {
    let s = secret.expose_secret();
    s.starts_with(WEBHOOK_SECRET_PREFIX) && WebhookKey::parse(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks reference libraries.
    #[test]
    fn reference_test_vector_reproduces() {
        let key = WebhookKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = key.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        key.verify(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            &format!("v1,bogus {sig}"),
            br#"{"test": 2432232314}"#,
            Some(1614265330 + 10),
        )
        .unwrap();
    }

    #[test]
    fn verification_refuses_changes_and_stale_timestamps() {
        let key = WebhookKey::parse(generate_webhook_secret().expose_secret()).unwrap();
        let sig = key.sign("evt_1", 1000, b"{}");
        assert_eq!(
            key.verify("evt_1", "1000", &sig, b"{ }", None),
            Err(WebhookSignatureError::NoMatch)
        );
        assert_eq!(
            key.verify("evt_2", "1000", &sig, b"{}", None),
            Err(WebhookSignatureError::NoMatch)
        );
        assert_eq!(
            key.verify("evt_1", "1000", &sig, b"{}", Some(1000 + 301)),
            Err(WebhookSignatureError::TimestampOutOfTolerance(301))
        );
        assert!(key.verify("evt_1", "1000", &sig, b"{}", Some(1299)).is_ok());
    }

    #[test]
    fn generated_secrets_are_32_random_bytes() {
        let a = generate_webhook_secret();
        let b = generate_webhook_secret();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(is_webhook_secret(&a));
        let raw = STANDARD
            .decode(a.expose_secret().strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert_eq!(
            format!("{:?}", WebhookKey::parse(a.expose_secret()).unwrap()),
            "WebhookKey([redacted])"
        );
    }

    #[test]
    fn rotation_headers_carry_both_signatures() {
        let old = WebhookKey::parse(generate_webhook_secret().expose_secret()).unwrap();
        let new = WebhookKey::parse(generate_webhook_secret().expose_secret()).unwrap();
        let header = signature_header(&[&new, &old], "evt_1", 5, b"x");
        assert_eq!(header.split(' ').count(), 2);
        assert!(old.verify("evt_1", "5", &header, b"x", None).is_ok());
        assert!(new.verify("evt_1", "5", &header, b"x", None).is_ok());
    }
}
