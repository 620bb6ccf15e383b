//! Inbound provider webhooks: the verify handshake, signatures, deduplication,
//! monotonic statuses, statuses for unknown ids, opt-out keywords, content
//! retention, and what the database file holds afterwards.

use serde_json::{Value, json};
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_store::Backend;
use waypost_store::dispatch::{SendOutcome, SendResult};
use waypost_store::messaging::MessagingSettings;

use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;

on_both_backends!(
    verify_handshake_echoes_the_challenge_only_for_the_token,
    bad_signature_is_refused_and_nothing_stored,
    duplicated_webhooks_are_processed_once,
    concurrent_webhooks_are_committed_together_and_counted_once,
    statuses_out_of_order_never_move_back,
    unknown_ids_are_kept_and_applied_when_known,
    stop_blocks_the_next_send_and_start_reopens,
    content_is_kept_encrypted_only_when_retained,
);

fn inbound_text(wamid: &str, body: &str) -> Value {
    json!({
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": USER}],
        "messages": [{"from": USER, "id": wamid, "timestamp": "1764230000", "type": "text", "text": {"body": body}}]
    })
}

fn status(wamid: &str, status: &str, ts: u64) -> Value {
    json!({"statuses": [{"id": wamid, "status": status, "timestamp": ts.to_string(), "recipient_id": USER}]})
}

async fn verify_handshake_echoes_the_challenge_only_for_the_token(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.dispatch_enabled = false, |_| {}).await else {
        return;
    };
    let token = f.sandbox.numbers()[0].verify_token.clone();
    let get = |q: String| {
        let url = format!("{}?{q}", f.inbound_url());
        let client = f.app.client.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    let ok = get(format!(
        "hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"
    ))
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let wrong = get("hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1".into()).await;
    assert_eq!(wrong.status(), 403);
    let unknown = f
        .app
        .client
        .get(format!(
            "{}/webhooks/whatsapp/ch_unknown?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1",
            f.app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 403);
    let problem: Value = unknown.json().await.unwrap();
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("/verification-failed"),
        "{problem}"
    );
}

/// A 401 problem document, without what differs per request.
async fn problem_without_ids(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let mut body: Value = res.json().await.unwrap();
    body.as_object_mut().unwrap().remove("request_id");
    body
}

async fn bad_signature_is_refused_and_nothing_stored(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.dispatch_enabled = false, |_| {}).await else {
        return;
    };
    let body = f.messages_body(inbound_text("wamid.BAD1", "hi"));
    let res = f.post_webhook(&body, Some("not-the-app-secret")).await;
    assert_eq!(res.status(), 401);
    let unsigned = f
        .app
        .client
        .post(f.inbound_url())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    // A channel that does not exist answers exactly as a known one with a bad
    // signature: the same status and document, so ids cannot be probed.
    let known = f.post_webhook(&body, Some("not-the-app-secret")).await;
    let known = problem_without_ids(known).await;
    assert!(
        known["type"]
            .as_str()
            .unwrap()
            .ends_with("/invalid-signature"),
        "{known}"
    );
    for id in ["ch_01JUNKNOWNCHANNEL000000000", "nonsense"] {
        let url = format!("{}/webhooks/whatsapp/{id}", f.app.address);
        let res = f.app.client.post(url).json(&body).send().await.unwrap();
        let mut unknown = problem_without_ids(res).await;
        unknown["instance"] = known["instance"].clone();
        assert_eq!(unknown, known);
    }
    let store = &f.app.state.store;
    assert!(
        store
            .message_by_provider_id(&f.channel.id, "wamid.BAD1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .list_contacts(&f.ws.to_string(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(f.event_types().await.is_empty());
    let metrics = f.app.metrics().await.text().await.unwrap();
    assert!(
        metrics.contains("waypost_inbound_signature_failures_total"),
        "counted"
    );
    // The same body, correctly signed, is accepted.
    assert_eq!(f.post_webhook(&body, None).await.status(), 200);
}

async fn duplicated_webhooks_are_processed_once(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.dispatch_enabled = false, |_| {}).await else {
        return;
    };
    let body = f.messages_body(inbound_text("wamid.DUP1", "hello there"));
    for _ in 0..3 {
        assert_eq!(f.post_webhook(&body, None).await.status(), 200);
    }
    let m = f
        .app
        .state
        .store
        .message_by_provider_id(&f.channel.id, "wamid.DUP1")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(
        (m.direction.as_str(), m.status.as_str()),
        ("inbound", "received")
    );
    assert_eq!(m.message_type, "text");
    assert!(m.content.is_none(), "retention is `none` by default");
    let events = f.event_types().await;
    assert_eq!(events, ["message.received"]);
    let contact = f
        .app
        .state
        .store
        .get_contact(&f.ws.to_string(), &m.contact_id)
        .await
        .unwrap();
    assert!(contact.last_inbound_at.is_some(), "the window opened");
}

/// Webhooks arriving together are group-committed: duplicates across and within
/// a commit are dropped, each conversation counts every message as unread, and
/// each customer opens one window.
async fn concurrent_webhooks_are_committed_together_and_counted_once(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.dispatch_enabled = false, |_| {}).await else {
        return;
    };
    let senders = ["4915112340001", "4915112340002", "4915112340003"];
    let body = |sender: &str, i: usize| {
        f.messages_body(json!({
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": sender}],
            "messages": [{"from": sender, "id": format!("wamid.G{sender}{i}"), "timestamp": "1764230000",
                          "type": "text", "text": {"body": format!("question {i}")}}]
        }))
    };
    // Each sender's first message alone, so its contact exists before the burst.
    for s in senders {
        assert_eq!(f.post_webhook(&body(s, 0), None).await.status(), 200);
    }
    // Then nine more each, every one posted twice, all at once.
    let bodies: Vec<Value> = (1..10)
        .flat_map(|i| senders.map(|s| body(s, i)))
        .flat_map(|b| [b.clone(), b])
        .collect();
    let answers =
        futures_util::future::join_all(bodies.iter().map(|b| f.post_webhook(b, None))).await;
    assert!(answers.iter().all(|a| a.status() == 200));
    let store = &f.app.state.store;
    let events = f.event_types().await;
    assert_eq!(
        events.iter().filter(|e| *e == "message.received").count(),
        30,
        "{events:?}"
    );
    let ws = f.ws.to_string();
    let conversations = store
        .list_conversations(&ws, &Default::default(), 10)
        .await
        .unwrap();
    assert_eq!(conversations.len(), 3);
    for c in &conversations {
        assert_eq!(c.unread_count, 10, "{c:?}");
        assert_eq!(c.last_direction, "inbound");
        let contact = store.get_contact(&ws, &c.contact_id).await.unwrap();
        assert!(contact.last_inbound_at.is_some(), "the window opened");
    }
    for s in senders {
        for i in 0..10 {
            let wamid = format!("wamid.G{s}{i}");
            let m = store
                .message_by_provider_id(&f.channel.id, &wamid)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{wamid} stored"));
            let history: Vec<String> = store
                .message_statuses(&m.id)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.status)
                .collect();
            assert_eq!(history, ["received"], "{wamid}");
        }
    }
    let day = f.app.clock_now().format("%Y-%m-%d").to_string();
    let totals = store.usage_totals(&ws, &day, &day, false).await.unwrap();
    let amount = |metric: &str| {
        totals
            .iter()
            .filter(|t| t.metric == metric)
            .map(|t| t.amount)
            .sum::<i64>()
    };
    assert_eq!(amount("conversations.opened"), 3, "{totals:?}");
    assert_eq!(amount("messages.inbound.text"), 30, "{totals:?}");
}

async fn statuses_out_of_order_never_move_back(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |c| c.webhooks.enabled = false).await else {
        return;
    };
    f.open_window_by_webhook().await;
    let id = f.send_ok(USER, "order check").await;
    let m = f.wait_status(&id, &["sent"]).await;
    let wamid = m.provider_message_id.unwrap();
    for s in ["read", "delivered", "sent", "read", "failed"] {
        assert_eq!(
            f.post_webhook(&f.messages_body(status(&wamid, s, 1_764_230_100)), None)
                .await
                .status(),
            200
        );
    }
    let m = f.message(&id).await;
    assert_eq!(m.status, "read");
    let history: Vec<String> = f
        .app
        .state
        .store
        .message_statuses(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.status)
        .collect();
    assert_eq!(history, ["queued", "sending", "sent", "read"]);
}

async fn unknown_ids_are_kept_and_applied_when_known(backend: Backend) {
    let Some(f) = fixture(
        backend,
        |c| c.dispatch_enabled = false,
        |c| c.webhooks.enabled = false,
    )
    .await
    else {
        return;
    };
    f.open_window_by_webhook().await;
    let id = f.send_ok(USER, "early status").await;
    // A status for an id we have not recorded yet, without callback data.
    let body = f.messages_body(status("wamid.EARLY1", "delivered", 1_764_230_100));
    assert_eq!(f.post_webhook(&body, None).await.status(), 200);
    let store = &f.app.state.store;
    assert_eq!(
        store.unmatched_status_count(&f.channel.id).await.unwrap(),
        1
    );
    // The dispatcher's answer arrives afterwards.
    let now = f.app.clock_now();
    let rows = store
        .claim_outbox_batch(
            &f.channel.id,
            "node_t",
            now,
            now + chrono::Duration::seconds(30),
            10,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    store
        .mark_attempts_started(std::slice::from_ref(&id), "node_t", now)
        .await
        .unwrap();
    let ring = f.app.state.keys.current();
    let seal = move |c: &waypost_store::dispatch::StatusChange| {
        waypost_server::dispatch::outcome::status_event(&ring, c, now)
    };
    let results = [SendResult {
        row: rows[0].clone(),
        outcome: SendOutcome::Sent {
            wamid: "wamid.EARLY1".into(),
            acceptance: None,
        },
        at: now,
    }];
    store
        .record_send_results(&results, "node_t", &seal)
        .await
        .unwrap();
    assert_eq!(f.message(&id).await.status, "delivered");
    assert_eq!(
        store.unmatched_status_count(&f.channel.id).await.unwrap(),
        0
    );
    // A status naming our id as callback data reconciles an in-doubt send.
    let id2 = f.send_ok(USER, "in doubt").await;
    let mut s = status("wamid.LOST2", "sent", 1_764_230_200);
    s["statuses"][0]["biz_opaque_callback_data"] = json!(id2);
    assert_eq!(
        f.post_webhook(&f.messages_body(s), None).await.status(),
        200
    );
    let m = f.message(&id2).await;
    assert_eq!(
        (m.status.as_str(), m.provider_message_id.as_deref()),
        ("sent", Some("wamid.LOST2"))
    );
    assert!(
        store.outbox_row(&id2).await.unwrap().is_none(),
        "never resent"
    );
}

async fn stop_blocks_the_next_send_and_start_reopens(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    f.open_window(USER).await;
    let first = f.send_ok(USER, "welcome").await;
    f.wait_status(&first, &["sent", "delivered", "read"]).await;
    let stop = f.inject(USER, "Stop").await;
    let m = f.wait_inbound(&stop).await;
    let contact = f
        .app
        .state
        .store
        .get_contact(&f.ws.to_string(), &m.contact_id)
        .await
        .unwrap();
    assert_eq!(contact.consent_marketing.as_deref(), Some("opted_out"));
    assert_eq!(contact.consent_utility.as_deref(), Some("opted_out"));
    assert_eq!(contact.consent_authentication.as_deref(), Some("opted_out"));
    let history = f
        .app
        .state
        .store
        .consent_history(&f.ws.to_string(), &contact.id)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].source, "inbound_keyword");
    let refused = f.send_text(USER, "one more thing").await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["type"].as_str().unwrap().contains("opted-out"),
        "{problem}"
    );
    assert!(
        f.event_types()
            .await
            .contains(&"contact.opted_out".to_owned())
    );
    let start = f.inject(USER, "START").await;
    f.wait_inbound(&start).await;
    f.send_ok(USER, "welcome back").await;
    assert!(
        f.event_types()
            .await
            .contains(&"contact.opted_in".to_owned())
    );
}

async fn content_is_kept_encrypted_only_when_retained(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let store = &f.app.state.store;
    let settings = MessagingSettings {
        content_retention: "days:7".parse().unwrap(),
        shield_policy: "flag".parse().unwrap(),
    };
    let audit = NewAuditEvent::new(Some(f.ws), Actor::System, "workspace.updated");
    store
        .update_messaging_settings(&f.ws.to_string(), &settings, audit)
        .await
        .unwrap();
    // Written behind the node's back: its next poll of the cache generation sees it.
    f.app.state.lookups.refresh().await.unwrap();
    let wamid = f.inject(USER, "my secret plaintext body 4242").await;
    let m = f.wait_inbound(&wamid).await;
    assert!(m.content.is_some() && m.content_expires_at.is_some());
    let id = f.send_ok(USER, "outbound secret plaintext 4343").await;
    f.wait_status(&id, &["read"]).await;
    // Expiry drops the content.
    let later = f.app.clock_now() + chrono::Duration::days(8);
    assert!(store.purge_expired_content(later, 100).await.unwrap() >= 1);
    assert!(f.message(&m.id).await.content.is_none());
    if backend == Backend::Sqlite {
        assert_no_plaintext(&f).await;
    }
}

/// The SQLite file (and its WAL) holds no phone number, token, secret or content.
async fn assert_no_plaintext(f: &Fixture) {
    let n = &f.sandbox.numbers()[0];
    let url = f.app.db.url.clone();
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
    assert!(bytes.len() > 10_000, "read the database ({path})");
    for needle in [
        USER,
        &n.access_token,
        &n.app_secret,
        &n.verify_token,
        "my secret plaintext body",
        "outbound secret plaintext",
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "plaintext `{needle}` found in the database file"
        );
    }
}

impl Fixture {
    /// Opens the window with a signed webhook of our own (when the sandbox's webhooks are off).
    async fn open_window_by_webhook(&self) {
        // The sandbox keeps its own window; its webhook is off in these tests.
        self.inject(USER, "hello").await;
        let body = self.messages_body(inbound_text("wamid.OPEN1", "hello"));
        assert_eq!(self.post_webhook(&body, None).await.status(), 200);
    }
}
