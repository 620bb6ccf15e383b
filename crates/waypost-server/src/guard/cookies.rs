//! The session cookie: an opaque 256-bit token, `HttpOnly`, `SameSite=Lax`,
//! path `/`, and `Secure` whenever the client reached us over TLS.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::config::Config;

pub const SESSION_COOKIE: &str = "waypost_session";

/// The session token from the `Cookie` header, if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    value(headers, SESSION_COOKIE)
}

/// A cookie's value from the `Cookie` headers; empty or oversized values
/// (none of ours exceed 128 bytes) count as absent.
pub fn value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// A `Set-Cookie` value: always `HttpOnly`, `Secure` over TLS. A value that
/// is not a valid header (never ours) clears a throwaway cookie instead.
pub fn set(
    name: &str,
    value: &str,
    path: &str,
    max_age_secs: i64,
    secure: bool,
    same_site: &str,
) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite={same_site}; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("waypost_invalid=; Max-Age=0"))
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
    let max_age = i64::try_from(max_age_secs).unwrap_or(i64::MAX);
    set(SESSION_COOKIE, token, "/", max_age, secure, "Lax")
}

pub fn clear_session(secure: bool) -> HeaderValue {
    set(SESSION_COOKIE, "", "/", 0, secure, "Lax")
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
