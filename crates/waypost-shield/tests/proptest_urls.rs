//! Property tests: URL and phone extraction and the whole scan never panic on arbitrary input.

use std::sync::OnceLock;

use proptest::prelude::*;
use waypost_shield::urls::{extract_urls, normalize};
use waypost_shield::{Lists, ScanInput, Shield, phone};

fn shield() -> &'static Shield {
    static SHIELD: OnceLock<Shield> = OnceLock::new();
    SHIELD.get_or_init(Shield::embedded)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn normalize_never_panics(s in "\\PC{0,80}") {
        if let Some(n) = normalize(&s) {
            prop_assert!(!n.host.is_empty());
            prop_assert!(n.normalized.contains("://"));
        }
    }

    #[test]
    fn url_like_strings_never_panic(
        scheme in prop::option::of("(https?|ftp|HTTP)://"),
        user in prop::option::of("[a-z0-9.:]{0,12}@"),
        host in "[a-zA-Z0-9.\\-%\\[\\]:]{0,30}|[\\u{400}-\\u{4ff}a-z]{1,10}\\.[a-z]{2,4}",
        port in prop::option::of(":[0-9]{0,6}"),
        path in "[/a-zA-Z0-9%?#=&.@]{0,30}",
    ) {
        let raw = format!(
            "{}{}{}{}{}",
            scheme.unwrap_or_default(),
            user.unwrap_or_default(),
            host,
            port.unwrap_or_default(),
            path
        );
        let _ = normalize(&raw);
        let lists = Lists::embedded();
        for u in extract_urls(&format!("see {raw} now"), &lists) {
            prop_assert!(u.start <= u.end);
        }
    }

    #[test]
    fn extraction_and_scan_never_panic(s in "\\PC{0,160}") {
        let lists = Lists::embedded();
        for u in extract_urls(&s, &lists) {
            prop_assert!(u.end <= s.len());
            prop_assert!(s.is_char_boundary(u.start) && s.is_char_boundary(u.end));
        }
        let _ = phone::extract_phones(&s, &[], None);
        let v = shield().scan(&ScanInput::text(s.clone()));
        prop_assert!((0.0..=1.0).contains(&v.score));
        if v.label.is_positive() {
            prop_assert!(!v.reasons.is_empty());
        }
    }
}
