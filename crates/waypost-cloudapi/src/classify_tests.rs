//! Expectations are written out independently of `CODE_TABLE`, so a wrong
//! table row fails here, naming the code.

use super::*;

const S: Option<Duration> = None;

fn class(code: i64) -> ErrorClass {
    classify_response(400, Some(code), false, None)
}

/// (code, expected class, reference name). Every table row's first and last
/// code must appear here (checked below).
const EXPECTED: &[(i64, CodeClass, &str)] = &[
    (0, Auth, "AuthException"),
    (3, Auth, "API Method"),
    (10, Auth, "Permission denied"),
    (102, Auth, "API Session"),
    (190, Auth, "token expired"),
    (200, Auth, "API Permission (first)"),
    (250, Auth, "API Permission (middle)"),
    (299, Auth, "API Permission (last)"),
    (131005, Auth, "Access denied"),
    (4, RateLimited, "Too many calls"),
    (17, RateLimited, "User request limit"),
    (341, RateLimited, "Application limit"),
    (80007, RateLimited, "WABA rate limit"),
    (130429, RateLimited, "throughput"),
    (131048, RateLimited, "spam rate limit"),
    (131056, RateLimited, "pair rate limit"),
    (131064, RateLimited, "messaging limit"),
    (132069, RateLimited, "flow throttled"),
    (133008, RateLimited, "PIN guesses"),
    (133009, RateLimited, "PIN too quickly"),
    (133016, RateLimited, "register attempts"),
    (1, Retryable, "API Unknown"),
    (2, Retryable, "API Service"),
    (131000, Retryable, "Something went wrong"),
    (131016, Retryable, "Service unavailable"),
    (131057, Retryable, "maintenance mode"),
    (133004, Retryable, "server unavailable"),
    (133015, Retryable, "deletion not finished"),
    (33, Permanent, "number deleted"),
    (100, Permanent, "invalid parameter"),
    (368, Permanent, "policy block"),
    (130472, Permanent, "experiment"),
    (130497, Permanent, "country restricted"),
    (131008, Permanent, "missing parameter"),
    (131009, Permanent, "invalid parameter value"),
    (131021, Permanent, "recipient is sender"),
    (131026, Permanent, "undeliverable"),
    (131030, Permanent, "not in allowed list"),
    (131031, Permanent, "account locked"),
    (131037, Permanent, "display name"),
    (131042, Permanent, "payment"),
    (131044, Permanent, "payment (calling)"),
    (131045, Permanent, "certificate"),
    (131047, Permanent, "re-engagement"),
    (131049, Permanent, "ecosystem"),
    (131050, Permanent, "stopped marketing"),
    (131051, Permanent, "unsupported type"),
    (131052, Permanent, "media download"),
    (131053, Permanent, "media upload"),
    (131062, Permanent, "BSUID"),
    (131063, Permanent, "marketing disabled"),
    (132000, Permanent, "param count"),
    (132001, Permanent, "template missing"),
    (132005, Permanent, "hydrated text too long"),
    (132007, Permanent, "format policy"),
    (132008, Permanent, "param invalid"),
    (132012, Permanent, "param format"),
    (132015, Permanent, "template paused"),
    (132016, Permanent, "template disabled"),
    (132068, Permanent, "flow blocked"),
    (133000, Permanent, "incomplete deregistration"),
    (133005, Permanent, "PIN mismatch"),
    (133006, Permanent, "re-verification"),
    (133010, Permanent, "not registered"),
    (135000, Permanent, "generic user error"),
    (137000, Permanent, "identity key hash"),
    (139000, Permanent, "flow error (first)"),
    (139002, Permanent, "flow error (last)"),
];

#[test]
fn table_rows_match_expectations_naming_the_row() {
    let mut failures = Vec::new();
    for &(code, want, name) in EXPECTED {
        let got = code_class(code);
        if got != Some(want) {
            failures.push(format!(
                "code {code} ({name}): expected {want:?}, got {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "misclassified:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_table_row_has_an_expectation() {
    for r in CODE_TABLE {
        for code in [r.first, r.last] {
            assert!(
                EXPECTED.iter().any(|&(c, _, _)| c == code),
                "table row {:?} ({}) has no expectation for code {code}",
                r.class,
                r.meaning
            );
        }
    }
}

#[test]
fn table_rows_do_not_overlap() {
    for (i, a) in CODE_TABLE.iter().enumerate() {
        assert!(a.first <= a.last, "row {i} ({}) is inverted", a.meaning);
        for b in &CODE_TABLE[i + 1..] {
            assert!(
                a.last < b.first || b.last < a.first,
                "rows '{}' and '{}' overlap",
                a.meaning,
                b.meaning
            );
        }
    }
}

#[test]
fn retryable_group() {
    assert_eq!(class(131000), ErrorClass::Retryable);
    assert_eq!(class(131057), ErrorClass::Retryable);
    assert_eq!(class(133004), ErrorClass::Retryable);
    assert_eq!(
        classify_response(500, None, false, S),
        ErrorClass::Retryable
    );
    assert_eq!(
        classify_response(502, Some(999_999), false, S),
        ErrorClass::Retryable
    );
    assert_eq!(
        classify_response(503, None, false, S),
        ErrorClass::Retryable
    );
    assert_eq!(
        classify_response(408, None, false, S),
        ErrorClass::Retryable
    );
    assert_eq!(
        classify_response(400, Some(999_999), true, S),
        ErrorClass::Retryable
    );
}

#[test]
fn rate_limited_group_carries_retry_after() {
    let ra = Some(Duration::from_secs(7));
    for code in [130429, 131056, 4, 80007] {
        assert_eq!(
            class(code),
            ErrorClass::RateLimited { retry_after: None },
            "code {code}"
        );
        assert_eq!(
            classify_response(400, Some(code), false, ra),
            ErrorClass::RateLimited { retry_after: ra },
            "code {code}"
        );
    }
    assert_eq!(
        classify_response(429, None, false, ra),
        ErrorClass::RateLimited { retry_after: ra }
    );
    assert_eq!(
        classify_response(429, Some(130429), false, S),
        ErrorClass::RateLimited { retry_after: None }
    );
}

#[test]
fn permanent_group_including_unknown_4xx() {
    for code in [131026, 131047, 131050, 132000, 132001, 100] {
        assert_eq!(class(code), ErrorClass::Permanent, "code {code}");
    }
    assert_eq!(
        classify_response(400, Some(424_242), false, S),
        ErrorClass::Permanent
    );
    assert_eq!(
        classify_response(404, None, false, S),
        ErrorClass::Permanent
    );
    assert_eq!(
        classify_response(422, None, false, S),
        ErrorClass::Permanent
    );
    // Retry-After on a permanent error does not make it retryable.
    assert_eq!(
        classify_response(400, Some(100), false, Some(Duration::from_secs(1))),
        ErrorClass::Permanent
    );
}

#[test]
fn auth_group() {
    for code in [190, 200, 10, 3, 0, 131005, 299] {
        assert_eq!(class(code), ErrorClass::Auth, "code {code}");
    }
    assert_eq!(classify_response(401, None, false, S), ErrorClass::Auth);
    assert_eq!(
        classify_response(403, Some(424_242), false, S),
        ErrorClass::Auth
    );
    // A known code wins over the status: code 3 comes with HTTP 500.
    assert_eq!(classify_response(500, Some(3), false, S), ErrorClass::Auth);
}

#[test]
fn webhook_codes_without_status() {
    assert_eq!(classify_code(131047), ErrorClass::Permanent);
    assert_eq!(classify_code(131000), ErrorClass::Retryable);
    assert_eq!(
        classify_code(131056),
        ErrorClass::RateLimited { retry_after: None }
    );
    assert_eq!(classify_code(7_777_777), ErrorClass::Permanent);
}

#[test]
fn retry_after_parsing() {
    assert_eq!(parse_retry_after("30"), Some(Duration::from_secs(30)));
    assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    assert_eq!(parse_retry_after("-1"), None);
}

#[test]
fn business_usage_header_gives_regain_time() {
    let h = r#"{"102290129340398":[{"type":"whatsapp_business_management","call_count":100,
        "total_cputime":3,"total_time":4,"estimated_time_to_regain_access":5},
        {"type":"other","call_count":1,"estimated_time_to_regain_access":2}]}"#;
    assert_eq!(
        parse_business_usage_regain(h),
        Some(Duration::from_secs(300))
    );
    let zero = r#"{"1":[{"type":"x","call_count":10,"estimated_time_to_regain_access":0}]}"#;
    assert_eq!(parse_business_usage_regain(zero), None);
    assert_eq!(parse_business_usage_regain("not json"), None);
    assert_eq!(parse_business_usage_regain("{}"), None);
}
