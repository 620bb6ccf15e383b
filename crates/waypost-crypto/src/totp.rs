//! Time-based one-time passwords (RFC 6238) for second-factor sign-in:
//! secrets, the `otpauth://` enrolment URI and its QR code, and verification
//! with a ±1 step window and replay protection.
//!
//! Parameters are the ones every authenticator app supports: HMAC-SHA-1,
//! 6 digits, 30-second steps. The caller stores the secret encrypted and the
//! last accepted step, which [`verify_totp`] needs to refuse replays.

use qrcode::QrCode;
use qrcode::render::svg;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroize;

use crate::token::ct_eq;

const DIGITS: usize = 6;
const STEP_SECONDS: u64 = 30;
/// RFC 4226 recommends 160-bit secrets for HMAC-SHA-1.
const SECRET_LEN: usize = 20;
/// Steps accepted either side of the current one, for clock drift and typing time.
const SKEW_STEPS: u64 = 1;

/// A TOTP shared secret. `Debug` never prints it.
pub struct TotpSecret(SecretSlice<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_LEN];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        Self(SecretSlice::from(bytes))
    }

    /// Wraps a secret decrypted from storage.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(SecretSlice::from(bytes))
    }

    /// The raw secret, for the caller to encrypt before storing it.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// Unpadded RFC 4648 base32, for members who type the secret into their
    /// app instead of scanning the QR code.
    pub fn to_base32(&self) -> SecretString {
        let totp = Totp::new(self, None, String::new());
        SecretString::from(totp.0.get_secret_base32())
    }
}

/// A `totp_rs::TOTP` holding a copy of the secret, wiped when dropped
/// (totp-rs only zeroizes with a feature we do not enable).
struct Totp(TOTP);

impl Totp {
    fn new(secret: &TotpSecret, issuer: Option<String>, account: String) -> Self {
        // `new_unchecked`: secrets decrypted from storage are taken as they are;
        // the length check belongs to enrolment, which uses `generate`.
        Self(TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            SKEW_STEPS as u8,
            STEP_SECONDS,
            secret.expose_bytes().to_vec(),
            issuer,
            account,
        ))
    }

    /// `None` for steps whose start time does not fit in a `u64`.
    fn code_for_step(&self, step: u64) -> Option<String> {
        step.checked_mul(STEP_SECONDS).map(|t| self.0.generate(t))
    }
}

impl Drop for Totp {
    fn drop(&mut self) {
        self.0.secret.zeroize();
    }
}

/// The `otpauth://totp/Issuer:account?secret=…&issuer=…` URI that
/// authenticator apps read from the QR code. Issuer and account are
/// percent-encoded, so a `:` in either cannot shift the label apart.
pub fn otpauth_uri(secret: &TotpSecret, issuer: &str, account: &str) -> String {
    let totp = Totp::new(secret, Some(issuer.to_owned()), account.to_owned());
    totp.0.get_url()
}

/// The data is longer than a QR code can hold (about 2.9 KB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("data is too long to fit in a QR code")]
pub struct QrTooLong;

/// An SVG QR code of `data`, at least 200×200 px, or [`QrTooLong`] when the
/// data exceeds QR capacity.
pub fn try_qr_svg(data: &str) -> Result<String, QrTooLong> {
    let code = QrCode::new(data.as_bytes()).map_err(|_| QrTooLong)?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// An SVG QR code of `data`, at least 200×200 px, for the enrolment page.
/// An `otpauth` URI never comes near QR capacity; should some other input
/// exceed it, the result is a 200×200 SVG saying so rather than a panic,
/// and the member can still type the base32 secret.
pub fn qr_svg(data: &str) -> String {
    try_qr_svg(data).unwrap_or_else(|_| QR_UNAVAILABLE_SVG.to_owned())
}

const QR_UNAVAILABLE_SVG: &str = concat!(
    r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200" viewBox="0 0 200 200">"#,
    r#"<rect width="200" height="200" fill="white" stroke="black"/>"#,
    r#"<text x="100" y="104" font-size="12" text-anchor="middle">QR code unavailable</text>"#,
    "</svg>"
);

/// The code for `unix_time`, for tests and tooling.
pub fn totp_code_at(secret: &TotpSecret, unix_time: u64) -> String {
    let step_start = unix_time - unix_time % STEP_SECONDS;
    Totp::new(secret, None, String::new())
        .0
        .generate(step_start)
}

/// Checks a 6-digit code against the steps around `unix_time` and returns the
/// step it matched. Returns `None` for a wrong code, malformed input, or a
/// step not after `last_used_step`: a code works once, and once a newer code
/// has been used no older one is accepted. The caller stores the returned step.
pub fn verify_totp(
    secret: &TotpSecret,
    code: &str,
    unix_time: u64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = Totp::new(secret, None, String::new());
    let current = unix_time / STEP_SECONDS;
    let first = current.saturating_sub(SKEW_STEPS);
    let mut accepted = None;
    // Every candidate is computed and compared, so timing does not reveal
    // which step (if any) matched.
    for step in first..=current.saturating_add(SKEW_STEPS) {
        let matches = totp
            .code_for_step(step)
            .is_some_and(|expected| ct_eq(expected.as_bytes(), code.as_bytes()));
        let fresh = last_used_step.is_none_or(|last| step > last);
        if matches && fresh {
            accepted = Some(step);
        }
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 6238 appendix B SHA-1 secret.
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn rfc6238_test_vectors_truncated_to_six_digits() {
        // Appendix B gives 8-digit codes; 6-digit codes are their last six digits.
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        let secret = rfc_secret();
        for (time, eight) in vectors {
            assert_eq!(totp_code_at(&secret, time), eight[2..], "T={time}");
        }
        assert_eq!(totp_code_at(&secret, 59), "287082");
    }

    #[test]
    fn accepts_the_current_step_and_one_either_side() {
        let secret = rfc_secret();
        let now = 1_111_111_111; // step 37037037
        let step = now / 30;
        for (offset, expected) in [
            (-1i64, Some(step - 1)),
            (0, Some(step)),
            (1, Some(step + 1)),
        ] {
            let code = totp_code_at(&secret, (now as i64 + offset * 30) as u64);
            assert_eq!(verify_totp(&secret, &code, now, None), expected, "{offset}");
        }
        for offset in [-2i64, 2] {
            let code = totp_code_at(&secret, (now as i64 + offset * 30) as u64);
            assert_eq!(verify_totp(&secret, &code, now, None), None, "{offset}");
        }
    }

    #[test]
    fn a_code_is_refused_the_second_time() {
        let secret = TotpSecret::generate();
        let now = 1_700_000_000;
        let code = totp_code_at(&secret, now);
        let step = verify_totp(&secret, &code, now, None).unwrap();
        assert_eq!(step, now / 30);
        assert_eq!(verify_totp(&secret, &code, now, Some(step)), None);
        assert_eq!(verify_totp(&secret, &code, now + 20, Some(step)), None);
    }

    #[test]
    fn an_older_code_is_refused_after_a_newer_one() {
        let secret = TotpSecret::generate();
        let now = 1_700_000_000;
        let newer = verify_totp(&secret, &totp_code_at(&secret, now + 30), now, None).unwrap();
        let older = totp_code_at(&secret, now);
        assert_eq!(verify_totp(&secret, &older, now, Some(newer)), None);
        // The next step's code is still fine afterwards.
        let next = totp_code_at(&secret, now + 60);
        assert_eq!(
            verify_totp(&secret, &next, now + 60, Some(newer)),
            Some(newer + 1)
        );
    }

    #[test]
    fn garbage_input_is_refused() {
        let secret = rfc_secret();
        let code = totp_code_at(&secret, 59);
        assert_eq!(
            verify_totp(&secret, &format!(" {code}\n"), 59, None),
            Some(1)
        );
        for input in [
            "",
            "28708",
            "2870822",
            "94287082",
            "28708a",
            "287 082",
            "-28708",
            "２８７０８２",
            "abcdef",
        ] {
            assert_eq!(verify_totp(&secret, input, 59, None), None, "{input:?}");
        }
    }

    #[test]
    fn time_zero_does_not_underflow() {
        let secret = rfc_secret();
        let code = totp_code_at(&secret, 0);
        assert_eq!(verify_totp(&secret, &code, 0, None), Some(0));
        assert_eq!(verify_totp(&secret, &code, 0, Some(0)), None);
        let far = totp_code_at(&secret, u64::MAX);
        assert_eq!(
            verify_totp(&secret, &far, u64::MAX, None),
            Some(u64::MAX / 30)
        );
    }

    #[test]
    fn secrets_are_160_bit_random_and_redacted() {
        let a = TotpSecret::generate();
        let b = TotpSecret::generate();
        assert_eq!(a.expose_bytes().len(), 20);
        assert_ne!(a.expose_bytes(), b.expose_bytes());
        assert_eq!(format!("{a:?}"), "TotpSecret([redacted])");
        let copy = TotpSecret::from_bytes(a.expose_bytes().to_vec());
        assert_eq!(totp_code_at(&a, 1234), totp_code_at(&copy, 1234));
    }

    #[test]
    fn base32_and_otpauth_uri() {
        let secret = rfc_secret();
        assert_eq!(
            secret.to_base32().expose_secret(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert_eq!(
            otpauth_uri(&secret, "Waypost", "alice@example.com"),
            "otpauth://totp/Waypost:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Waypost"
        );
        let uri = otpauth_uri(&secret, "Acme: Support", "bob:x@example.com");
        assert!(
            uri.starts_with("otpauth://totp/Acme%3A%20Support:bob%3Ax%40example.com?"),
            "{uri}"
        );
    }

    #[test]
    fn qr_svg_renders_an_svg_of_at_least_200px() {
        let svg = qr_svg(&otpauth_uri(&rfc_secret(), "Waypost", "alice@example.com"));
        assert!(svg.starts_with("<?xml"), "{}", &svg[..60]);
        assert!(svg.contains("<svg"));
        let width: u32 = svg
            .split("width=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|w| w.parse().ok())
            .unwrap();
        assert!(width >= 200, "{width}");
        assert_eq!(try_qr_svg(&"x".repeat(10_000)), Err(QrTooLong));
        let fallback = qr_svg(&"x".repeat(10_000));
        assert!(fallback.starts_with("<svg") && fallback.contains("width=\"200\""));
        assert!(!fallback.contains("xxxx"));
    }
}
