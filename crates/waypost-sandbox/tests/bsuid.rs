//! The 2026 shapes: BSUIDs on every inbound contact and status, usernames,
//! phones withheld until this number sends to them, sends addressed by
//! BSUID, per-message pricing, system messages for number and BSUID
//! changes; and the legacy shape on request.

mod common;

use common::{Control, Received, Receiver, client, number_id, start, template};
use serde_json::{Value, json};
use waypost_cloudapi::{OutboundMessage, WebhookPayload};
use waypost_sandbox::{ApiShape, RunningSandbox, SandboxConfig};

/// The seeded username user whose phone is withheld.
const HIDDEN: &str = "15550199001";

async fn setup(f: impl FnOnce(&mut SandboxConfig)) -> (RunningSandbox, Receiver) {
    let mut c = SandboxConfig::default();
    let (rx, url) = Receiver::start(&c.numbers[0].app_secret, &c.numbers[0].verify_token).await;
    c.numbers[0].webhook_url = Some(url);
    c.webhooks.status_step_ms = 50;
    f(&mut c);
    (start(c).await, rx)
}

fn values(posts: &[Received]) -> Vec<Value> {
    posts
        .iter()
        .map(|p| p.body["entry"][0]["changes"][0]["value"].clone())
        .collect()
}

fn with_status(posts: &[Received], wamid: &str, status: &str) -> Option<Value> {
    values(posts)
        .into_iter()
        .find(|v| v["statuses"][0]["id"] == wamid && v["statuses"][0]["status"] == status)
}

fn all_parse(posts: &[Received]) {
    for p in posts {
        let _: WebhookPayload = serde_json::from_value(p.body.clone()).unwrap();
    }
}

async fn inbound(ctl: &Control, from: &str, text: &str) -> String {
    ctl.inbound(from, text).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn message_with_id(posts: &[Received], id: &str) -> Option<Value> {
    values(posts)
        .into_iter()
        .find(|v| v["messages"][0]["id"] == id)
}

#[tokio::test]
async fn inbound_carries_bsuid_and_withholds_the_phone_of_a_username_user() {
    let (sb, rx) = setup(|c| c.api.parent_user_ids = true).await;
    let ctl = Control::new(&sb);
    let hidden = inbound(&ctl, HIDDEN, "hello").await;
    let plain = inbound(&ctl, "15550401", "hi").await;
    let posts = rx.wait_for(|p| p.len() >= 2).await;
    all_parse(&posts);
    let v = message_with_id(&posts, &hidden).unwrap();
    let (contact, msg) = (&v["contacts"][0], &v["messages"][0]);
    assert!(
        contact.get("wa_id").is_none() && msg.get("from").is_none(),
        "{v}"
    );
    let bsuid = contact["user_id"].as_str().unwrap();
    assert!(bsuid.starts_with("US.") && bsuid.len() > 3, "{bsuid}");
    assert_eq!(msg["from_user_id"], bsuid);
    assert_eq!(contact["profile"]["username"], "ana.lima");
    assert!(
        contact["parent_user_id"]
            .as_str()
            .unwrap()
            .starts_with("US.ENT.")
    );
    assert_eq!(msg["from_parent_user_id"], contact["parent_user_id"]);
    let v = message_with_id(&posts, &plain).unwrap();
    assert_eq!(v["contacts"][0]["wa_id"], "15550401");
    assert_eq!(v["messages"][0]["from"], "15550401");
    assert!(v["contacts"][0]["user_id"].is_string());
    assert!(v["contacts"][0]["profile"].get("username").is_none());
}

#[tokio::test]
async fn send_by_bsuid_answers_user_id_and_statuses_follow_the_2026_rules() {
    let (sb, rx) = setup(|_| {}).await;
    let (c, id, ctl) = (client(&sb), number_id(&sb), Control::new(&sb));
    inbound(&ctl, HIDDEN, "hello").await;
    let posts = rx.wait_for(|p| !p.is_empty()).await;
    let bsuid = values(&posts)[0]["contacts"][0]["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let m = OutboundMessage::to_user_id(&bsuid, OutboundMessage::text("", "hi").content);
    let r = c.send_message(&id, &m).await.unwrap();
    assert_eq!(r.contacts[0].input, bsuid);
    assert_eq!(r.contacts[0].user_id.as_deref(), Some(bsuid.as_str()));
    assert_eq!(r.contacts[0].wa_id, None);
    let wamid = r.wamid().unwrap().to_owned();
    let posts = rx
        .wait_for(|p| with_status(p, &wamid, "read").is_some())
        .await;
    all_parse(&posts);
    let sent = with_status(&posts, &wamid, "sent").unwrap();
    let delivered = with_status(&posts, &wamid, "delivered").unwrap();
    let read = with_status(&posts, &wamid, "read").unwrap();
    for v in [&sent, &delivered, &read] {
        let s = &v["statuses"][0];
        assert_eq!(s["recipient_user_id"], bsuid.as_str());
        assert!(s.get("recipient_id").is_none(), "phone withheld: {s}");
        assert!(
            s.get("conversation").is_none(),
            "no conversation since v24: {s}"
        );
        assert_eq!(v["contacts"][0]["user_id"], bsuid.as_str());
        assert!(v["contacts"][0].get("wa_id").is_none());
    }
    assert!(sent["contacts"][0]["profile"].get("username").is_none());
    assert_eq!(delivered["contacts"][0]["profile"]["username"], "ana.lima");
    let pricing = json!({"billable": false, "pricing_model": "PMP",
        "type": "free_customer_service", "category": "service"});
    assert_eq!(sent["statuses"][0]["pricing"], pricing);
    assert_eq!(delivered["statuses"][0]["pricing"], pricing);
    assert!(read["statuses"][0].get("pricing").is_none());
    let log = ctl.log().await;
    let rec = log["sends"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (rec["to"].as_str(), rec["recipient"].as_str()),
        (Some(HIDDEN), Some(bsuid.as_str()))
    );
}

#[tokio::test]
async fn sending_to_the_phone_makes_it_visible_and_templates_are_priced_regular() {
    let (sb, rx) = setup(|_| {}).await;
    let (c, id, ctl) = (client(&sb), number_id(&sb), Control::new(&sb));
    let r = c
        .send_message(&id, &template(HIDDEN, "summer_sale", &["Ana"]))
        .await
        .unwrap();
    assert_eq!(r.contacts[0].wa_id.as_deref(), Some(HIDDEN));
    assert_eq!(
        r.messages[0].message_status.as_ref().map(|s| s.as_str()),
        Some("accepted")
    );
    let wamid = r.wamid().unwrap().to_owned();
    let posts = rx
        .wait_for(|p| with_status(p, &wamid, "delivered").is_some())
        .await;
    let sent = with_status(&posts, &wamid, "sent").unwrap();
    assert_eq!(sent["statuses"][0]["recipient_id"], HIDDEN);
    assert_eq!(sent["contacts"][0]["wa_id"], HIDDEN);
    assert_eq!(
        sent["statuses"][0]["pricing"],
        json!({"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"})
    );
    let id_in = inbound(&ctl, HIDDEN, "got it").await;
    let posts = rx.wait_for(|p| message_with_id(p, &id_in).is_some()).await;
    let v = message_with_id(&posts, &id_in).unwrap();
    assert_eq!(v["messages"][0]["from"], HIDDEN);
    assert_eq!(v["contacts"][0]["wa_id"], HIDDEN);
}

#[tokio::test]
async fn unknown_bsuid_and_authentication_template_by_bsuid_are_refused() {
    let (sb, _rx) = setup(|_| {}).await;
    let (c, id) = (client(&sb), number_id(&sb));
    let unknown = OutboundMessage::to_user_id(
        "US.99999999999999999999",
        OutboundMessage::text("", "hi").content,
    );
    let err = c.send_message(&id, &unknown).await.unwrap_err();
    assert_eq!(err.meta().unwrap().code, 100);
    assert!(err.to_string().contains("recipient"), "{err}");
    let ctl = Control::new(&sb);
    let r = ctl
        .call(reqwest::Method::PUT, "/users/15550402", Some(json!({})))
        .await;
    let bsuid = r["user_id"].as_str().unwrap();
    let auth = OutboundMessage::to_user_id(bsuid, template("", "login_code", &["123456"]).content);
    let err = c.send_message(&id, &auth).await.unwrap_err();
    assert_eq!(err.meta().unwrap().code, 131062);
    assert_eq!(err.status(), Some(400));
    // To the phone, the same template goes through.
    c.send_message(&id, &template("15550402", "login_code", &["123456"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn number_and_bsuid_changes_arrive_as_system_messages() {
    let (sb, rx) = setup(|c| c.api.parent_user_ids = true).await;
    let ctl = Control::new(&sb);
    let first = ctl
        .call(
            reqwest::Method::PUT,
            "/users/15550403",
            Some(json!({"name": "Cy"})),
        )
        .await;
    let changed = ctl
        .call(
            reqwest::Method::POST,
            "/users/15550403/change_number",
            Some(json!({"new_wa_id": "15550404"})),
        )
        .await;
    assert_ne!(changed["user_id"], first["user_id"]);
    let again = ctl
        .call(
            reqwest::Method::POST,
            "/users/15550404/change_user_id",
            Some(json!({})),
        )
        .await;
    let posts = rx.wait_for(|p| p.len() >= 2).await;
    all_parse(&posts);
    let vs = values(&posts);
    let number = vs
        .iter()
        .find(|v| v["messages"][0]["id"] == changed["id"])
        .unwrap();
    assert!(
        number.get("contacts").is_none(),
        "system messages have no contacts"
    );
    let m = &number["messages"][0];
    assert_eq!(
        (m["type"].as_str(), m["from"].as_str()),
        (Some("system"), Some("15550403"))
    );
    let s = &m["system"];
    assert_eq!(s["type"], "user_changed_number");
    assert_eq!(s["wa_id"], "15550404");
    assert_eq!(s["previous_user_id"], first["user_id"]);
    assert_eq!(s["user_id"], changed["user_id"]);
    assert_eq!(s["previous_parent_user_id"], first["parent_user_id"]);
    assert_eq!(s["body"], "User Cy changed from 15550403 to 15550404");
    let id_change = vs
        .iter()
        .find(|v| v["messages"][0]["id"] == again["id"])
        .unwrap();
    let m = &id_change["messages"][0];
    assert!(
        m.get("from").is_none() && m["system"].get("wa_id").is_none(),
        "{m}"
    );
    assert_eq!(m["system"]["type"], "user_changed_user_id");
    assert_eq!(m["system"]["previous_user_id"], changed["user_id"]);
    assert_eq!(m["system"]["user_id"], again["user_id"]);
    // The old BSUID no longer reaches anyone.
    let old = OutboundMessage::to_user_id(
        first["user_id"].as_str().unwrap(),
        template("", "hello_world", &[]).content,
    );
    let err = client(&sb)
        .send_message(&number_id(&sb), &old)
        .await
        .unwrap_err();
    assert_eq!(err.meta().unwrap().code, 100);
}

#[tokio::test]
async fn legacy_shape_has_phones_only() {
    let (sb, rx) = setup(|c| c.api.shape = ApiShape::Legacy).await;
    let (c, id, ctl) = (client(&sb), number_id(&sb), Control::new(&sb));
    let id_in = inbound(&ctl, HIDDEN, "hello").await;
    let r = c
        .send_message(&id, &template(HIDDEN, "hello_world", &[]))
        .await
        .unwrap();
    assert_eq!(r.messages[0].message_status, None);
    let wamid = r.wamid().unwrap().to_owned();
    let posts = rx
        .wait_for(|p| with_status(p, &wamid, "read").is_some())
        .await;
    let v = message_with_id(&posts, &id_in).unwrap();
    assert_eq!(v["messages"][0]["from"], HIDDEN);
    assert!(v["messages"][0].get("from_user_id").is_none());
    assert!(v["contacts"][0].get("user_id").is_none());
    let read = with_status(&posts, &wamid, "read").unwrap();
    assert!(read.get("contacts").is_none());
    assert_eq!(read["statuses"][0]["pricing"]["pricing_model"], "CBP");
    assert!(read["statuses"][0]["conversation"]["id"].is_string());
    assert!(read["statuses"][0].get("recipient_user_id").is_none());
}

#[tokio::test]
async fn webhooks_before_v24_carry_a_conversation_per_message() {
    let (sb, rx) = setup(|c| c.api.webhook_version = 23).await;
    let (c, id) = (client(&sb), number_id(&sb));
    let mut wamids = Vec::new();
    for _ in 0..2 {
        let r = c
            .send_message(&id, &template("15550405", "hello_world", &[]))
            .await
            .unwrap();
        wamids.push(r.wamid().unwrap().to_owned());
    }
    let posts = rx
        .wait_for(|p| wamids.iter().all(|w| with_status(p, w, "read").is_some()))
        .await;
    let conv = |w: &str, s: &str| {
        with_status(&posts, w, s).unwrap()["statuses"][0]["conversation"].clone()
    };
    let first = conv(&wamids[0], "sent");
    assert!(first["expiration_timestamp"].is_string());
    assert_eq!(first["origin"]["type"], "utility");
    assert_eq!(conv(&wamids[0], "delivered")["id"], first["id"]);
    assert!(conv(&wamids[0], "read").is_null(), "only where pricing is");
    assert_ne!(
        conv(&wamids[1], "sent")["id"],
        first["id"],
        "one per message"
    );
}
