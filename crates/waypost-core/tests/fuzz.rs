//! Fuzz targets, property-based so they run on stable: phone numbers and
//! template definitions from arbitrary input never panic, and whatever parses
//! is consistent. CI runs the default case count; `bench/fuzz.sh` runs each
//! for a set time. A failing input is saved under `proptest-regressions/` and
//! replayed first on every later run.

use proptest::prelude::*;
use serde_json::{Value, json};
use waypost_core::phone::E164;
use waypost_core::template::{
    LanguageCode, ProhibitedContent, TemplateName, max_placeholder, parameter_counts,
    template_texts, validate_components,
};

/// Words the template checker looks for, so generated JSON reaches past the first refusal.
const TEMPLATE_WORDS: &[&str] = &[
    "HEADER",
    "BODY",
    "FOOTER",
    "BUTTONS",
    "TEXT",
    "IMAGE",
    "VIDEO",
    "DOCUMENT",
    "LOCATION",
    "URL",
    "PHONE_NUMBER",
    "QUICK_REPLY",
    "COPY_CODE",
    "OTP",
    "Hi {{1}}, order {{2}} is ready.",
    "{{1}}",
    "{{0}}",
    "{{",
    "}}",
    "{{name}}",
    "https://example.com/{{1}}",
    "+4915112345678",
];

const TEMPLATE_KEYS: &[&str] = &[
    "type",
    "text",
    "format",
    "buttons",
    "example",
    "body_text",
    "header_text",
    "header_handle",
    "url",
    "phone_number",
    "add_security_recommendation",
    "code_expiration_minutes",
    "otp_type",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        "\\PC{0,40}".prop_map(Value::String),
        prop::sample::select(TEMPLATE_WORDS).prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(TEMPLATE_KEYS).prop_map(str::to_owned),
        1 => "[a-z_]{1,12}",
    ]
}

/// Components shaped like Meta's, with arbitrary values inside.
fn components() -> impl Strategy<Value = Value> {
    let component = (
        prop::sample::select(&["HEADER", "BODY", "FOOTER", "BUTTONS", "body", "OTHER"][..]),
        prop::collection::vec((json_key(), json_value()), 0..5),
    )
        .prop_map(|(kind, fields)| {
            let mut object: serde_json::Map<String, Value> = fields.into_iter().collect();
            object.insert("type".into(), json!(kind));
            Value::Object(object)
        });
    prop_oneof![
        4 => prop::collection::vec(component, 0..6).prop_map(Value::Array),
        1 => json_value(),
    ]
}

fn phone_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "(\\+|00)?[0-9 ()./\\-]{0,24}",
        "\\+?[0-9]{0,20}",
        // Shapes of real numbers, so the checks after a successful parse run often.
        "(\\+|00)(49 ?15[1-9]|44 ?7[0-9]|1 ?[2-9][0-9]{2}|91 ?9[0-9]|55 ?11 ?9)[ \\-]?[0-9]{7,8}",
        "\\PC{0,40}",
        "[\\s\\+0-9\u{660}-\u{669}\u{ff10}-\u{ff19}]{0,20}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn fuzz_phone_parse(input in phone_like()) {
        if let Ok(number) = E164::parse(&input) {
            let text = number.as_str();
            prop_assert!(text.starts_with('+'));
            prop_assert!(text[1..].bytes().all(|b| b.is_ascii_digit()), "{}", text);
            prop_assert!((8..=16).contains(&text.len()), "{}", text);
            // Normal form is a fixed point, with and without the plus.
            prop_assert_eq!(E164::parse(text).unwrap(), number.clone());
            prop_assert_eq!(E164::parse(number.wa_id()).unwrap(), number.clone());
            let _ = number.country();
            // The debug form never shows the whole number.
            let debug = format!("{:?}", number);
            prop_assert!(!debug.contains(&text[1..]), "{}", debug);
        }
    }

    #[test]
    fn fuzz_template_components(c in components()) {
        match validate_components(&c) {
            Ok(counts) => prop_assert_eq!(counts, parameter_counts(&c)),
            Err(errors) => prop_assert!(!errors.is_empty()),
        }
        // Stored templates go through the lenient reader and the content check.
        let _ = parameter_counts(&c);
        let texts = template_texts("order_update", &c);
        let _ = ProhibitedContent::builtin().check(texts);
    }

    #[test]
    fn fuzz_template_names_and_texts(name in "\\PC{0,20}|[a-z_0-9]{0,16}", language in "[a-zA-Z_\\-]{0,8}", text in "\\PC{0,60}|([a-z ]{0,4}\\{\\{[0-9a-z]{0,3}\\}?\\}?){0,4}") {
        if let Ok(n) = TemplateName::parse(&name) {
            prop_assert_eq!(n.as_str(), name.as_str());
        }
        if let Ok(l) = LanguageCode::parse(&language) {
            prop_assert_eq!(l.as_str(), language.as_str());
        }
        let _ = max_placeholder(&text);
    }
}

/// Cases per target: `WAYPOST_FUZZ_CASES`, or a brief run in CI.
fn cases() -> u32 {
    std::env::var("WAYPOST_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}
