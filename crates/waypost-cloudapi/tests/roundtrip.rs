//! Property tests: every main wire type survives serialise → parse through
//! JSON text unchanged, and re-serialising gives the same JSON.

mod strategies;

use proptest::collection::btree_map;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use strategies::*;
use waypost_cloudapi::WebhookPayload;
use waypost_cloudapi::error::ErrorEnvelope;
use waypost_cloudapi::webhook::Change;

/// Through JSON text (what the wire carries), both ways.
fn assert_round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let text = serde_json::to_string(value).unwrap();
    let parsed: T =
        serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
    prop_assert_eq!(&parsed, value, "{}", text);
    let again = serde_json::to_string(&parsed).unwrap();
    let a: Value = serde_json::from_str(&text).unwrap();
    let b: Value = serde_json::from_str(&again).unwrap();
    prop_assert_eq!(a, b);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn outbound_message(m in outbound()) { assert_round_trip(&m)?; }

    #[test]
    fn inbound_message(m in inbound()) { assert_round_trip(&m)?; }

    #[test]
    fn status_update(s in status()) { assert_round_trip(&s)?; }

    #[test]
    fn webhook_payload(p in webhook()) { assert_round_trip(&p)?; }

    #[test]
    fn error_envelope(e in meta_error()) { assert_round_trip(&ErrorEnvelope { error: e })?; }

    #[test]
    fn send_response_body(r in send_response()) { assert_round_trip(&r)?; }

    #[test]
    fn webhook_parsing_never_fails_on_unknown_message_objects(extra in btree_map(
                                                                 prop_oneof!["[a-z]{1,6}", Just("context".to_owned()), Just("errors".to_owned()),
                                                                             Just("referral".to_owned()), Just("identity".to_owned())],
                                                                 json_value(), 0..5),
                                                             kind in "[a-z_]{1,10}") {
        // Arbitrary `type` and fields: the whole webhook must still parse.
        let mut m: Map<String, Value> = extra.into_iter().collect();
        m.insert("from".into(), "1".into());
        m.insert("id".into(), "wamid.x".into());
        m.insert("timestamp".into(), "1".into());
        m.insert("type".into(), Value::String(kind));
        let body = serde_json::json!({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",
            "value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"2"},
            "messages":[Value::Object(m)]}}]}]});
        let p: WebhookPayload = serde_json::from_value(body).unwrap();
        prop_assert!(matches!(p.entry[0].changes[0], Change::Messages(_)));
    }
}
