//! `contact.identifiers_changed` customer events (issue #16): a webhook that
//! links a BSUID to a contact known by phone, a merge of two contacts that are
//! one person, and a number change each tell the customer, naming the contact
//! by id, the BSUID, the phone masked, and never the full number or username.

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::bsuid::post;
use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;

on_both_backends!(
    linking_and_merging_tell_the_customer,
    a_number_change_tells_the_customer,
);

const MASKED: &str = "+4915*******78";

/// Every `contact.identifiers_changed` event so far, opened, oldest first;
/// asserts that no event of any type carries the full phone number.
async fn identity_events(f: &Fixture) -> Vec<Value> {
    let store = f.app.state.store.as_ref();
    let rows = store
        .customer_events_after(&f.ws.to_string(), 0, 1000)
        .await
        .unwrap();
    let mut out = Vec::new();
    for row in &rows {
        let e = waypost_server::events::open(&f.app.state.keys, store, row)
            .await
            .unwrap();
        assert!(!e.to_string().contains(USER), "a full number in {e}");
        if row.event_type == "contact.identifiers_changed" {
            assert_eq!(
                row.subject_id.as_ref(),
                e["data"]["contact_id"].as_str().map(str::to_owned).as_ref()
            );
            out.push(e["data"].clone());
        }
    }
    out
}

fn text_from(f: &Fixture, wamid: &str, phone: Option<&str>, bsuid: &str) -> Value {
    let mut contact = json!({"profile": {"name": "Ada"}, "user_id": bsuid});
    let mut message = json!({"id": wamid, "timestamp": "1764230000", "type": "text",
        "from_user_id": bsuid, "text": {"body": "hi"}});
    if let Some(p) = phone {
        contact["wa_id"] = json!(p);
        message["from"] = json!(p);
    }
    f.messages_body(json!({"contacts": [contact], "messages": [message]}))
}

async fn linking_and_merging_tell_the_customer(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    // Known by phone (the pre-2026 shape), then a webhook names its BSUID too.
    let phone_only = f.messages_body(json!({"contacts": [{"wa_id": USER}],
        "messages": [{"id": "wamid.p", "from": USER, "timestamp": "1764230000",
            "type": "text", "text": {"body": "hi"}}]}));
    assert_eq!(f.post_webhook(&phone_only, None).await.status(), 200);
    let ada = f.wait_inbound("wamid.p").await.contact_id;
    assert!(
        identity_events(&f).await.is_empty(),
        "creation is not a change"
    );
    let bsuid = "DE.10000000000000000042";
    let both = text_from(&f, "wamid.both", Some(USER), bsuid);
    assert_eq!(f.post_webhook(&both, None).await.status(), 200);
    f.wait_inbound("wamid.both").await;
    let events = identity_events(&f).await;
    assert_eq!(
        events,
        [
            json!({"contact_id": ada, "reason": "linked", "changed": ["user_id"],
            "user_id": bsuid, "parent_user_id": null, "phone": MASKED, "has_username": false})
        ]
    );

    // A second person known by BSUID only, then by both: created through the
    // API by phone first, so the older contact (the API's) absorbs the other.
    let other_phone = "4915112345600";
    let (status, bob) = post(
        &f,
        "/v1/contacts",
        json!({"phone": format!("+{other_phone}")}),
    )
    .await;
    assert_eq!(status, 201, "{bob}");
    let bob = bob["id"].as_str().unwrap().to_owned();
    let bob_bsuid = "DE.10000000000000000077";
    let hidden = text_from(&f, "wamid.h", None, bob_bsuid);
    assert_eq!(f.post_webhook(&hidden, None).await.status(), 200);
    let absorbed = f.wait_inbound("wamid.h").await.contact_id;
    assert_ne!(absorbed, bob);
    let named = text_from(&f, "wamid.n", Some(other_phone), bob_bsuid);
    assert_eq!(f.post_webhook(&named, None).await.status(), 200);
    assert_eq!(f.wait_inbound("wamid.n").await.contact_id, bob);
    let events = identity_events(&f).await;
    let merged = events
        .iter()
        .find(|e| e["reason"] == "merged")
        .unwrap_or_else(|| panic!("no merge event in {events:?}"));
    assert_eq!(merged["contact_id"], bob.as_str());
    assert_eq!(merged["merged_contact_id"], absorbed.as_str());
    assert_eq!(merged["changed"], json!(["user_id"]));
    assert_eq!(merged["user_id"], bob_bsuid);
    assert_eq!(merged["phone"], "+4915*******00");
}

async fn a_number_change_tells_the_customer(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let first = f.inject(USER, "hello").await;
    let id = f.wait_inbound(&first).await.contact_id;
    let new_phone = "4915112345699";
    let changed: Value = f
        .app
        .client
        .post(format!(
            "{}/_sandbox/users/{USER}/change_number",
            f.sandbox.base_url()
        ))
        .bearer_auth(f.sandbox.control_token())
        .json(&json!({"new_wa_id": new_phone}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    f.wait_inbound(changed["id"].as_str().unwrap()).await;
    let events = identity_events(&f).await;
    let change = events
        .iter()
        .find(|e| e["reason"] == "number_changed")
        .unwrap_or_else(|| panic!("no number change in {events:?}"));
    assert_eq!(change["contact_id"], id.as_str());
    assert_eq!(change["phone"], "+4915*******99");
    assert_eq!(change["user_id"], changed["user_id"]);
    let names = change["changed"].as_array().unwrap();
    assert!(names.contains(&json!("phone")), "{change}");
    assert!(!change.to_string().contains(new_phone));
}
