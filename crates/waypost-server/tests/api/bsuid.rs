//! Customers without phone numbers (issue #16), end to end on both backends
//! with the sandbox speaking the 2026 API: a BSUID-only customer writes, is
//! answered, opts out, is exported and erased; a customer first seen by phone
//! and later by BSUID is one contact; a number change keeps the conversation;
//! asynchronous failures end `failed` with the provider's code. Pricing is in
//! `pricing.rs`.

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;
use crate::users::{PASSWORD, api_key, login};

on_both_backends!(
    bsuid_only_customer_writes_is_answered_opts_out_is_exported_and_erased,
    first_seen_by_phone_then_by_bsuid_is_one_contact,
    a_phone_contact_and_a_bsuid_contact_merge_when_one_webhook_names_both,
    a_recycled_number_moves_to_its_new_user_without_a_merge,
    number_change_keeps_the_conversation,
    async_failure_ends_failed_with_the_provider_code,
    authentication_templates_need_a_phone_and_bad_user_ids_are_refused,
);

/// The sandbox's seeded username user whose phone is withheld.
const HIDDEN: &str = "15550199001";

pub(crate) async fn get(f: &Fixture, key: &str, path: &str) -> (u16, Value) {
    let r = f
        .app
        .client
        .get(format!("{}{path}", f.app.address))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn post(f: &Fixture, path: &str, body: Value) -> (u16, Value) {
    let r = f
        .app
        .client
        .post(format!("{}{path}", f.app.address))
        .bearer_auth(&f.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn contacts(f: &Fixture) -> Vec<Value> {
    get(f, &f.key, "/v1/contacts").await.1["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn contact_of_message(f: &Fixture, wamid: &str) -> Value {
    let m = f.wait_inbound(wamid).await;
    get(f, &f.key, &format!("/v1/contacts/{}", m.contact_id))
        .await
        .1
}

async fn send(f: &Fixture, to: Value, text: &str) -> String {
    let mut body = json!({"channel_id": f.channel.id, "type": "text", "text": {"body": text}});
    body.as_object_mut()
        .unwrap()
        .extend(to.as_object().unwrap().clone());
    let (status, v) = post(f, "/v1/messages", body).await;
    assert_eq!(status, 202, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// The first `message.received` customer event, opened.
async fn received_event(f: &Fixture) -> Value {
    let store = f.app.state.store.as_ref();
    let rows = store
        .customer_events_after(&f.ws.to_string(), 0, 1000)
        .await
        .unwrap();
    let row = rows
        .iter()
        .find(|e| e.event_type == "message.received")
        .unwrap();
    waypost_server::events::open(&f.app.state.keys, store, row)
        .await
        .unwrap()
}

async fn privacy_key(f: &Fixture) -> String {
    let session = login(&f.app, "ops@example.com", PASSWORD).await;
    api_key(
        &f.app,
        &session,
        json!({"name": "dsr", "scopes": ["privacy:manage"]}),
    )
    .await
    .1
}

async fn bsuid_only_customer_writes_is_answered_opts_out_is_exported_and_erased(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let wamid = f.inject(HIDDEN, "hello, is my order ready?").await;
    let contact = contact_of_message(&f, &wamid).await;
    assert!(contact["phone"].is_null(), "{contact}");
    assert_eq!(contact["username"], "ana.lima");
    let bsuid = contact["user_id"].as_str().unwrap().to_owned();
    assert!(bsuid.starts_with("US."));
    let id = contact["id"].as_str().unwrap().to_owned();
    let received = received_event(&f).await;
    assert_eq!(
        received["data"]["from"],
        json!({"user_id": bsuid, "phone": null})
    );

    // Answered by contact id and by BSUID: both go out as `recipient`, and their statuses match.
    let by_contact = send(&f, json!({"contact_id": id}), "yes, it ships today").await;
    let by_bsuid = send(&f, json!({"user_id": bsuid}), "tracking follows").await;
    for m in [&by_contact, &by_bsuid] {
        let row = f.wait_status(m, &["read"]).await;
        assert_eq!(row.contact_id, id);
    }
    let log = f.sandbox_log().await;
    let sends: Vec<&Value> = log["sends"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["biz_opaque_callback_data"] == by_contact.as_str())
        .collect();
    assert_eq!(
        sends[0]["recipient"],
        bsuid.as_str(),
        "sent by BSUID, not by phone"
    );
    assert_eq!(contacts(&f).await.len(), 1);

    // STOP from the BSUID-only customer opts them out.
    let stop = f.inject(HIDDEN, "STOP").await;
    f.wait_inbound(&stop).await;
    let (_, c) = get(&f, &f.key, &format!("/v1/contacts/{id}")).await;
    assert_eq!(c["consent"]["marketing"], "opted_out");

    // Export and erase by BSUID.
    let dsr = privacy_key(&f).await;
    let (status, export) = get(&f, &dsr, &format!("/v1/privacy/subjects/{bsuid}")).await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["user_id"], bsuid.as_str());
    assert!(export["phone"].is_null());
    assert_eq!(export["contact"]["id"], id.as_str());
    assert!(export["messages"].as_array().unwrap().len() >= 4);
    let r = f
        .app
        .client
        .delete(format!("{}/v1/privacy/subjects/{bsuid}", f.app.address))
        .bearer_auth(&dsr)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, _) = get(&f, &f.key, &format!("/v1/contacts/{id}")).await;
    assert_eq!(status, 404);
    let (status, _) = get(&f, &dsr, &format!("/v1/privacy/subjects/{bsuid}")).await;
    assert_eq!(status, 404);
}

async fn first_seen_by_phone_then_by_bsuid_is_one_contact(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let bsuid = "DE.10000000000000000042";
    let inbound = |id: &str, from: Option<&str>, user: Option<&str>| {
        let mut contact = json!({"profile": {"name": "Ada"}});
        let mut message =
            json!({"id": id, "timestamp": "1764230000", "type": "text", "text": {"body": "hi"}});
        if let Some(p) = from {
            contact["wa_id"] = json!(p);
            message["from"] = json!(p);
        }
        if let Some(u) = user {
            contact["user_id"] = json!(u);
            message["from_user_id"] = json!(u);
        }
        f.messages_body(json!({"contacts": [contact], "messages": [message]}))
    };
    // The pre-2026 shape (phone only), then both identifiers, then the BSUID alone.
    for (wamid, from, user) in [
        ("wamid.phone-only", Some(USER), None),
        ("wamid.both", Some(USER), Some(bsuid)),
        ("wamid.bsuid-only", None, Some(bsuid)),
    ] {
        let r = f.post_webhook(&inbound(wamid, from, user), None).await;
        assert_eq!(r.status(), 200);
    }
    let mut ids = Vec::new();
    for w in ["wamid.phone-only", "wamid.both", "wamid.bsuid-only"] {
        ids.push(f.wait_inbound(w).await.contact_id);
    }
    assert!(ids.iter().all(|c| *c == ids[0]), "{ids:?}");
    let all = contacts(&f).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["phone"], format!("+{USER}"));
    assert_eq!(all[0]["user_id"], bsuid);
    let actions = crate::users::audit_actions(&f.app, Some(f.ws)).await;
    assert!(
        actions.contains(&"contact.linked".to_owned()),
        "{actions:?}"
    );
}

async fn a_phone_contact_and_a_bsuid_contact_merge_when_one_webhook_names_both(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let (status, ada) = post(
        &f,
        "/v1/contacts",
        json!({"phone": format!("+{USER}"), "name": "Ada"}),
    )
    .await;
    assert_eq!(status, 201, "{ada}");
    let ada_id = ada["id"].as_str().unwrap().to_owned();
    let (status, _) = post(
        &f,
        &format!("/v1/contacts/{ada_id}/consent"),
        json!({"status": "opted_in", "categories": ["marketing"], "source": "web",
               "captured_at": "2026-11-01T10:00:00Z"}),
    )
    .await;
    assert_eq!(status, 201);
    let bsuid = "DE.10000000000000000077";
    let text = |id: &str, from: Option<&str>, body: &str| {
        let mut contact = json!({"profile": {"name": "Ada L."}, "user_id": bsuid});
        let mut message = json!({"id": id, "timestamp": "1764230000", "type": "text",
            "from_user_id": bsuid, "text": {"body": body}});
        if let Some(p) = from {
            contact["wa_id"] = json!(p);
            message["from"] = json!(p);
        }
        f.messages_body(json!({"contacts": [contact], "messages": [message]}))
    };
    // The phone withheld: a second contact, which opts out.
    for (id, body) in [("wamid.m1", "hello"), ("wamid.m2", "STOP")] {
        assert_eq!(
            f.post_webhook(&text(id, None, body), None).await.status(),
            200
        );
        f.wait_inbound(id).await;
    }
    assert_eq!(contacts(&f).await.len(), 2);
    // Both identifiers in one webhook: one person, one contact.
    assert_eq!(
        f.post_webhook(&text("wamid.m3", Some(USER), "it's me"), None)
            .await
            .status(),
        200
    );
    let m3 = f.wait_inbound("wamid.m3").await;
    let all = contacts(&f).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let c = &all[0];
    assert_eq!(c["id"], ada_id.as_str(), "the older contact is kept");
    assert_eq!(m3.contact_id, ada_id);
    assert_eq!(
        (c["phone"].as_str(), c["user_id"].as_str()),
        (Some(&*format!("+{USER}")), Some(bsuid))
    );
    assert_eq!(c["name"], "Ada");
    assert_eq!(c["consent"]["marketing"], "opted_out", "the opt-out wins");
    for id in ["wamid.m1", "wamid.m2"] {
        assert_eq!(f.wait_inbound(id).await.contact_id, ada_id);
    }
    let (_, history) = get(&f, &f.key, &format!("/v1/contacts/{ada_id}/consent")).await;
    assert_eq!(history.as_array().map_or(0, Vec::len), 2, "{history}");
    let actions = crate::users::audit_actions(&f.app, Some(f.ws)).await;
    assert!(
        actions.contains(&"contact.merged".to_owned()),
        "{actions:?}"
    );
}

async fn number_change_keeps_the_conversation(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let first = f.inject(USER, "hello").await;
    let before = contact_of_message(&f, &first).await;
    let received = received_event(&f).await;
    assert_eq!(
        received["data"]["from"]["phone"], "+4915*******78",
        "masked"
    );
    assert_eq!(received["data"]["from"]["user_id"], before["user_id"]);
    let id = before["id"].as_str().unwrap().to_owned();
    assert_eq!(before["phone"], format!("+{USER}"));
    let new_phone = "4915112345699";
    let r = f
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
        .unwrap();
    let changed: Value = r.json().await.unwrap();
    let system = f.wait_inbound(changed["id"].as_str().unwrap()).await;
    assert_eq!(system.contact_id, id);
    let after_msg = f.inject(new_phone, "my new number").await;
    let after = contact_of_message(&f, &after_msg).await;
    assert_eq!(after["id"], id.as_str(), "same contact after the change");
    assert_eq!(after["phone"], format!("+{new_phone}"));
    assert_eq!(after["user_id"], changed["user_id"]);
    assert_ne!(after["user_id"], before["user_id"]);
    assert_eq!(contacts(&f).await.len(), 1);
    let actions = crate::users::audit_actions(&f.app, Some(f.ws)).await;
    assert!(
        actions.contains(&"contact.number_changed".to_owned()),
        "{actions:?}"
    );
    // A reply goes to the new number.
    let reply = send(&f, json!({"contact_id": id}), "noted").await;
    f.wait_status(&reply, &["read"]).await;
    let log = f.sandbox_log().await;
    let sent = log["sends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["biz_opaque_callback_data"] == reply.as_str())
        .unwrap()
        .clone();
    assert_eq!(sent["to"], new_phone);
}

async fn async_failure_ends_failed_with_the_provider_code(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    f.open_window(USER).await;
    f.set_user(USER, json!({"not_on_whatsapp": true})).await;
    let id = f.send_ok(USER, "are you there?").await;
    let m = f.wait_status(&id, &["failed"]).await;
    assert_eq!(m.error_code, Some(131026));
    assert_eq!(
        f.sends_of(&id).await,
        ["accepted"],
        "accepted by the provider, failed by webhook"
    );
    assert!(m.provider_message_id.is_some());
}

async fn authentication_templates_need_a_phone_and_bad_user_ids_are_refused(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let now = f.app.clock_now();
    let template = waypost_store::templates::TemplateRow {
        id: format!("tpl_{}", ulid::Ulid::new()),
        workspace_id: f.ws.to_string(),
        channel_id: f.channel.id.clone(),
        name: "login_code".into(),
        language: "en_US".into(),
        category: "authentication".into(),
        components: json!([{"type": "BODY", "text": "{{1}} is your code."}]).to_string(),
        status: "APPROVED".into(),
        rejection_reason: None,
        provider_id: None,
        created_at: now,
        updated_at: now,
    };
    let audit = waypost_core::NewAuditEvent::new(
        Some(f.ws),
        waypost_core::audit::Actor::System,
        "template.created",
    );
    f.app
        .state
        .store
        .create_template(&template, audit)
        .await
        .unwrap();
    let code = json!({"name": "login_code", "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "123456"}]}]});
    let body = json!({"channel_id": f.channel.id, "user_id": "US.10000000000000000099",
        "type": "template", "template": code});
    let (status, problem) = post(&f, "/v1/messages", body).await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("phone-required"),
        "{problem}"
    );
    // With a phone the same template is accepted.
    let body = json!({"channel_id": f.channel.id, "to": format!("+{USER}"),
        "type": "template", "template": code});
    assert_eq!(post(&f, "/v1/messages", body).await.0, 202);
    // A malformed user id is refused, and not echoed back.
    let body = json!({"channel_id": f.channel.id, "user_id": "+4915112345678",
        "type": "text", "text": {"body": "hi"}});
    let (status, problem) = post(&f, "/v1/messages", body).await;
    assert_eq!(status, 422);
    assert_eq!(problem["field"], "user_id");
    assert!(
        !problem["detail"]
            .as_str()
            .unwrap()
            .contains("4915112345678"),
        "{problem}"
    );
}

async fn a_recycled_number_moves_to_its_new_user_without_a_merge(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let text = |id: &str, user: &str| {
        f.messages_body(json!({
            "contacts": [{"profile": {"name": "N"}, "wa_id": USER, "user_id": user}],
            "messages": [{"id": id, "from": USER, "from_user_id": user, "timestamp": "1764230000",
                          "type": "text", "text": {"body": "hi"}}]}))
    };
    // The number's first owner, then (the number recycled) someone else.
    assert_eq!(
        f.post_webhook(&text("wamid.r1", "DE.10000000000000000001"), None)
            .await
            .status(),
        200
    );
    let old = f.wait_inbound("wamid.r1").await.contact_id;
    assert_eq!(
        f.post_webhook(&text("wamid.r2", "DE.10000000000000000002"), None)
            .await
            .status(),
        200
    );
    let new = f.wait_inbound("wamid.r2").await.contact_id;
    assert_ne!(old, new, "two people, two contacts");
    let (_, old_c) = get(&f, &f.key, &format!("/v1/contacts/{old}")).await;
    let (_, new_c) = get(&f, &f.key, &format!("/v1/contacts/{new}")).await;
    assert!(old_c["phone"].is_null(), "{old_c}");
    assert_eq!(old_c["user_id"], "DE.10000000000000000001");
    assert_eq!(new_c["phone"], format!("+{USER}"));
    let actions = crate::users::audit_actions(&f.app, Some(f.ws)).await;
    assert!(
        actions.contains(&"contact.phone_released".to_owned()),
        "{actions:?}"
    );
    assert!(
        !actions.contains(&"contact.merged".to_owned()),
        "{actions:?}"
    );
}
