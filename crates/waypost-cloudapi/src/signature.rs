//! `X-Hub-Signature-256` on webhook POSTs: lowercase hex HMAC-SHA256 of the
//! exact body bytes, keyed with the App Secret, prefixed `sha256=`. Verify the
//! raw bytes before parsing; never re-serialise the JSON to check it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header's name, as Meta sends it.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

const PREFIX: &str = "sha256=";

fn mac(app_secret: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(app_secret).expect("HMAC takes any key length");
    mac.update(body);
    mac
}

/// The header value Meta (and our sandbox) sends: `sha256=<64 lowercase hex>`.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    format!(
        "{PREFIX}{}",
        hex::encode(mac(app_secret, body).finalize().into_bytes())
    )
}

/// Checks a `X-Hub-Signature-256` value against the raw body in constant
/// time. Anything but `sha256=` followed by exactly 64 hex digits is
/// rejected; hex case is accepted either way since it is an encoding detail.
pub fn verify_signature(app_secret: &[u8], raw_body: &[u8], header: &str) -> bool {
    let Some(hex_part) = header.strip_prefix(PREFIX) else {
        return false;
    };
    if hex_part.len() != 64 {
        return false;
    }
    let Ok(expected) = hex::decode(hex_part) else {
        return false;
    };
    mac(app_secret, raw_body).verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"app-secret";
    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;

    #[test]
    fn known_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sign_then_verify() {
        let h = sign(SECRET, BODY);
        assert!(verify_signature(SECRET, BODY, &h));
        assert!(verify_signature(
            SECRET,
            BODY,
            &h.to_ascii_uppercase().replacen("SHA256=", "sha256=", 1)
        ));
    }

    #[test]
    fn rejects_wrong_secret_body_or_malformed_header() {
        let h = sign(SECRET, BODY);
        assert!(!verify_signature(b"other", BODY, &h));
        assert!(!verify_signature(SECRET, b"{}", &h));
        let hex_part = &h[PREFIX.len()..];
        for bad in [
            String::new(),
            "sha256=".into(),
            hex_part.to_owned(),
            format!("sha1={hex_part}"),
            format!("SHA256={hex_part}"),
            format!("sha256={}", &hex_part[..62]),
            format!("sha256={hex_part}00"),
            format!("sha256= {}", &hex_part[1..]),
            format!("sha256={}zz", &hex_part[..62]),
            format!(" {h}"),
        ] {
            assert!(!verify_signature(SECRET, BODY, &bad), "accepted {bad:?}");
        }
    }

    proptest! {
        #[test]
        fn round_trips_and_detects_any_flip(secret in proptest::collection::vec(any::<u8>(), 0..80),
                                            body in proptest::collection::vec(any::<u8>(), 0..300),
                                            flip in any::<prop::sample::Index>()) {
            let h = sign(&secret, &body);
            prop_assert!(verify_signature(&secret, &body, &h));
            if !body.is_empty() {
                let mut tampered = body.clone();
                tampered[flip.index(body.len())] ^= 1;
                prop_assert!(!verify_signature(&secret, &tampered, &h));
            }
        }

        #[test]
        fn arbitrary_headers_never_panic(header in ".*") {
            let _ = verify_signature(SECRET, BODY, &header);
        }
    }
}
