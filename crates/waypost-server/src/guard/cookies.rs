//! The session cookie: an opaque 256-bit token, `HttpOnly`, `SameSite=Lax`,
//! path `/`, and `Secure` whenever the client reached us over TLS.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::config::Config;

pub const SESSION_COOKIE: &str = "waypost_session";

/// The session token from the `Cookie` header, if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Whether the client's connection is TLS (directly, or at a trusted proxy).
pub fn is_secure(config: &Config, headers: &HeaderMap) -> bool {
    config.tls_enabled()
        || (config.trust_proxy_headers
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                == Some("https"))
}

pub fn set_session(token: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .expect("session tokens are base64url")
}

pub fn clear_session(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
    ))
    .expect("static cookie")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_among_other_cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; waypost_session=abc_123; x=y"),
        );
        assert_eq!(session_token(&h).as_deref(), Some("abc_123"));
        h.insert(header::COOKIE, HeaderValue::from_static("waypost_session="));
        assert_eq!(session_token(&h), None);
    }

    #[test]
    fn cookie_attributes() {
        let v = set_session("tok", 60, true);
        let s = v.to_str().unwrap();
        for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure", "Max-Age=60"] {
            assert!(s.contains(part), "{s}");
        }
        assert!(
            !set_session("tok", 60, false)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }
}
