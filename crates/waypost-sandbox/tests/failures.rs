//! Failures Meta reports after accepting a send: 131026, 131047, 131049,
//! 131050 and 131053 (unknown media id, unfetchable link) arrive as a lone
//! `failed` status in today's shape (no contacts, no pricing, `message ==
//! title`, relative `href`), and the send answer is a 200 with a wamid.

mod common;

use axum::Router;
use axum::routing::get;
use common::{Control, Received, Receiver, client, number_id, start, template};
use serde_json::{Value, json};
use waypost_cloudapi::send::{Media, MediaSource, OutboundContent};
use waypost_cloudapi::{OutboundMessage, WebhookPayload};
use waypost_sandbox::{RunningSandbox, SandboxConfig};

async fn setup() -> (RunningSandbox, Receiver) {
    let mut c = SandboxConfig::default();
    let (rx, url) = Receiver::start(&c.numbers[0].app_secret, &c.numbers[0].verify_token).await;
    c.numbers[0].webhook_url = Some(url);
    c.webhooks.status_step_ms = 20;
    (start(c).await, rx)
}

fn statuses_of(posts: &[Received], wamid: &str) -> Vec<Value> {
    posts
        .iter()
        .map(|p| p.body["entry"][0]["changes"][0]["value"].clone())
        .filter(|v| v["statuses"][0]["id"] == wamid)
        .collect()
}

/// Sends `m`, expects a 200, then exactly one `failed` status with `code`.
async fn fails_later(sb: &RunningSandbox, rx: &Receiver, m: &OutboundMessage, code: i64) {
    let r = client(sb).send_message(&number_id(sb), m).await.unwrap();
    let wamid = r.wamid().unwrap().to_owned();
    let posts = rx.wait_for(|p| !statuses_of(p, &wamid).is_empty()).await;
    // Give a wrong `sent` the time to show up.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let vs = statuses_of(&rx.posts(), &wamid);
    assert_eq!(vs.len(), 1, "only a failed status: {vs:#?}");
    let (v, s) = (&vs[0], &vs[0]["statuses"][0]);
    assert_eq!(s["status"], "failed");
    assert!(
        v.get("contacts").is_none() && s.get("pricing").is_none(),
        "{v}"
    );
    let e = &s["errors"][0];
    assert_eq!(e["code"], code, "{e}");
    assert_eq!(e["message"], e["title"]);
    assert_eq!(
        e["href"],
        "/documentation/business-messaging/whatsapp/support/error-codes"
    );
    assert!(e["error_data"]["details"].is_string());
    // Sent to a phone: the phone is there, the BSUID is not.
    assert_eq!(s["recipient_id"], m.to.as_deref().unwrap());
    assert!(s.get("recipient_user_id").is_none());
    let _: WebhookPayload = serde_json::from_value(posts[0].body.clone()).unwrap();
    let log = Control::new(sb).log().await;
    let rec = log["sends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["wamid"] == wamid.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (rec["outcome"].as_str(), rec["fails_with"].as_i64()),
        (Some("accepted"), Some(code))
    );
}

fn image(to: &str, source: MediaSource) -> OutboundMessage {
    OutboundMessage::new(
        to,
        OutboundContent::Image(Media {
            source,
            caption: None,
            filename: None,
        }),
    )
}

#[tokio::test]
async fn recipient_failures_come_by_webhook() {
    let (sb, rx) = setup().await;
    let ctl = Control::new(&sb);
    ctl.set_user("15550501", json!({"not_on_whatsapp": true}))
        .await;
    fails_later(&sb, &rx, &template("15550501", "hello_world", &[]), 131026).await;
    fails_later(
        &sb,
        &rx,
        &OutboundMessage::text("15550502", "no window"),
        131047,
    )
    .await;
    ctl.set_user("15550503", json!({"stopped_marketing": true}))
        .await;
    fails_later(
        &sb,
        &rx,
        &template("15550503", "summer_sale", &["Bo"]),
        131050,
    )
    .await;
    ctl.set_user("15550504", json!({"marketing_limited": true}))
        .await;
    fails_later(
        &sb,
        &rx,
        &template("15550504", "summer_sale", &["Bo"]),
        131049,
    )
    .await;
}

#[tokio::test]
async fn media_that_cannot_be_fetched_fails_with_131053() {
    let (sb, rx) = setup().await;
    let ctl = Control::new(&sb);
    ctl.inbound("15550505", "open the window").await;
    fails_later(
        &sb,
        &rx,
        &image("15550505", MediaSource::Id("4242".into())),
        131053,
    )
    .await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/gone.jpg", closed.local_addr().unwrap());
    drop(closed);
    fails_later(
        &sb,
        &rx,
        &image("15550505", MediaSource::Link(dead)),
        131053,
    )
    .await;
    // A link that answers 200 is delivered.
    let app = Router::new().route("/cat.jpg", get(|| async { "jpeg bytes" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let link = format!("http://{}/cat.jpg", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let r = client(&sb)
        .send_message(&number_id(&sb), &image("15550505", MediaSource::Link(link)))
        .await
        .unwrap();
    let wamid = r.wamid().unwrap().to_owned();
    let posts = rx.wait_for(|p| statuses_of(p, &wamid).len() >= 3).await;
    let kinds: Vec<Value> = statuses_of(&posts, &wamid)
        .iter()
        .map(|v| v["statuses"][0]["status"].clone())
        .collect();
    assert_eq!(kinds, ["sent", "delivered", "read"]);
}

#[tokio::test]
async fn sync_errors_setting_keeps_the_old_answers() {
    let mut c = SandboxConfig::default();
    c.webhooks.enabled = false;
    c.api.sync_errors = true;
    let sb = start(c).await;
    let err = client(&sb)
        .send_message(
            &number_id(&sb),
            &image("15550506", MediaSource::Id("4242".into())),
        )
        .await
        .unwrap_err();
    assert_eq!(err.meta().unwrap().code, 131047, "no window comes first");
    Control::new(&sb).inbound("15550506", "hi").await;
    let err = client(&sb)
        .send_message(
            &number_id(&sb),
            &image("15550506", MediaSource::Id("4242".into())),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.meta().unwrap().code, err.status()),
        (131053, Some(400))
    );
}
