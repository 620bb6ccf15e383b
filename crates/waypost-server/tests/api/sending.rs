//! Sending end to end through the real server and the sandbox: idempotent
//! retries, and templates outside the 24-hour window checked against their
//! stored definition.

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::helpers::assert_problem;
use crate::messaging_fixture::{Fixture, fixture};
use crate::on_both_backends;

const CUSTOMER: &str = "4915123456789";

impl Fixture {
    async fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self
            .app
            .client
            .post(format!("{}{path}", self.app.address))
            .bearer_auth(&self.key)
            .json(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    async fn get_json(&self, path: &str) -> Value {
        self.app
            .client
            .get(format!("{}{path}", self.app.address))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

async fn idempotent_retries_return_the_first_answer(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let body = json!({"channel_id": f.channel.id, "to": format!("+{CUSTOMER}"), "type": "text",
        "text": {"body": "Your order ships today"}});
    let p = assert_problem(f.post("/v1/messages", &body, &[]).await, 422).await;
    assert_eq!(p["type"], "https://waypost.dev/problems/outside-window");
    f.open_window(CUSTOMER).await;
    let key = [("idempotency-key", "order-42")];
    let first = f.post("/v1/messages", &body, &key).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["status"], "queued");
    let id = first["id"].as_str().unwrap().to_owned();
    // Same key and body: the same answer, marked as a replay; nothing new is queued.
    let again = f.post("/v1/messages", &body, &key).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], id.as_str());
    // Same key, other body: refused.
    let mut other = body.clone();
    other["text"]["body"] = json!("something else");
    let p = assert_problem(f.post("/v1/messages", &other, &key).await, 422).await;
    assert_eq!(
        p["type"],
        "https://waypost.dev/problems/idempotency-key-reused"
    );
    let outbound = f.get_json("/v1/messages?direction=outbound").await;
    assert_eq!(outbound["data"].as_array().unwrap().len(), 1);
    // Handed to the provider exactly once, with the history and events to show it.
    f.wait_status(&id, &["sent", "delivered", "read"]).await;
    assert_eq!(f.sends_of(&id).await.len(), 1);
    let view = f.get_json(&format!("/v1/messages/{id}")).await;
    let history: Vec<&str> = view["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history[0], "queued");
    assert!(history.contains(&"sent"), "{history:?}");
    let types = f.event_types().await;
    for t in ["message.received", "message.queued", "message.sent"] {
        assert!(types.iter().any(|e| e == t), "{t} missing from {types:?}");
    }

    // Concurrent first requests with one key (written in one batch or not):
    // one message, one answer.
    let burst = [("idempotency-key", "burst-7")];
    let answers =
        futures_util::future::join_all((0..8).map(|_| f.post("/v1/messages", &body, &burst))).await;
    let mut ids = std::collections::HashSet::new();
    for a in answers {
        assert_eq!(a.status(), 202);
        ids.insert(
            a.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(ids.len(), 1, "one message for one key: {ids:?}");
    let outbound = f.get_json("/v1/messages?direction=outbound").await;
    assert_eq!(outbound["data"].as_array().unwrap().len(), 2);

    // A retry of an accepted request is answered as then, even where the same
    // request would now be refused (the contact was restricted since).
    let contact = view["contact_id"].as_str().unwrap().to_owned();
    let res = f
        .app
        .client
        .patch(format!("{}/v1/contacts/{contact}", f.app.address))
        .bearer_auth(&f.key)
        .json(&json!({"restricted": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let again = f.post("/v1/messages", &body, &key).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], id.as_str());
    let p = assert_problem(
        f.post("/v1/messages", &body, &[("idempotency-key", "fresh-1")])
            .await,
        422,
    )
    .await;
    assert_eq!(
        p["type"],
        "https://waypost.dev/problems/recipient-restricted"
    );

    // After a day the key is forgotten: reusing it with another body is a new request.
    f.app.clock.advance(chrono::Duration::hours(25));
    let res = f
        .app
        .client
        .patch(format!("{}/v1/contacts/{contact}", f.app.address))
        .bearer_auth(&f.key)
        .json(&json!({"restricted": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    f.open_window(CUSTOMER).await;
    let reused = f.post("/v1/messages", &other, &key).await;
    assert_eq!(reused.status(), 202);
    assert!(reused.headers().get("idempotent-replayed").is_none());
    assert_ne!(reused.json::<Value>().await.unwrap()["id"], id.as_str());
}

async fn templates_go_outside_the_window_with_the_right_parameters(backend: Backend) {
    let Some(f) = fixture(
        backend,
        |_| {},
        |s| {
            // Approved below, by the test: a timed review raced the first send on a busy machine.
            s.webhooks.template_review_ms = 600_000;
            s.webhooks.template_reject_rate = 0.0;
        },
    )
    .await
    else {
        return;
    };
    let template = json!({"name": "order_shipped", "language": "en_US", "category": "utility",
        "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped.",
            "example": {"body_text": [["Ana", "1042"]]}}]});
    let created = f.post("/v1/templates", &template, &[]).await;
    assert_eq!(created.status(), 201);
    let created_json: Value = created.json().await.unwrap();
    let send = |params: Vec<&str>| {
        json!({"channel_id": f.channel.id, "to": format!("+{CUSTOMER}"), "type": "template",
            "template": {"name": "order_shipped", "language": {"code": "en_US"},
                "components": [{"type": "body", "parameters":
                    params.iter().map(|p| json!({"type": "text", "text": p})).collect::<Vec<_>>()}]}})
    };
    // Until the provider approves it, the template cannot be sent.
    let p = assert_problem(
        f.post("/v1/messages", &send(vec!["Ana", "1042"]), &[])
            .await,
        422,
    )
    .await;
    assert_eq!(
        p["type"],
        "https://waypost.dev/problems/template-not-approved"
    );
    // The sandbox approves it and says so by webhook.
    let provider_id = created_json["provider_id"].as_str().unwrap().to_owned();
    let res = f
        .app
        .client
        .put(format!(
            "{}/_sandbox/templates/{provider_id}/status",
            f.sandbox.base_url()
        ))
        .bearer_auth(f.sandbox.control_token())
        .json(&json!({"status": "APPROVED", "reason": "NONE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut approved = false;
    for _ in 0..300 {
        let list = f.get_json("/v1/templates").await;
        if list["data"][0]["status"] == "APPROVED" {
            approved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(approved, "template never approved");
    let p = assert_problem(f.post("/v1/messages", &send(vec!["Ana"]), &[]).await, 422).await;
    assert_eq!(
        p["type"],
        "https://waypost.dev/problems/template-parameters"
    );
    assert!(p["detail"].as_str().unwrap().contains("takes 2"));
    // No message from the customer, yet the approved template is accepted and sent.
    let res = f
        .post("/v1/messages", &send(vec!["Ana", "1042"]), &[])
        .await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sent = f.wait_status(&id, &["sent", "delivered", "read"]).await;
    assert_eq!(sent.template_name.as_deref(), Some("order_shipped"));
    assert_eq!(sent.category.as_deref(), Some("utility"));
    // The send answer's `message_status` is kept and shown.
    assert_eq!(sent.provider_acceptance.as_deref(), Some("accepted"));
    let shown = f.get_json(&format!("/v1/messages/{id}")).await;
    assert_eq!(shown["provider_acceptance"], "accepted", "{shown}");
}

const SMISHING: &str = "URGENT: your parcel is held at customs. Pay the 1.99 fee now at http://paypa1-secure-login.top/verify or it will be returned";

async fn the_shield_flags_inbound_and_blocks_outbound_by_policy(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let wamid = f.inject(CUSTOMER, SMISHING).await;
    let row = f.wait_inbound(&wamid).await;
    let mut label = None;
    for _ in 0..100 {
        label = f.message(&row.id).await.shield_label;
        if label.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        label.as_deref(),
        Some("smishing"),
        "inbound smishing not flagged"
    );
    assert!(f.event_types().await.iter().any(|t| t == "message.flagged"));
    // Outbound: `flag` accepts and marks, `block` refuses with the reason.
    let body = json!({"channel_id": f.channel.id, "to": format!("+{CUSTOMER}"), "type": "text", "text": {"body": SMISHING}});
    let res = f.post("/v1/messages", &body, &[]).await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        f.message(&id).await.shield_label.as_deref(),
        Some("smishing")
    );
    let ws = f.ws.to_string();
    f.app
        .state
        .store
        .update_messaging_settings(
            &ws,
            &waypost_store::messaging::MessagingSettings {
                content_retention: "none".parse().unwrap(),
                shield_policy: "block".parse().unwrap(),
            },
            waypost_core::NewAuditEvent::new(
                Some(f.ws),
                waypost_core::Actor::System,
                "workspace.settings_changed",
            ),
        )
        .await
        .unwrap();
    // Written behind the node's back (as another node would): its next poll
    // of the cache generation sees the change.
    f.app.state.lookups.refresh().await.unwrap();
    let p = assert_problem(f.post("/v1/messages", &body, &[]).await, 422).await;
    assert_eq!(p["type"], "https://waypost.dev/problems/shield-blocked");
    assert!(!p["reasons"].as_array().unwrap().is_empty(), "{p}");
    assert!(
        !p["detail"].as_str().unwrap().contains("paypa1"),
        "the detail must not echo content"
    );
    // Ordinary text still goes through.
    let ok = json!({"channel_id": f.channel.id, "to": format!("+{CUSTOMER}"), "type": "text", "text": {"body": "Your order 1042 ships tomorrow."}});
    assert_eq!(f.post("/v1/messages", &ok, &[]).await.status(), 202);
}

on_both_backends!(
    the_shield_flags_inbound_and_blocks_outbound_by_policy,
    idempotent_retries_return_the_first_answer,
    templates_go_outside_the_window_with_the_right_parameters,
);
