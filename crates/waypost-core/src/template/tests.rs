use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn body(text: &str, examples: &[&str]) -> Value {
    if examples.is_empty() {
        json!({"type": "BODY", "text": text})
    } else {
        json!({"type": "BODY", "text": text, "example": {"body_text": [examples]}})
    }
}

fn errors(components: Value) -> Vec<String> {
    validate_components(&components)
        .unwrap_err()
        .into_iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn names_languages_and_categories() {
    assert!(TemplateName::parse("order_update_2").is_ok());
    for bad in ["", "Order", "order-update", "ordér", "a b"] {
        assert!(TemplateName::parse(bad).is_err(), "{bad}");
    }
    assert!(TemplateName::parse(&"a".repeat(512)).is_ok());
    assert!(TemplateName::parse(&"a".repeat(513)).is_err());

    for ok in ["en", "en_US", "pt_BR", "zh_CN", "fil", "sr_Latn"] {
        assert!(LanguageCode::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["", "EN", "en-US", "en_us", "english", "en_USA", "e"] {
        assert!(LanguageCode::parse(bad).is_err(), "{bad}");
    }

    assert_eq!(
        TemplateCategory::parse("MARKETING"),
        Ok(TemplateCategory::Marketing)
    );
    assert_eq!(
        TemplateCategory::parse("utility").unwrap().meta_str(),
        "UTILITY"
    );
    assert!(TemplateCategory::parse("promo").is_err());
}

#[test]
fn a_full_template_is_valid_and_counted() {
    let c = json!([
        {"type": "HEADER", "format": "TEXT", "text": "Our {{1}} is on!", "example": {"header_text": ["Summer Sale"]}},
        body("Shop now through {{1}} and use code {{2}} to get {{3}} off.", &["August", "25OFF", "25%"]),
        {"type": "FOOTER", "text": "Reply STOP to opt out"},
        {"type": "BUTTONS", "buttons": [
            {"type": "QUICK_REPLY", "text": "Unsubscribe"},
            {"type": "URL", "text": "Shop", "url": "https://example.com/{{1}}", "example": ["summer"]},
            {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+15550051310"}
        ]}
    ]);
    let counts = validate_components(&c).unwrap();
    assert_eq!(counts.header, 1);
    assert_eq!(counts.body, 3);
    assert_eq!(
        counts.buttons,
        vec![ButtonParameters {
            index: 1,
            kind: "URL".into(),
            count: 1
        }]
    );
    assert_eq!(parameter_counts(&c), counts);
}

#[test]
fn table_of_invalid_components() {
    let long = "x".repeat(1025);
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "/components: must be an array"),
        (json!([]), "needs a BODY"),
        (json!([{"type": "FOOTER", "text": "hi"}]), "needs a BODY"),
        (
            json!([body("Hi there", &[]), body("Again", &[])]),
            "/components/1/type: `BODY` appears more than once",
        ),
        (
            json!([{"type": "CAROUSEL"}]),
            "/components/0/type: must be HEADER",
        ),
        (
            json!([body(&long, &[])]),
            "/components/0/text: is 1025 characters; at most 1024",
        ),
        (json!([{"type": "BODY"}]), "/components/0/text: is required"),
        (
            json!([body("Hi {{1}} and {{3}}.", &["a", "b"])]),
            "{{2}} is missing",
        ),
        (json!([body("Hi {{2}}.", &["a"])]), "{{1}} is missing"),
        (
            json!([body("Hi {{name}}.", &["a"])]),
            "not a positional placeholder",
        ),
        (
            json!([body("Hi {{1}}.", &[])]),
            "/components/0/example/body_text: needs one row of 1",
        ),
        (
            json!([body("Hi {{1}} {{2}}.", &["a"])]),
            "has 1 example value(s); the text has 2",
        ),
        (
            json!([body("Hi {{1}}.", &[" "])]),
            "/components/0/example/body_text/0/0: must be a non-empty string",
        ),
        (
            json!([body("{{1}} is here", &["a"])]),
            "must not start or end with a placeholder",
        ),
        (
            json!([body("Hi {{1}}", &["a"])]),
            "must not start or end with a placeholder",
        ),
        (
            json!([body("Hi {{1}}{{2}} there", &["a", "b"])]),
            "next to each other",
        ),
        (
            json!([{"type": "HEADER", "format": "TEXT", "text": "x".repeat(61)}, body("Hi", &[])]),
            "at most 60",
        ),
        (
            json!([{"type": "HEADER", "format": "TEXT", "text": "{{1}} {{2}}", "example": {"header_text": ["a", "b"]}}, body("Hi", &[])]),
            "at most one placeholder",
        ),
        (
            json!([{"type": "HEADER", "format": "TEXT", "text": "Sale {{1}}"}, body("Hi", &[])]),
            "/components/0/example/header_text: needs 1 example",
        ),
        (
            json!([{"type": "HEADER", "format": "IMAGE"}, body("Hi", &[])]),
            "one example upload handle",
        ),
        (
            json!([{"type": "HEADER", "format": "GIFS"}, body("Hi", &[])]),
            "/components/0/format",
        ),
        (
            json!([body("Hi", &[]), {"type": "FOOTER", "text": "x".repeat(61)}]),
            "/components/1/text: is 61 characters; at most 60",
        ),
        (
            json!([body("Hi", &[]), {"type": "FOOTER", "text": "Bye {{1}}"}]),
            "a footer takes no placeholders",
        ),
        (
            json!([body("Hi", &[]), {"type": "BUTTONS", "buttons": []}]),
            "must be a non-empty array",
        ),
        (
            json!([body("Hi", &[]), {"type": "BUTTONS", "buttons": (0..11).map(|i| json!({"type": "QUICK_REPLY", "text": format!("b{i}")})).collect::<Vec<_>>()}]),
            "at most 10 buttons",
        ),
        (
            json!([body("Hi", &[]), {"type": "BUTTONS", "buttons": [
            {"type": "URL", "text": "a", "url": "https://a.example"},
            {"type": "URL", "text": "b", "url": "https://b.example"},
            {"type": "URL", "text": "c", "url": "https://c.example"}]}]),
            "at most 2 URL",
        ),
        (
            json!([body("Hi", &[]), {"type": "BUTTONS", "buttons": [
            {"type": "QUICK_REPLY", "text": "a"},
            {"type": "URL", "text": "b", "url": "https://b.example"},
            {"type": "QUICK_REPLY", "text": "c"}]}]),
            "grouped together",
        ),
        (
            json!([body("Hi", &[]), {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "x".repeat(26)}]}]),
            "at most 25",
        ),
        (
            json!([body("Hi", &[]), {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Go", "url": "https://a.example/{{1}}"}]}]),
            "/components/1/buttons/0/example: needs 1 example",
        ),
        (
            json!([body("Hi", &[]), {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Go", "url": "https://a.example/{{1}}/x", "example": ["a"]}]}]),
            "at the end of the URL",
        ),
        (
            json!([body("Hi", &[]), {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Go", "url": "ftp://a.example"}]}]),
            "http(s) URL",
        ),
        (
            json!([body("Hi", &[]), {"type": "BUTTONS", "buttons": [{"type": "PHONE_NUMBER", "text": "Call", "phone_number": "555"}]}]),
            "E.164",
        ),
        (
            json!([body("Hi", &[]), {"type": "BUTTONS", "buttons": [{"type": "OTP", "text": "Copy"}]}]),
            "/components/1/buttons/0/type",
        ),
        (
            json!([{"type": "BODY", "text": "Hi", "add_security_recommendation": true}]),
            "/components/0/add_security_recommendation: is not supported",
        ),
        (
            json!([{"type": "FOOTER", "text": "f"}, body("Hi", &[])]),
            "in the order HEADER, BODY",
        ),
    ];
    for (components, expected) in cases {
        let errs = errors(components.clone());
        assert!(
            errs.iter().any(|e| e.contains(expected)),
            "expected `{expected}` for {components}, got {errs:?}"
        );
    }
}

#[test]
fn repeated_placeholders_and_lower_case_types_are_fine() {
    let c = json!([{"type": "body", "text": "Hi {{1}}, yes {{1}} and {{2}}!", "example": {"body_text": [["a", "b"]]}}]);
    assert_eq!(validate_components(&c).unwrap().body, 2);
}

#[test]
fn errors_are_bounded() {
    let many: Vec<Value> = (0..100).map(|_| json!({"type": "NOPE"})).collect();
    assert_eq!(errors(Value::Array(many)).len(), 20);
}

#[test]
fn counts_are_lenient_on_stored_data() {
    assert_eq!(
        parameter_counts(&json!("garbage")),
        ParameterCounts::default()
    );
    let c = json!([
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["h"]}},
        {"type": "BODY", "text": "Code {{1}} ok"},
        {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": "ABC"}]}
    ]);
    let counts = parameter_counts(&c);
    assert_eq!((counts.header, counts.body), (1, 1));
    assert_eq!(counts.buttons[0].kind, "COPY_CODE");
}

proptest! {
    /// Bodies numbered 1..=n with n examples always pass and count n.
    #[test]
    fn numbered_bodies_validate(n in 1usize..12, words in proptest::collection::vec("[a-z]{1,8}", 12)) {
        let mut text = String::from("Hello");
        for i in 1..=n {
            text.push_str(&format!(" {} {{{{{i}}}}}", words[i - 1]));
        }
        text.push('.');
        let examples: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
        let c = json!([{"type": "BODY", "text": text, "example": {"body_text": [examples]}}]);
        prop_assert_eq!(validate_components(&c).unwrap().body, n);
    }

    /// Removing one placeholder number from the middle is always a gap.
    #[test]
    fn gaps_are_found(n in 3usize..10, skip in 1usize..9) {
        prop_assume!(skip < n);
        let mut text = String::from("Hello");
        for i in (1..=n).filter(|i| *i != skip) {
            text.push_str(&format!(" x {{{{{i}}}}}"));
        }
        text.push('.');
        let examples: Vec<String> = (1..n).map(|i| format!("v{i}")).collect();
        let c = json!([{"type": "BODY", "text": text, "example": {"body_text": [examples]}}]);
        let errs = validate_components(&c).unwrap_err();
        let expected = format!("{{{{{skip}}}}} is missing");
        prop_assert!(errs.iter().any(|e| e.message.contains(&expected)));
    }

    #[test]
    fn never_panics(text in ".{0,200}") {
        let _ = validate_components(&json!([{"type": "BODY", "text": text}]));
        let _ = max_placeholder(&text);
        let _ = ProhibitedContent::builtin().check([text.as_str()]);
    }
}
