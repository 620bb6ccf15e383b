//! Pricing from status webhooks (issue #16), in both of the provider's shapes:
//! per message (`PMP` with `type`, what the sandbox sends) and conversation-based
//! (`CBP`, older webhooks). Stored per message and shown by `GET /v1/messages/{id}`.

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::bsuid::get;
use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;

on_both_backends!(pricing_is_stored_in_both_shapes_and_shown_by_the_api);

async fn pricing_through_the_api(f: &Fixture, id: &str) -> Value {
    let (status, m) = get(f, &f.key, &format!("/v1/messages/{id}")).await;
    assert_eq!(status, 200, "{m}");
    assert!(
        m.get("pricing").is_some(),
        "GET shows pricing, even null: {m}"
    );
    m["pricing"].clone()
}

async fn pricing_is_stored_in_both_shapes_and_shown_by_the_api(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    // An inbound message has no price.
    let wamid = f.inject(USER, "hi").await;
    let inbound = f.wait_inbound(&wamid).await;
    assert_eq!(pricing_through_the_api(&f, &inbound.id).await, Value::Null);

    f.open_window(USER).await;
    let pmp = f.send_ok(USER, "per message").await;
    f.wait_status(&pmp, &["read"]).await;
    let store = &f.app.state.store;
    // Each status is its own webhook and they may land in any order: the one
    // that carries pricing can come after `read`.
    let mut p = None;
    for _ in 0..200 {
        p = store.message_pricing(&pmp).await.unwrap();
        if p.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let p = p.expect("the pricing of a sent message is stored within 10 s");
    assert_eq!(p.pricing_model.as_deref(), Some("PMP"));
    assert_eq!(p.pricing_type.as_deref(), Some("free_customer_service"));
    assert_eq!(p.pricing_category.as_deref(), Some("service"));
    assert_eq!(p.billable, Some(false));
    assert_eq!(
        pricing_through_the_api(&f, &pmp).await,
        json!({"billable": false, "pricing_model": "PMP", "category": "service",
            "type": "free_customer_service"})
    );

    // The conversation-based shape of older webhooks.
    let cbp = f.send_ok(USER, "per conversation").await;
    let wamid = f
        .wait_status(&cbp, &["sent", "delivered", "read"])
        .await
        .provider_message_id
        .unwrap();
    let body = f.messages_body(json!({"statuses": [{"id": wamid, "status": "read",
        "timestamp": "1764230100", "recipient_id": USER,
        "conversation": {"id": "c1", "origin": {"type": "utility"}},
        "pricing": {"billable": true, "pricing_model": "CBP", "category": "utility"}}]}));
    // Let the sandbox's own statuses land first; this one is the latest report.
    f.wait_status(&cbp, &["read"]).await;
    assert_eq!(f.post_webhook(&body, None).await.status(), 200);
    let p = store.message_pricing(&cbp).await.unwrap().unwrap();
    assert_eq!(p.pricing_model.as_deref(), Some("CBP"));
    assert_eq!(p.pricing_type, None);
    assert_eq!(p.pricing_category.as_deref(), Some("utility"));
    assert_eq!(p.billable, Some(true));
    assert_eq!(
        pricing_through_the_api(&f, &cbp).await,
        json!({"billable": true, "pricing_model": "CBP", "category": "utility", "type": null})
    );

    // Lists stay one query: pricing is on the single message only.
    let (_, page) = get(&f, &f.key, "/v1/messages").await;
    assert!(page["data"][0].get("pricing").is_none(), "{page}");
}
