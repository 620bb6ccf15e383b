//! Fuzz targets, property-based so they run on stable: the inbound webhook
//! parser and its signature check. Inputs are arbitrary bytes and the
//! protocol reference's examples mutated at the byte and at the JSON level.
//! CI runs the default case count; `bench/fuzz.sh` runs each for a set time.
//! A failing input is saved under `proptest-regressions/` and replayed first.

use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Value, json};
use waypost_cloudapi::{WebhookPayload, sign, verify_signature};

/// Every webhook example, and every message and status example inside a webhook.
fn seeds() -> &'static [Value] {
    static SEEDS: OnceLock<Vec<Value>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut seeds = Vec::new();
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        for name in names {
            let value: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join(&name)).unwrap()).unwrap();
            if name.starts_with("webhook_") {
                seeds.push(value);
            } else if name.starts_with("inbound_") {
                seeds.push(envelope(json!({ "messages": [value] })));
            } else if name.starts_with("status_") {
                seeds.push(envelope(json!({ "statuses": [value] })));
            }
        }
        assert!(seeds.len() > 20, "fixtures missing");
        seeds
    })
}

fn envelope(mut value: Value) -> Value {
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] =
        json!({"display_phone_number": "15550001111", "phone_number_id": "106540352242922"});
    value["contacts"] = json!([{"profile": {"name": "Ana"}, "wa_id": "16505551234"}]);
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        "\\PC{0,24}".prop_map(Value::String),
        prop::sample::select(
            &[
                "text",
                "image",
                "interactive",
                "button_reply",
                "list_reply",
                "nfm_reply",
                "reaction",
                "location",
                "contacts",
                "order",
                "system",
                "unsupported",
                "messages",
                "statuses",
                "sent",
                "delivered",
                "read",
                "failed",
                "1749416383",
                "",
            ][..]
        )
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,10}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// One edit at a path chosen by `steps` (each step picks a child by index).
#[derive(Debug, Clone)]
enum Edit {
    Replace(Vec<u16>, Value),
    Remove(Vec<u16>),
}

fn edit() -> impl Strategy<Value = Edit> {
    let path = prop::collection::vec(any::<u16>(), 1..10);
    prop_oneof![
        3 => (path.clone(), json_value()).prop_map(|(p, v)| Edit::Replace(p, v)),
        1 => path.prop_map(Edit::Remove),
    ]
}

fn apply(value: &mut Value, edit: &Edit) {
    let (steps, replacement) = match edit {
        Edit::Replace(p, v) => (p, Some(v)),
        Edit::Remove(p) => (p, None),
    };
    let mut at = value;
    for (depth, step) in steps.iter().enumerate() {
        let last = depth + 1 == steps.len();
        let step = usize::from(*step);
        let leaf = match &*at {
            Value::Object(map) => map.is_empty(),
            Value::Array(items) => items.is_empty(),
            _ => true,
        };
        if leaf {
            if let Some(v) = replacement {
                *at = v.clone();
            }
            return;
        }
        at = match at {
            Value::Object(map) => {
                let key = map.keys().nth(step % map.len()).unwrap().clone();
                if last {
                    match replacement {
                        Some(v) => map[&key] = v.clone(),
                        None => {
                            map.remove(&key);
                        }
                    }
                    return;
                }
                map.get_mut(&key).unwrap()
            }
            Value::Array(items) => {
                let index = step % items.len();
                if last {
                    match replacement {
                        Some(v) => items[index] = v.clone(),
                        None => {
                            items.remove(index);
                        }
                    }
                    return;
                }
                &mut items[index]
            }
            _ => unreachable!("leaves returned above"),
        };
    }
}

/// A byte-level edit of the serialised seed.
#[derive(Debug, Clone)]
enum ByteEdit {
    Flip(u16, u8),
    Insert(u16, Vec<u8>),
    Delete(u16, u8),
    Truncate(u16),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<u16>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        (
            any::<u16>(),
            prop::collection::vec(
                prop_oneof![any::<u8>(), prop::sample::select(&b"{}[]\",:\\0e-"[..])],
                1..6
            )
        )
            .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        (any::<u16>(), 1u8..8).prop_map(|(i, n)| ByteEdit::Delete(i, n)),
        any::<u16>().prop_map(ByteEdit::Truncate),
    ]
}

fn apply_bytes(bytes: &mut Vec<u8>, edit: &ByteEdit) {
    if bytes.is_empty() {
        return;
    }
    let at = |i: &u16| usize::from(*i) % bytes.len();
    match edit {
        ByteEdit::Flip(i, b) => {
            let i = at(i);
            bytes[i] ^= b | 1;
        }
        ByteEdit::Insert(i, b) => {
            let i = at(i);
            bytes.splice(i..i, b.iter().copied());
        }
        ByteEdit::Delete(i, n) => {
            let i = at(i);
            let end = (i + usize::from(*n)).min(bytes.len());
            bytes.drain(i..end);
        }
        ByteEdit::Truncate(i) => {
            let i = at(i);
            bytes.truncate(i);
        }
    }
}

/// What the server does with a body that parsed: walk every change and message.
fn check_parsed(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(payload) = serde_json::from_slice::<WebhookPayload>(bytes) else {
        return Ok(());
    };
    for value in payload.message_values() {
        for message in &value.messages {
            let _ = message.unix_time();
        }
    }
    // What parsed serialises, and that serialisation parses to the same payload.
    let text = serde_json::to_vec(&payload).unwrap();
    let again: WebhookPayload = serde_json::from_slice(&text).map_err(|e| {
        TestCaseError::fail(format!(
            "re-parse failed: {e}: {}",
            String::from_utf8_lossy(&text)
        ))
    })?;
    prop_assert_eq!(again, payload);
    Ok(())
}

fn cases() -> u32 {
    std::env::var("WAYPOST_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn fuzz_webhook_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_parsed(&bytes)?;
    }

    #[test]
    fn fuzz_webhook_mutated_json(seed in any::<prop::sample::Index>(), edits in prop::collection::vec(edit(), 1..6)) {
        let mut value = seed.get(seeds()).clone();
        for e in &edits {
            apply(&mut value, e);
        }
        check_parsed(&serde_json::to_vec(&value).unwrap())?;
    }

    #[test]
    fn fuzz_webhook_mutated_bytes(seed in any::<prop::sample::Index>(), edits in prop::collection::vec(byte_edit(), 1..5)) {
        let mut bytes = serde_json::to_vec(seed.get(seeds())).unwrap();
        for e in &edits {
            apply_bytes(&mut bytes, e);
        }
        check_parsed(&bytes)?;
    }

    #[test]
    fn fuzz_signature(
        secret in prop::collection::vec(any::<u8>(), 0..80),
        body in prop::collection::vec(any::<u8>(), 0..256),
        header in "\\PC{0,80}|sha256=[0-9a-fA-F]{60,68}",
        flip in any::<prop::sample::Index>(),
    ) {
        let good = sign(&secret, &body);
        prop_assert!(verify_signature(&secret, &body, &good));
        prop_assert!(verify_signature(&secret, &body, &good.to_uppercase().replacen("SHA256", "sha256", 1)));
        // Any other header fails, and never panics.
        prop_assert_eq!(verify_signature(&secret, &body, &header), header.eq_ignore_ascii_case(&good) && header.starts_with("sha256="));
        // One changed hex digit fails.
        let mut bad = good.clone().into_bytes();
        let i = 7 + flip.index(64);
        bad[i] = if bad[i] == b'0' { b'1' } else { b'0' };
        prop_assert!(!verify_signature(&secret, &body, std::str::from_utf8(&bad).unwrap()));
    }
}
