//! Every example payload of the protocol reference (tests/fixtures/*.json)
//! parses into its typed form (not the `Unsupported` fallback, unless the
//! fixture is about that) and serialises back to the same JSON value.
//! Normalisations the crate documents would show up here as explicit
//! exceptions; the reference's examples need none.

use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use waypost_cloudapi::error::{ErrorEnvelope, WebhookError};
use waypost_cloudapi::interactive::Interactive;
use waypost_cloudapi::manage::{
    MediaInfo, MediaUploaded, PhoneNumberInfo, TemplateCreate, TemplateCreated, TemplateList,
};
use waypost_cloudapi::send::{MarkRead, SuccessResponse};
use waypost_cloudapi::{
    Change, InboundContent, InboundMessage, OutboundContent, OutboundMessage, SendResponse, Status,
    WebhookPayload,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn load(name: &str) -> Value {
    let path = dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: not JSON: {e}"))
}

/// Parses, re-serialises, compares; returns the typed value for more checks.
fn round_trip<T: Serialize + DeserializeOwned>(name: &str) -> T {
    let original = load(name);
    let typed: T =
        serde_json::from_value(original.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let again = serde_json::to_value(&typed).unwrap();
    assert_eq!(again, original, "{name}: round-trip changed the JSON");
    typed
}

fn send(name: &str) {
    let m: OutboundMessage = round_trip(name);
    assert!(
        !matches!(m.content, OutboundContent::Unsupported(_)),
        "{name}: fell back to Unsupported"
    );
    if let Err(e) = waypost_cloudapi::check_limits(&m) {
        panic!("{name}: reference example breaks a limit: {e}");
    }
    if let OutboundContent::Interactive(i) = &m.content {
        assert!(
            !matches!(i, Interactive::Unsupported(_)),
            "{name}: interactive fell back"
        );
    }
}

fn inbound(name: &str, expect_unsupported: bool) {
    let m: InboundMessage = round_trip(name);
    let unsupported = matches!(m.content, InboundContent::Unsupported(_))
        || matches!(
            &m.content,
            InboundContent::Interactive(waypost_cloudapi::inbound::InteractiveReply::Unsupported(
                _
            ))
        );
    assert_eq!(unsupported, expect_unsupported, "{name}: {:?}", m.content);
}

fn webhook(name: &str) {
    let p: WebhookPayload = round_trip(name);
    for change in p.entry.iter().flat_map(|e| &e.changes) {
        assert!(
            !matches!(change, Change::Other { .. }),
            "{name}: change not modelled: {change:?}"
        );
        if let Change::Messages(v) = change {
            for m in &v.messages {
                assert!(
                    !matches!(m.content, InboundContent::Unsupported(_)),
                    "{name}: message fell back"
                );
            }
        }
    }
}

/// Every fixture file and how it is checked. A file missing from this list
/// fails `every_fixture_is_checked`.
const FIXTURES: &[&str] = &[
    "send_text",
    "send_image_id",
    "send_document_link",
    "send_audio",
    "send_video",
    "send_sticker",
    "send_location",
    "send_contacts",
    "send_reaction",
    "send_reaction_remove",
    "send_interactive_buttons",
    "send_interactive_buttons_image_header",
    "send_interactive_list",
    "send_template",
    "send_template_named",
    "send_with_context_and_tracker",
    "send_response",
    "mark_read",
    "mark_read_typing",
    "success",
    "error_envelope",
    "error_envelope_auth",
    "error_envelope_unknown_id",
    "webhook_error_object",
    "webhook_text",
    "webhook_bsuid_contact",
    "webhook_statuses",
    "webhook_errors",
    "webhook_template_status",
    "inbound_image",
    "inbound_image_url",
    "inbound_video",
    "inbound_document",
    "inbound_audio",
    "inbound_sticker",
    "inbound_location",
    "inbound_contacts",
    "inbound_button_reply",
    "inbound_list_reply",
    "inbound_flow_reply",
    "inbound_template_button",
    "inbound_reaction",
    "inbound_reaction_removed",
    "inbound_order",
    "inbound_system_number_changed",
    "inbound_system_identity",
    "inbound_unsupported",
    "inbound_forwarded",
    "inbound_frequently_forwarded",
    "inbound_product_enquiry",
    "inbound_referral",
    "status_sent",
    "status_failed",
    "status_read_pmp",
    "template_create",
    "template_create_named",
    "template_created",
    "template_list",
    "media_uploaded",
    "media_info",
    "phone_number",
];

fn check(name: &str) {
    match name {
        n if n.starts_with("send_response") => drop(round_trip::<SendResponse>(n)),
        n if n.starts_with("send_") => send(n),
        n if n.starts_with("mark_read") => drop(round_trip::<MarkRead>(n)),
        "success" => assert!(round_trip::<SuccessResponse>(name).success),
        n if n.starts_with("error_envelope") => drop(round_trip::<ErrorEnvelope>(n)),
        "webhook_error_object" => drop(round_trip::<WebhookError>(name)),
        n if n.starts_with("webhook_") => webhook(n),
        "inbound_unsupported" => inbound(name, true),
        n if n.starts_with("inbound_") => inbound(n, false),
        n if n.starts_with("status_") => drop(round_trip::<Status>(n)),
        "template_create" | "template_create_named" => drop(round_trip::<TemplateCreate>(name)),
        "template_created" => drop(round_trip::<TemplateCreated>(name)),
        "template_list" => drop(round_trip::<TemplateList>(name)),
        "media_uploaded" => drop(round_trip::<MediaUploaded>(name)),
        "media_info" => drop(round_trip::<MediaInfo>(name)),
        "phone_number" => drop(round_trip::<PhoneNumberInfo>(name)),
        other => panic!("no check for fixture {other}"),
    }
}

#[test]
fn every_listed_fixture_parses_and_round_trips() {
    let mut failures = Vec::new();
    for name in FIXTURES {
        if let Err(e) = std::panic::catch_unwind(|| check(name)) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
            failures.push(format!("{name}: {}", msg.unwrap_or_default()));
        }
    }
    assert!(
        failures.is_empty(),
        "fixtures failing:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_fixture_is_checked() {
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(
                FIXTURES.contains(&stem.as_str()),
                "fixture {stem}.json is not in FIXTURES"
            );
        }
    }
}

#[test]
fn documented_normalisations() {
    // Upper-case component type on a send is accepted and lower-cased.
    let mut v = load("send_template");
    v["template"]["components"][1]["type"] = "BODY".into();
    let m: OutboundMessage = serde_json::from_value(v.clone()).unwrap();
    v["template"]["components"][1]["type"] = "body".into();
    assert_eq!(serde_json::to_value(&m).unwrap(), v);
    // file_size as a string is written back as a number.
    let mut v = load("media_info");
    v["file_size"] = "61901".into();
    let m: MediaInfo = serde_json::from_value(v).unwrap();
    assert_eq!(serde_json::to_value(&m).unwrap(), load("media_info"));
    // Unknown fields are dropped; empty arrays are omitted.
    let mut v = load("status_sent");
    v["brand_new_field"] = 1.into();
    v["errors"] = serde_json::json!([]);
    let s: Status = serde_json::from_value(v).unwrap();
    assert_eq!(serde_json::to_value(&s).unwrap(), load("status_sent"));
}
