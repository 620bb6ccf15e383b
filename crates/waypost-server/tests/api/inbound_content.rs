//! What customers write reaches the business: every inbound kind arrives in
//! `message.received` and in the messages API with its fields, and with
//! retention `none` nothing of it stays at rest once delivered.

use std::time::Duration;

use serde_json::{Value, json};
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_store::Backend;
use waypost_store::messaging::MessagingSettings;

use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;
use crate::webhooks::Receiver;

on_both_backends!(
    every_inbound_kind_reaches_the_event_and_the_api,
    retention_none_leaves_no_content_at_rest_after_delivery,
);

fn open_receivers(c: &mut waypost_server::config::Config) {
    c.webhook_allow_http = true;
    c.webhook_allow_private_targets = true;
    c.webhook_poll_interval_ms = 20;
    c.event_content_hold_secs = 0;
}

impl Fixture {
    /// A receiver subscribed to `message.received` only.
    async fn received_events_receiver(&self) -> Receiver {
        let receiver = Receiver::start(200).await;
        let res = self
            .app
            .client
            .post(format!("{}/v1/webhook-endpoints", self.app.address))
            .bearer_auth(&self.key)
            .json(&json!({"url": receiver.url, "event_types": ["message.received"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        receiver
    }

    async fn retain_days(&self, days: u32) {
        let settings = MessagingSettings {
            content_retention: format!("days:{days}").parse().unwrap(),
            shield_policy: "flag".parse().unwrap(),
        };
        let audit = NewAuditEvent::new(Some(self.ws), Actor::System, "workspace.updated");
        self.app
            .state
            .store
            .update_messaging_settings(&self.ws.to_string(), &settings, audit)
            .await
            .unwrap();
        self.app.state.lookups.refresh().await.unwrap();
    }

    /// `data` of each delivered `message.received`, by provider id.
    async fn delivered_by_wamid(&self, receiver: &Receiver, n: usize) -> Vec<(String, Value)> {
        receiver
            .wait_for(n)
            .await
            .into_iter()
            .map(|r| serde_json::from_str::<Value>(&r.body).unwrap())
            .filter(|v| v["type"] == "message.received")
            .map(|v| {
                (
                    v["data"]["wamid"].as_str().unwrap().to_owned(),
                    v["data"].clone(),
                )
            })
            .collect()
    }
}

/// One Cloud API inbound message of each kind, as Meta documents them.
fn every_kind(reply_to: &str) -> Vec<Value> {
    let m = |id: &str, body: Value| {
        let mut v = json!({"from": USER, "id": id, "timestamp": "1764230000"});
        v.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        v
    };
    vec![
        m(
            "wamid.K.text",
            json!({"type": "text", "text": {"body": "Hi, is my order on its way?"}}),
        ),
        m(
            "wamid.K.image",
            json!({"type": "image", "image": {"caption": "the parcel", "mime_type": "image/jpeg",
                "sha256": "IMG+sha=", "id": "1001"}}),
        ),
        m(
            "wamid.K.video",
            json!({"type": "video", "video": {"mime_type": "video/mp4", "sha256": "VID=", "id": "1002"}}),
        ),
        m(
            "wamid.K.audio",
            json!({"type": "audio", "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "AUD=",
                "id": "1003", "voice": true}}),
        ),
        m(
            "wamid.K.document",
            json!({"type": "document", "document": {"caption": "invoice", "filename": "invoice-77.pdf",
                "mime_type": "application/pdf", "sha256": "DOC=", "id": "1004"}}),
        ),
        m(
            "wamid.K.sticker",
            json!({"type": "sticker", "sticker": {"mime_type": "image/webp", "sha256": "STK=", "id": "1005",
                "animated": false}}),
        ),
        m(
            "wamid.K.location",
            json!({"type": "location", "location": {"latitude": 52.5200066, "longitude": 13.404954,
                "name": "Parcel Shop Mitte", "address": "Alexanderplatz 1, Berlin"}}),
        ),
        m(
            "wamid.K.contacts",
            json!({"type": "contacts", "contacts": [{"name": {"formatted_name": "Zebulon Quartz",
                "first_name": "Zebulon"}, "phones": [{"phone": "+1 555 010 9999", "type": "CELL"}]}]}),
        ),
        m(
            "wamid.K.button_reply",
            json!({"type": "interactive", "interactive": {"type": "button_reply",
                "button_reply": {"id": "track-yes", "title": "Yes, track it"}}}),
        ),
        m(
            "wamid.K.list_reply",
            json!({"type": "interactive", "interactive": {"type": "list_reply",
                "list_reply": {"id": "slot-2", "title": "Tomorrow 9-12", "description": "Morning slot"}}}),
        ),
        m(
            "wamid.K.button",
            json!({"type": "button", "button": {"payload": "RESCHEDULE", "text": "Reschedule"}}),
        ),
        m(
            "wamid.K.reaction",
            json!({"type": "reaction", "reaction": {"message_id": reply_to, "emoji": "\u{1F44D}"}}),
        ),
        m(
            "wamid.K.reply",
            json!({"type": "text", "text": {"body": "Thanks for that"},
                "context": {"from": "15550001111", "id": reply_to}}),
        ),
        m(
            "wamid.K.referral",
            json!({"type": "text", "text": {"body": "I saw your ad"},
                "referral": {"source_url": "https://fb.me/ad1", "source_id": "ADID9", "source_type": "ad",
                    "headline": "Spring sale", "body": "20% off", "media_type": "image",
                    "image_url": "https://cdn.example/ad.jpg", "ctwa_clid": "CLID42"}}),
        ),
        m(
            "wamid.K.order",
            json!({"type": "order", "order": {"catalog_id": "CAT1", "text": "please hurry",
                "product_items": [{"product_retailer_id": "SKU-1", "quantity": 2, "item_price": 9.5,
                    "currency": "EUR"}]}}),
        ),
        m(
            "wamid.K.system",
            json!({"type": "system", "system": {"body": format!("User {USER} changed from {USER} to 15550002222"),
                "wa_id": "15550002222", "type": "user_changed_number"}}),
        ),
        m(
            "wamid.K.unsupported",
            json!({"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}],
                "unsupported": {"type": "poll"}}),
        ),
    ]
}

async fn every_inbound_kind_reaches_the_event_and_the_api(backend: Backend) {
    let Some(f) = fixture(backend, open_receivers, |_| {}).await else {
        return;
    };
    f.retain_days(7).await;
    f.open_window(USER).await;
    let sent = f.send_ok(USER, "Your order ships today").await;
    let sent_wamid = f
        .wait_status(&sent, &["sent", "delivered", "read"])
        .await
        .provider_message_id
        .unwrap();
    let receiver = f.received_events_receiver().await;
    let kinds = every_kind(&sent_wamid);
    let res = f
        .post_webhook(&f.messages_body(json!({"messages": kinds})), None)
        .await;
    assert_eq!(res.status(), 200);
    let got = f.delivered_by_wamid(&receiver, kinds.len()).await;
    let data = |wamid: &str| -> Value {
        got.iter()
            .find(|(w, _)| w == wamid)
            .unwrap_or_else(|| panic!("no message.received for {wamid}"))
            .1
            .clone()
    };
    let text = data("wamid.K.text");
    assert_eq!(text["type"], "text");
    assert_eq!(text["text"]["body"], "Hi, is my order on its way?");
    assert_eq!(
        text["from"]["phone"],
        json!(waypost_core::redact::mask_phone(&format!("+{USER}")))
    );
    assert!(text.get("content_state").is_none(), "{text}");
    let image = data("wamid.K.image");
    assert_eq!(image["image"]["caption"], "the parcel");
    assert_eq!(image["image"]["mime_type"], "image/jpeg");
    assert_eq!(image["image"]["sha256"], "IMG+sha=");
    assert!(
        image["image"]["id"].as_str().unwrap().starts_with("med_"),
        "the Waypost media id to fetch it: {image}"
    );
    assert_eq!(data("wamid.K.video")["video"]["mime_type"], "video/mp4");
    assert_eq!(data("wamid.K.audio")["audio"]["voice"], true);
    let document = data("wamid.K.document");
    assert_eq!(document["document"]["filename"], "invoice-77.pdf");
    assert_eq!(document["document"]["caption"], "invoice");
    assert_eq!(
        data("wamid.K.sticker")["sticker"]["mime_type"],
        "image/webp"
    );
    let location = data("wamid.K.location")["location"].clone();
    assert_eq!(location["latitude"], 52.5200066);
    assert_eq!(location["name"], "Parcel Shop Mitte");
    assert_eq!(location["address"], "Alexanderplatz 1, Berlin");
    let card = data("wamid.K.contacts")["contacts"][0].clone();
    assert_eq!(card["name"]["formatted_name"], "Zebulon Quartz");
    assert_eq!(card["phones"][0]["phone"], "+1 555 010 9999");
    let button = data("wamid.K.button_reply")["interactive"].clone();
    assert_eq!(
        button,
        json!({"type": "button_reply", "button_reply": {"id": "track-yes", "title": "Yes, track it"}})
    );
    let list = data("wamid.K.list_reply")["interactive"].clone();
    assert_eq!(list["list_reply"]["description"], "Morning slot");
    assert_eq!(
        data("wamid.K.button")["button"],
        json!({"text": "Reschedule", "payload": "RESCHEDULE"})
    );
    let reaction = data("wamid.K.reaction")["reaction"].clone();
    assert_eq!(
        reaction,
        json!({"message_id": sent, "wamid": sent_wamid, "emoji": "\u{1F44D}"})
    );
    let reply = data("wamid.K.reply");
    assert_eq!(reply["context"]["message_id"], json!(sent));
    assert_eq!(reply["context"]["wamid"], json!(sent_wamid));
    let referral = data("wamid.K.referral")["referral"].clone();
    assert_eq!(referral["source_type"], "ad");
    assert_eq!(referral["ctwa_clid"], "CLID42");
    assert_eq!(referral["headline"], "Spring sale");
    let order = data("wamid.K.order")["order"].clone();
    assert_eq!(order["product_items"][0]["quantity"], 2);
    assert_eq!(order["catalog_id"], "CAT1");
    let system = data("wamid.K.system")["system"].clone();
    assert_eq!(system["type"], "user_changed_number");
    assert_eq!(
        system["wa_id"],
        json!(waypost_core::redact::mask_phone("+15550002222"))
    );
    let system_text = system.to_string();
    assert!(
        !system_text.contains("15550002222") && !system_text.contains(USER),
        "numbers in system content are masked: {system_text}"
    );
    assert_eq!(
        data("wamid.K.unsupported")["unsupported"],
        json!({"kind": "poll", "error_codes": [131051]})
    );

    // The messages API shows the same content while it is retained.
    for (wamid, event) in &got {
        let id = event["message_id"].as_str().unwrap();
        let res = f
            .app
            .client
            .get(format!("{}/v1/messages/{id}", f.app.address))
            .bearer_auth(&f.key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let view: Value = res.json().await.unwrap();
        let kind = event["type"].as_str().unwrap();
        assert_eq!(view["content"][kind], event[kind], "{wamid}");
        assert_eq!(view["content_state"], Value::Null, "{wamid}");
    }
    // The outbound message shows what was sent, without its addressing.
    let res = f
        .app
        .client
        .get(format!("{}/v1/messages/{sent}", f.app.address))
        .bearer_auth(&f.key)
        .send()
        .await
        .unwrap();
    let view: Value = res.json().await.unwrap();
    assert_eq!(
        view["content"],
        json!({"text": {"body": "Your order ships today"}})
    );
}

async fn retention_none_leaves_no_content_at_rest_after_delivery(backend: Backend) {
    let Some(f) = fixture(backend, open_receivers, |_| {}).await else {
        return;
    };
    let receiver = f.received_events_receiver().await;
    let secrets = [
        "Hi, is my order on its way? 7731",
        "caption of the receipt 5521",
        "Zebulon Quartz",
        "Parcel Shop Mitte 4410",
        "Alexanderplatz 99",
        "52.5200066",
    ];
    let body = json!({"messages": [
        {"from": USER, "id": "wamid.N.1", "timestamp": "1764230000", "type": "text",
            "text": {"body": secrets[0]}},
        {"from": USER, "id": "wamid.N.2", "timestamp": "1764230001", "type": "image",
            "image": {"caption": secrets[1], "mime_type": "image/jpeg", "sha256": "X=", "id": "2001"}},
        {"from": USER, "id": "wamid.N.3", "timestamp": "1764230002", "type": "contacts",
            "contacts": [{"name": {"formatted_name": secrets[2]}}]},
        {"from": USER, "id": "wamid.N.4", "timestamp": "1764230003", "type": "location",
            "location": {"latitude": 52.5200066, "longitude": 13.404954, "name": secrets[3], "address": secrets[4]}},
    ]});
    assert_eq!(
        f.post_webhook(&f.messages_body(body), None).await.status(),
        200
    );
    let got = f.delivered_by_wamid(&receiver, 4).await;
    let delivered = serde_json::to_string(&got).unwrap();
    for s in &secrets[..5] {
        assert!(
            delivered.contains(s),
            "the webhook carried `{s}`: {delivered}"
        );
    }
    // Once delivered, the held content goes.
    let store = &f.app.state.store;
    let mut held = usize::MAX;
    for _ in 0..200 {
        let events = store
            .customer_events_after(&f.ws.to_string(), 0, 1000)
            .await
            .unwrap();
        held = events.iter().filter(|e| e.content.is_some()).count();
        if held == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(held, 0, "content still held after delivery");
    // Nothing in the messages either, and readers are told why.
    let (_, event) = &got[0];
    let res = f
        .app
        .client
        .get(format!(
            "{}/v1/messages/{}",
            f.app.address,
            event["message_id"].as_str().unwrap()
        ))
        .bearer_auth(&f.key)
        .send()
        .await
        .unwrap();
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["content"], Value::Null);
    assert_eq!(view["content_state"], "not_retained");
    let at_rest = database_bytes(&f, backend);
    for s in secrets {
        assert!(
            !at_rest.windows(s.len()).any(|w| w == s.as_bytes()),
            "`{s}` found at rest"
        );
    }
}

/// The database as it lies on disk: SQLite's file and WAL, or a PostgreSQL dump.
fn database_bytes(f: &Fixture, backend: Backend) -> Vec<u8> {
    let url = f.app.db.url.clone();
    let bytes = match backend {
        Backend::Sqlite => {
            let path = url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap()
                .to_owned();
            let mut bytes = std::fs::read(&path).unwrap();
            if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
                bytes.extend(wal);
            }
            bytes
        }
        Backend::Postgres => {
            let out = std::process::Command::new("pg_dump")
                .arg("--data-only")
                .arg(&url)
                .output()
                .expect("pg_dump runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
    };
    assert!(bytes.len() > 10_000, "read the database");
    bytes
}
