//! Stripe's webhook signature (`Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]`):
//! HMAC-SHA256 keyed with the whole endpoint secret (`whsec_…` as UTF-8, not
//! decoded) over `"{t}.{raw body}"`. Any `v1` may match (secret rolls give
//! several); other schemes (`v0`) are ignored; comparison is constant time;
//! a timestamp older than the tolerance is refused.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Stripe's default tolerance for the signature's age, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header has no timestamp")]
    NoTimestamp,
    #[error("the Stripe-Signature header has no v1 signature")]
    NoSignature,
    #[error("no v1 signature matches")]
    Mismatch,
    #[error("the signature's timestamp is outside the tolerance")]
    Expired,
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header Stripe would send for `body` at `timestamp` (for tests and fakes).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let sig = hex::encode(mac(secret.as_bytes(), &t, body).finalize().into_bytes());
    format!("t={t},v1={sig}")
}

/// Checks `header` against `body`; returns the signed timestamp.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<i64, SignatureError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for item in header.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            continue;
        };
        match k {
            "t" => timestamp = Some(v),
            "v1" => candidates.push(v),
            _ => {}
        }
    }
    let t_text = timestamp.ok_or(SignatureError::NoTimestamp)?;
    let t: i64 = t_text.parse().map_err(|_| SignatureError::NoTimestamp)?;
    if candidates.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    let expected = mac(secret.as_bytes(), t_text, body);
    let matched = candidates
        .iter()
        .any(|c| hex::decode(c).is_ok_and(|bytes| expected.clone().verify_slice(&bytes).is_ok()));
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    if t < now - tolerance {
        return Err(SignatureError::Expired);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_0123456789abcdef";
    const BODY: &[u8] = br#"{"id":"evt_test_123","object":"event","type":"invoice.paid"}"#;
    const HEADER: &str =
        "t=1700000000,v1=f2adcb4def3527b4eb3fc0a176941d329ad4946c1be56306fcc9a5a5f95e8a4c";

    #[test]
    fn stripes_documented_vector() {
        assert_eq!(sign(SECRET, 1_700_000_000, BODY), HEADER);
        assert_eq!(
            verify(SECRET, HEADER, BODY, 1_700_000_100, TOLERANCE_SECS),
            Ok(1_700_000_000)
        );
    }

    #[test]
    fn any_v1_may_match_and_other_schemes_are_ignored() {
        let sig = HEADER.split_once(",v1=").unwrap().1;
        let header = format!("t=1700000000,v1={},v1={sig},v0=ffff", "0".repeat(64));
        assert!(verify(SECRET, &header, BODY, 1_700_000_000, TOLERANCE_SECS).is_ok());
        let only_v0 = format!("t=1700000000,v0={sig}");
        assert_eq!(
            verify(SECRET, &only_v0, BODY, 1_700_000_000, TOLERANCE_SECS),
            Err(SignatureError::NoSignature)
        );
    }

    #[test]
    fn wrong_secret_changed_body_or_old_timestamp_is_refused() {
        let now = 1_700_000_000;
        assert_eq!(
            verify("whsec_other", HEADER, BODY, now, TOLERANCE_SECS),
            Err(SignatureError::Mismatch)
        );
        let mut body = BODY.to_vec();
        body.push(b'\n');
        assert_eq!(
            verify(SECRET, HEADER, &body, now, TOLERANCE_SECS),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, HEADER, BODY, now + 301, TOLERANCE_SECS),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify(SECRET, "v1=abc", BODY, now, TOLERANCE_SECS),
            Err(SignatureError::NoTimestamp)
        );
    }
}
