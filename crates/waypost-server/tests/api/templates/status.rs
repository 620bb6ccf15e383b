//! Review status from the provider: webhooks and the periodic sync, each
//! change recorded once with its `template.status_changed` event.

use serde_json::json;
use tokio_util::sync::CancellationToken;
use waypost_store::Backend;

use super::*;
use crate::on_both_backends;

on_both_backends!(
    status_webhooks_apply_once_with_reason,
    sync_applies_provider_status_changes_once,
);

async fn status_webhooks_apply_once_with_reason(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let a = f.create_ok("order_shipped").await;
    let b = f.create_ok("welcome").await;
    let channel = f.channel().await;
    f.provider_status(a["provider_id"].as_str().unwrap(), "APPROVED", "NONE")
        .await;
    let approve = status_value(&a, "APPROVED", "NONE");
    waypost_server::templates::on_status_webhook(&f.app.state, &channel, &approve)
        .await
        .unwrap();
    // Meta delivers at least once: the duplicate changes nothing.
    waypost_server::templates::on_status_webhook(&f.app.state, &channel, &approve)
        .await
        .unwrap();
    let got = f
        .get_json(&format!("/v1/templates/{}", a["id"].as_str().unwrap()))
        .await;
    assert_eq!(got["status"], "APPROVED");
    assert!(got["rejection_reason"].is_null());

    let reject = status_value(&b, "REJECTED", "INVALID_FORMAT");
    waypost_server::templates::on_status_webhook(&f.app.state, &channel, &reject)
        .await
        .unwrap();
    let got = f
        .get_json(&format!("/v1/templates/{}", b["id"].as_str().unwrap()))
        .await;
    assert_eq!(got["status"], "REJECTED");
    assert_eq!(got["rejection_reason"], "INVALID_FORMAT");

    // A template Waypost does not manage, and a malformed value.
    let mut foreign = status_value(&a, "PAUSED", "NONE");
    foreign["message_template_name"] = json!("hello_world");
    waypost_server::templates::on_status_webhook(&f.app.state, &channel, &foreign)
        .await
        .unwrap();
    assert!(
        waypost_server::templates::on_status_webhook(&f.app.state, &channel, &json!({"event": 5}))
            .await
            .is_err()
    );

    let events = f.status_events().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["template_id"], a["id"]);
    assert_eq!(events[0]["previous_status"], "PENDING");
    assert_eq!(events[0]["status"], "APPROVED");
    assert_eq!(events[1]["status"], "REJECTED");
    assert_eq!(events[1]["rejection_reason"], "INVALID_FORMAT");
    let approved = f.get_json("/v1/templates?status=APPROVED").await;
    assert_eq!(approved["data"].as_array().unwrap().len(), 1);
}

async fn sync_applies_provider_status_changes_once(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let a = f.create_ok("order_shipped").await;
    let b = f.create_ok("welcome").await;
    f.provider_status(a["provider_id"].as_str().unwrap(), "APPROVED", "NONE")
        .await;
    f.provider_status(b["provider_id"].as_str().unwrap(), "PAUSED", "NONE")
        .await;
    let token = CancellationToken::new();
    let changed = waypost_server::templates::sync_once(&f.app.state, &token)
        .await
        .unwrap();
    assert_eq!(changed, 2);
    assert_eq!(
        waypost_server::templates::sync_once(&f.app.state, &token)
            .await
            .unwrap(),
        0
    );
    let got = f
        .get_json(&format!("/v1/templates/{}", b["id"].as_str().unwrap()))
        .await;
    assert_eq!(got["status"], "PAUSED");

    // The webhook for a change the sync already applied records nothing more.
    let channel = f.channel().await;
    waypost_server::templates::on_status_webhook(
        &f.app.state,
        &channel,
        &status_value(&a, "APPROVED", "NONE"),
    )
    .await
    .unwrap();
    let events = f.status_events().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| e["previous_status"] == "PENDING"));
}
