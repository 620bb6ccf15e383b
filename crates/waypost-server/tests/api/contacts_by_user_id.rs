//! `POST /v1/contacts` with a business-scoped user id (issue #16): a customer
//! known only by BSUID, or by BSUID and phone, is added through the API, later
//! webhooks from that BSUID find it, a BSUID is held once per workspace, and
//! malformed ids are refused without being echoed.

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::bsuid::{get, post};
use crate::messaging_fixture::fixture;
use crate::on_both_backends;

on_both_backends!(contacts_are_created_by_user_id_once_and_found_by_webhooks);

const BSUID: &str = "US.13491208655302741918";

fn problem_type(p: &Value) -> &str {
    p["type"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("https://waypost.dev/problems/")
}

async fn contacts_are_created_by_user_id_once_and_found_by_webhooks(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let (status, bo) = post(&f, "/v1/contacts", json!({"user_id": BSUID, "name": "Bo"})).await;
    assert_eq!(status, 201, "{bo}");
    assert_eq!(bo["user_id"], BSUID);
    assert!(bo["phone"].is_null(), "{bo}");
    let id = bo["id"].as_str().unwrap().to_owned();
    let (_, shown) = get(&f, &f.key, &format!("/v1/contacts/{id}")).await;
    assert_eq!(
        (shown["user_id"].as_str(), shown["name"].as_str()),
        (Some(BSUID), Some("Bo"))
    );

    // A webhook from that BSUID is the same customer.
    let body = f.messages_body(
        json!({"contacts": [{"user_id": BSUID, "profile": {"name": "B"}}],
        "messages": [{"id": "wamid.bo", "from_user_id": BSUID, "timestamp": "1764230000",
            "type": "text", "text": {"body": "hi"}}]}),
    );
    assert_eq!(f.post_webhook(&body, None).await.status(), 200);
    assert_eq!(f.wait_inbound("wamid.bo").await.contact_id, id);

    // A BSUID belongs to one contact; the answer names it, not the id itself.
    let (status, p) = post(
        &f,
        "/v1/contacts",
        json!({"user_id": BSUID, "phone": "+4915112340000"}),
    )
    .await;
    assert_eq!(status, 409, "{p}");
    assert_eq!(problem_type(&p), "contact-exists");
    assert_eq!(p["contact_id"], id.as_str());
    assert!(p["detail"].as_str().unwrap().contains("user id"), "{p}");
    assert!(!p.to_string().contains(BSUID), "{p}");

    // Both identifiers at once; then the number again with another BSUID.
    let (status, cy) = post(
        &f,
        "/v1/contacts",
        json!({"user_id": "DE.77", "phone": "+49 151 2345 0001"}),
    )
    .await;
    assert_eq!(status, 201, "{cy}");
    assert_eq!(
        (cy["user_id"].as_str(), cy["phone"].as_str()),
        (Some("DE.77"), Some("+4915123450001"))
    );
    let (status, p) = post(
        &f,
        "/v1/contacts",
        json!({"user_id": "DE.78", "phone": "+4915123450001"}),
    )
    .await;
    assert_eq!(status, 409, "{p}");
    assert_eq!(p["contact_id"], cy["id"]);
    assert!(
        p["detail"].as_str().unwrap().contains("phone number"),
        "{p}"
    );
    assert!(!p.to_string().contains("4915123450001"), "{p}");

    // Malformed, parent or missing identifiers: 422 saying why, never echoing the input.
    for (body, kind) in [
        (json!({"user_id": "US.secret-name_1234"}), "invalid-user-id"),
        (json!({"user_id": "united.1234"}), "invalid-user-id"),
        (json!({"user_id": "US.ENT.1234"}), "validation"),
        (json!({"name": "nobody"}), "validation"),
    ] {
        let (status, p) = post(&f, "/v1/contacts", body.clone()).await;
        assert_eq!(status, 422, "{body} -> {p}");
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains("user_id"), "{p}");
        assert_eq!(problem_type(&p), kind, "{p}");
        if kind == "invalid-user-id" {
            assert_eq!(p["field"], "user_id");
        }
        let input = body["user_id"].as_str().unwrap_or("\u{0}");
        assert!(!p.to_string().contains(input), "echoed: {p}");
    }
    let (_, all) = get(&f, &f.key, "/v1/contacts").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 2, "{all}");
}
