//! Webhooks as a receiver sees them: the verify handshake first, signed
//! status progressions per user behaviour, inbound messages and replies,
//! template reviews, retries after failures.

mod common;

use common::{Control, Receiver, client, number_id, start, template};
use serde_json::{Value, json};
use waypost_cloudapi::{OutboundMessage, WebhookPayload};
use waypost_sandbox::SandboxConfig;

async fn setup(f: impl FnOnce(&mut SandboxConfig)) -> (waypost_sandbox::RunningSandbox, Receiver) {
    let mut c = SandboxConfig::default();
    let (rx, url) = Receiver::start(&c.numbers[0].app_secret, &c.numbers[0].verify_token).await;
    c.numbers[0].webhook_url = Some(url);
    // Wide enough that a loaded machine does not reorder the spawned deliveries.
    c.webhooks.status_step_ms = 50;
    c.webhooks.retry_base_ms = 10;
    f(&mut c);
    (start(c).await, rx)
}

fn statuses(posts: &[common::Received]) -> Vec<Value> {
    posts
        .iter()
        .flat_map(|p| {
            p.body["entry"][0]["changes"][0]["value"]["statuses"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn signed_statuses_sent_delivered_read_with_tracker() {
    // The pre-2025 shape on request: CBP pricing and a conversation on every status.
    let (sb, rx) = setup(|c| c.api.shape = waypost_sandbox::ApiShape::Legacy).await;
    let mut m = template("15550301", "hello_world", &[]);
    m.biz_opaque_callback_data = Some("order-7".into());
    let wamid = client(&sb)
        .send_message(&number_id(&sb), &m)
        .await
        .unwrap()
        .wamid()
        .unwrap()
        .to_owned();
    let posts = rx.wait_for(|p| statuses(p).len() >= 3).await;
    assert_eq!(
        *rx.handshakes.lock().unwrap(),
        1,
        "one verify handshake before the first POST"
    );
    assert!(
        posts.iter().all(|p| p.signature_ok),
        "every POST verifies with verify_signature"
    );
    let st = statuses(&posts);
    let kinds: Vec<&str> = st.iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["sent", "delivered", "read"]);
    for s in &st {
        assert_eq!(s["id"], wamid.as_str());
        assert_eq!(s["biz_opaque_callback_data"], "order-7");
        assert_eq!(s["pricing"]["category"], "utility");
        assert_eq!(s["conversation"]["origin"]["type"], "utility");
    }
    assert!(st[0]["conversation"]["expiration_timestamp"].is_string());
    // The body parses as the cloudapi webhook type.
    let _: WebhookPayload = serde_json::from_value(posts[0].body.clone()).unwrap();
}

#[tokio::test]
async fn behaviours_unreachable_delivers_only_and_replies() {
    let (sb, rx) = setup(|_| {}).await;
    let (c, id, ctl) = (client(&sb), number_id(&sb), Control::new(&sb));
    ctl.set_user("15550302", json!({"behaviour": "unreachable"}))
        .await;
    ctl.set_user("15550303", json!({"behaviour": "delivers_only"}))
        .await;
    ctl.set_user("15550304", json!({"behaviour": "replies"}))
        .await;
    for to in ["15550302", "15550303", "15550304"] {
        c.send_message(&id, &template(to, "hello_world", &[]))
            .await
            .unwrap();
    }
    let has_reply = |p: &[common::Received]| {
        p.iter()
            .any(|r| r.body["entry"][0]["changes"][0]["value"]["messages"][0]["from"] == "15550304")
    };
    let posts = rx
        .wait_for(|p| statuses(p).len() >= 7 && has_reply(p))
        .await;
    let st = statuses(&posts);
    let of = |to: &str| -> Vec<String> {
        st.iter()
            .filter(|s| s["recipient_id"] == to)
            .map(|s| s["status"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(of("15550302"), ["sent", "failed"]);
    let failed = st.iter().find(|s| s["status"] == "failed").unwrap();
    assert_eq!(failed["errors"][0]["code"], 131026);
    assert_eq!(of("15550303"), ["sent", "delivered"]);
    assert_eq!(of("15550304"), ["sent", "delivered", "read"]);
    // The reply opened the window: free-form text now goes through.
    c.send_message(&id, &OutboundMessage::text("15550304", "thanks"))
        .await
        .unwrap();
}

#[tokio::test]
async fn injected_inbound_arrives_and_can_be_marked_read() {
    let (sb, rx) = setup(|_| {}).await;
    let ctl = Control::new(&sb);
    let body = json!({"from": "+1 555 0305", "name": "Ana",
        "message": {"type": "image", "image": {"id": "123", "mime_type": "image/jpeg", "sha256": "abc="}}});
    let id = ctl
        .call(reqwest::Method::POST, "/inbound", Some(body))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let posts = rx.wait_for(|p| !p.is_empty()).await;
    let value = &posts[0].body["entry"][0]["changes"][0]["value"];
    assert_eq!(value["messages"][0]["id"], id.as_str());
    assert_eq!(value["messages"][0]["type"], "image");
    assert_eq!(value["contacts"][0]["profile"]["name"], "Ana");
    assert_eq!(
        value["metadata"]["phone_number_id"],
        number_id(&sb).as_str()
    );
    client(&sb)
        .mark_as_read(&number_id(&sb), &id, true)
        .await
        .unwrap();
    let err = client(&sb)
        .mark_as_read(&number_id(&sb), "wamid.unknown", false)
        .await
        .unwrap_err();
    assert_eq!(err.meta().unwrap().code, 100);
}

#[tokio::test]
async fn template_review_webhook_and_retries() {
    let (sb, rx) = setup(|c| c.webhooks.template_review_ms = 10).await;
    *rx.fail_first.lock().unwrap() = 2;
    let create: waypost_cloudapi::manage::TemplateCreate = serde_json::from_value(json!({
        "name":"retry_me","language":"en_US","category":"MARKETING",
        "components":[{"type":"BODY","text":"Hello"}]}))
    .unwrap();
    let waba = sb.numbers()[0].waba_id.clone();
    let created = client(&sb).create_template(&waba, &create).await.unwrap();
    let posts = rx.wait_for(|p| !p.is_empty()).await;
    let change = &posts[0].body["entry"][0]["changes"][0];
    assert_eq!(change["field"], "message_template_status_update");
    assert_eq!(change["value"]["event"], "APPROVED");
    assert_eq!(
        change["value"]["message_template_id"].to_string(),
        created.id
    );
    let log = Control::new(&sb).log().await;
    assert_eq!(log["counters"]["webhooks_failed_attempts"], 2);
    assert_eq!(log["counters"]["webhooks_delivered"], 1);
}

#[tokio::test]
async fn bad_verify_token_means_no_delivery() {
    let (sb, rx) = setup(|c| {
        c.numbers[0].verify_token = "not-what-the-receiver-expects".into();
        c.webhooks.max_attempts = 2;
    })
    .await;
    client(&sb)
        .send_message(&number_id(&sb), &template("15550306", "hello_world", &[]))
        .await
        .unwrap();
    let ctl = Control::new(&sb);
    for _ in 0..100 {
        if ctl.log().await["counters"]["webhooks_given_up"].as_u64() == Some(3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(ctl.log().await["counters"]["webhooks_given_up"], 3);
    assert!(rx.posts().is_empty());
}
