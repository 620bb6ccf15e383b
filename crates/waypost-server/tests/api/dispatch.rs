//! The dispatcher end to end: real server, in-process sandbox with injected
//! faults, messages accepted through `POST /v1/messages`.

use serde_json::json;
use waypost_store::Backend;

use crate::messaging_fixture::{USER, fixture};
use crate::on_both_backends;

on_both_backends!(
    injected_5xx_and_timeouts_end_sent_once,
    permanent_error_fails_at_once_with_code,
    lost_responses_produce_no_duplicate,
    statuses_arrive_in_order_and_end_read,
    channel_leases_move_only_when_expired,
);

const DELIVERED: &[&str] = &["sent", "delivered", "read"];

async fn injected_5xx_and_timeouts_end_sent_once(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    f.open_window(USER).await;
    f.set_faults(json!({"error_5xx": 0.4, "timeout": 0.2}))
        .await;
    // Six messages at least, more until a fault was drawn (each send draws
    // none with probability 0.4: six in a row came once in a CI run).
    let mut ids = Vec::new();
    let mut log = serde_json::Value::Null;
    for i in 0..30 {
        ids.push(f.send_ok(USER, &format!("attempt {i}")).await);
        if ids.len() < 6 {
            continue;
        }
        for id in &ids {
            f.wait_status(id, DELIVERED).await;
        }
        log = f.sandbox_log().await;
        if log["counters"]["fault_5xx"].as_u64().unwrap()
            + log["counters"]["fault_timeout"].as_u64().unwrap()
            > 0
        {
            break;
        }
    }
    assert!(
        log["counters"]["fault_5xx"].as_u64().unwrap()
            + log["counters"]["fault_timeout"].as_u64().unwrap()
            > 0,
        "faults were injected: {}",
        log["counters"]
    );
    for id in &ids {
        let sends = f.sends_of(id).await;
        let accepted = sends
            .iter()
            .filter(|o| *o == "accepted" || *o == "response_lost")
            .count();
        assert_eq!(accepted, 1, "{id} accepted once, attempts: {sends:?}");
        let history: Vec<String> = f
            .app
            .state
            .store
            .message_statuses(id)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.status)
            .collect();
        assert_eq!(&history[..3], ["queued", "sending", "sent"], "{history:?}");
    }
}

async fn permanent_error_fails_at_once_with_code(backend: Backend) {
    // The synchronous answer (the sandbox's `sync_errors`); bsuid.rs covers the webhook.
    let Some(f) = fixture(backend, |_| {}, |s| s.api.sync_errors = true).await else {
        return;
    };
    f.open_window(USER).await;
    f.set_user(USER, json!({"not_on_whatsapp": true})).await;
    let id = f.send_ok(USER, "are you there?").await;
    let m = f.wait_status(&id, &["failed"]).await;
    assert_eq!(m.error_code, Some(131026));
    assert!(m.error_title.is_some());
    assert_eq!(f.sends_of(&id).await, ["rejected"], "one call, no retry");
    assert!(f.app.state.store.outbox_row(&id).await.unwrap().is_none());
    assert!(f.event_types().await.contains(&"message.failed".to_owned()));
}

async fn lost_responses_produce_no_duplicate(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    f.open_window(USER).await;
    f.set_faults(json!({"response_lost": 0.6})).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(f.send_ok(USER, &format!("lost {i}")).await);
    }
    for id in &ids {
        let m = f.wait_status(id, DELIVERED).await;
        assert!(m.provider_message_id.is_some());
    }
    let log = f.sandbox_log().await;
    assert!(log["counters"]["fault_response_lost"].as_u64().unwrap() > 0);
    for id in &ids {
        let sends = f.sends_of(id).await;
        assert_eq!(
            sends
                .iter()
                .filter(|o| *o == "accepted" || *o == "response_lost")
                .count(),
            1,
            "{id} must reach the provider once: {sends:?}"
        );
    }
}

async fn statuses_arrive_in_order_and_end_read(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    f.open_window(USER).await;
    // Reordered and duplicated webhooks from the sandbox.
    f.set_faults(json!({"webhook_reorder": 0.5, "webhook_duplicate": 0.5}))
        .await;
    let ids = [f.send_ok(USER, "one").await, f.send_ok(USER, "two").await];
    for id in &ids {
        f.wait_status(id, &["delivered", "read"]).await;
    }
    // The sandbox holds a reordered webhook until the next one, so later traffic
    // releases it; keep some coming until each read status is in (a read sent
    // after the last flush could otherwise wait forever).
    for id in &ids {
        for _ in 0..20 {
            if f.message(id).await.status == "read" {
                break;
            }
            f.inject(USER, "flush").await;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        f.wait_status(id, &["read"]).await;
        // Late deliveries settle, then nothing moved back and nothing doubled.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let m = f.message(id).await;
        assert_eq!(m.status, "read");
        let history: Vec<String> = f
            .app
            .state
            .store
            .message_statuses(id)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.status)
            .collect();
        let mut dedup = history.clone();
        dedup.dedup();
        assert_eq!(history, dedup, "no status twice: {history:?}");
        assert_eq!(history.first().map(String::as_str), Some("queued"));
        assert_eq!(history.last().map(String::as_str), Some("read"));
    }
    let events = f.event_types().await;
    for t in ["message.sent", "message.read"] {
        assert_eq!(
            events.iter().filter(|e| *e == t).count(),
            2,
            "{t}: {events:?}"
        );
    }
}

async fn channel_leases_move_only_when_expired(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.dispatch_enabled = false, |_| {}).await else {
        return;
    };
    let store = &f.app.state.store;
    let ch = &f.channel.id;
    let now = chrono::Utc::now();
    let later = now + chrono::Duration::seconds(10);
    assert!(
        store
            .acquire_channel_lease(ch, "node_a", now, later)
            .await
            .unwrap()
    );
    assert!(
        !store
            .acquire_channel_lease(ch, "node_b", now, later)
            .await
            .unwrap()
    );
    assert!(
        store
            .acquire_channel_lease(ch, "node_a", now, later)
            .await
            .unwrap(),
        "renewal"
    );
    let after = later + chrono::Duration::seconds(1);
    assert!(
        store
            .acquire_channel_lease(ch, "node_b", after, after + chrono::Duration::seconds(10))
            .await
            .unwrap(),
        "an expired lease moves"
    );
    assert!(
        !store
            .acquire_channel_lease(ch, "node_a", after, later)
            .await
            .unwrap()
    );
}
