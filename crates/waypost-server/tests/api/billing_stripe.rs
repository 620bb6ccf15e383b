//! Stripe billing (issue #23) against a local fake Stripe: an owner's
//! Checkout and Portal links; a subscription's lifecycle from checkout to
//! cancellation moving the workspace's plan and status (past due, grace,
//! read-only, paid again, canceled), never deleting data; replayed, stale
//! and badly signed webhooks; and usage reports sent once per day and
//! category even when Stripe's first answer is lost.

use std::time::Duration;

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::billing_quotas::operator_put;
use crate::bsuid::get;
use crate::fake_stripe::{self, FakeStripe, SECRET_KEY, WEBHOOK_SECRET};
use crate::helpers::assert_problem;
use crate::incidents::operator_token;
use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;
use crate::usage::{settle, usage_key};
use crate::users::{PASSWORD, login, member};

on_both_backends!(
    a_subscription_lifecycle_moves_the_plan_and_status,
    replayed_stale_or_badly_signed_webhooks_are_refused,
    usage_is_reported_once_per_day_even_after_a_lost_answer
);

async fn stripe_fixture(backend: Backend, fake: &FakeStripe) -> Option<Fixture> {
    let base = fake.base_url.clone();
    fixture(
        backend,
        move |c| {
            c.stripe_secret_key = Some(SECRET_KEY.to_owned().into());
            c.stripe_webhook_secret = Some(WEBHOOK_SECRET.to_owned().into());
            c.stripe_api_base = base;
            c.stripe_poll_secs = 1;
            c.stripe_timeout_ms = 500;
        },
        |_| {},
    )
    .await
}

/// An operator's `pro` plan with a Stripe price.
async fn pro_plan(f: &Fixture) {
    let (_, token) = operator_token(&f.app).await;
    let (status, v) = operator_put(
        f,
        &token,
        "/v1/operator/plans/pro",
        json!({"name": "Pro", "quotas": {"messages.service": 1000}, "features": ["campaigns"],
            "stripe_price_id": "price_pro_monthly"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
}

async fn plan_status(f: &Fixture, key: &str) -> Value {
    let (status, v) = get(f, key, "/v1/plan").await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn wait_status(f: &Fixture, key: &str, wanted: &str) {
    for _ in 0..100 {
        if plan_status(f, key).await["status"] == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("billing status never became {wanted}");
}

fn completed(f: &Fixture) -> Value {
    json!({"id": "cs_test_1", "object": "checkout.session", "mode": "subscription",
        "client_reference_id": f.ws.to_string(), "customer": "cus_1", "subscription": "sub_1",
        "metadata": {"workspace_id": f.ws.to_string(), "plan_id": "pro"}})
}

async fn a_subscription_lifecycle_moves_the_plan_and_status(backend: Backend) {
    let fake = FakeStripe::start().await;
    let Some(f) = stripe_fixture(backend, &fake).await else {
        return;
    };
    pro_plan(&f).await;
    let key = usage_key(&f).await;
    let owner = login(&f.app, "ops@example.com", PASSWORD).await;

    // Only the owner starts a subscription: not an API key, not an admin.
    let body = json!({"plan_id": "pro", "success_url": "https://app.example.com/billing/done",
        "cancel_url": "https://app.example.com/billing"});
    let res = f
        .app
        .client
        .post(format!("{}/v1/billing/checkout", f.app.address))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(res, 403).await;
    let admin = member(&f.app, f.ws, "admin@example.com", "admin").await;
    let admin = login(&f.app, &admin.email, PASSWORD).await;
    assert_problem(
        admin
            .post(&f.app, "/v1/billing/checkout", body.clone())
            .await,
        403,
    )
    .await;
    // No customer yet: no portal.
    let res = owner
        .post(
            &f.app,
            "/v1/billing/portal",
            json!({"return_url": "https://app.example.com/billing"}),
        )
        .await;
    assert_problem(res, 409).await;

    let res = owner.post(&f.app, "/v1/billing/checkout", body).await;
    assert_eq!(res.status(), 200);
    let link: Value = res.json().await.unwrap();
    assert_eq!(link["url"], "https://checkout.stripe.test/c/pay/cs_test_1");
    let sent = fake.requests_to("checkout/sessions");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["line_items[0][price]"], "price_pro_monthly");
    assert_eq!(sent[0]["client_reference_id"], f.ws.to_string());
    assert_eq!(sent[0]["subscription_data[metadata][plan_id]"], "pro");

    // Checkout completes: the workspace is on the plan, active.
    let (status, v) =
        fake_stripe::send(&f.app, "evt_1", "checkout.session.completed", completed(&f)).await;
    assert_eq!((status, v["applied"].clone()), (200, json!(true)), "{v}");
    let plan = plan_status(&f, &key).await;
    assert_eq!(
        (plan["plan_id"].clone(), plan["status"].clone()),
        (json!("pro"), json!("active"))
    );
    let res = owner
        .post(
            &f.app,
            "/v1/billing/portal",
            json!({"return_url": "https://app.example.com/billing"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        fake.requests_to("billing_portal/sessions")[0]["customer"],
        "cus_1"
    );

    // A failed payment: past due, still working.
    f.open_window(USER).await;
    let sub = |status: &str| {
        json!({"id": "sub_1", "object": "subscription", "customer": "cus_1",
        "status": status, "metadata": {"workspace_id": f.ws.to_string(), "plan_id": "pro"}})
    };
    fake_stripe::send(
        &f.app,
        "evt_2",
        "invoice.payment_failed",
        json!({"id": "in_1", "customer": "cus_1"}),
    )
    .await;
    assert_eq!(plan_status(&f, &key).await["status"], "past_due");
    f.send_ok(USER, "while past due").await;
    // Retries exhausted: the grace period.
    fake_stripe::send(
        &f.app,
        "evt_3",
        "customer.subscription.updated",
        sub("unpaid"),
    )
    .await;
    assert_eq!(plan_status(&f, &key).await["status"], "grace");
    f.send_ok(USER, "during grace").await;
    // The grace period (7 days from the failure) ends: read-only, data kept.
    f.app.clock.advance(chrono::Duration::days(8));
    wait_status(&f, &key, "read_only").await;
    // Customers still write in (inbound is never refused); it reopens the window.
    f.open_window(USER).await;
    let p = assert_problem(f.send_text(USER, "read-only").await, 402).await;
    assert_eq!(p["billing_status"], "read_only");
    let (status, page) = get(&f, &f.key, "/v1/messages").await;
    assert_eq!(status, 200);
    assert_eq!(
        page["data"].as_array().unwrap().len(),
        4,
        "nothing deleted: {page}"
    );
    // Paid: active again.
    fake_stripe::send(
        &f.app,
        "evt_4",
        "invoice.paid",
        json!({"id": "in_1", "customer": "cus_1"}),
    )
    .await;
    assert_eq!(plan_status(&f, &key).await["status"], "active");
    f.send_ok(USER, "paid").await;
    // Canceled: read-only for good, the plan's data still there.
    fake_stripe::send(
        &f.app,
        "evt_5",
        "customer.subscription.deleted",
        sub("canceled"),
    )
    .await;
    let plan = plan_status(&f, &key).await;
    assert_eq!(plan["status"], "canceled");
    assert_problem(f.send_text(USER, "after cancel").await, 402).await;
    let types = f.event_types().await;
    assert!(
        types
            .iter()
            .filter(|t| *t == "usage.billing_updated")
            .count()
            >= 5,
        "{types:?}"
    );
}

async fn replayed_stale_or_badly_signed_webhooks_are_refused(backend: Backend) {
    let fake = FakeStripe::start().await;
    let Some(f) = stripe_fixture(backend, &fake).await else {
        return;
    };
    pro_plan(&f).await;
    let key = usage_key(&f).await;
    let body = fake_stripe::event("evt_1", "checkout.session.completed", completed(&f));
    let now = f.app.clock_now().timestamp();
    // Wrong secret, a changed body, no header, an old timestamp: refused, nothing applied.
    let (status, p) = fake_stripe::deliver(&f.app, &body, "whsec_someone_else", now).await;
    assert_eq!(status, 400, "{p}");
    assert!(
        p["type"].as_str().unwrap().ends_with("/invalid-signature"),
        "{p}"
    );
    let header = waypost_crypto::stripe::sign(WEBHOOK_SECRET, now, &body);
    let mut changed = body.clone();
    changed.extend_from_slice(b" ");
    let res = f
        .app
        .client
        .post(format!("{}/stripe/webhook", f.app.address))
        .header("stripe-signature", header)
        .body(changed)
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;
    let res = f
        .app
        .client
        .post(format!("{}/stripe/webhook", f.app.address))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;
    let (status, p) = fake_stripe::deliver(&f.app, &body, WEBHOOK_SECRET, now - 301).await;
    assert_eq!(status, 400, "a replay of an old delivery: {p}");
    assert_eq!(plan_status(&f, &key).await["plan_id"], Value::Null);

    // Delivered properly, it applies once; Stripe's redelivery changes nothing.
    let (status, v) = fake_stripe::deliver(&f.app, &body, WEBHOOK_SECRET, now).await;
    assert_eq!((status, v["applied"].clone()), (200, json!(true)));
    let (_, token) = operator_token(&f.app).await;
    let (status, _) = operator_put(
        &f,
        &token,
        &format!("/v1/operator/workspaces/{}/plan", f.ws),
        json!({"plan_id": "pro", "status": "read_only"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, v) = fake_stripe::deliver(&f.app, &body, WEBHOOK_SECRET, now + 5).await;
    assert_eq!((status, v["applied"].clone()), (200, json!(false)), "{v}");
    assert_eq!(
        plan_status(&f, &key).await["status"],
        "read_only",
        "the redelivery did not reactivate"
    );
}

async fn usage_is_reported_once_per_day_even_after_a_lost_answer(backend: Backend) {
    let fake = FakeStripe::start().await;
    fake.seen.lock().unwrap().slow_first_meter_event = true;
    let Some(f) = stripe_fixture(backend, &fake).await else {
        return;
    };
    pro_plan(&f).await;
    fake_stripe::send(&f.app, "evt_1", "checkout.session.completed", completed(&f)).await;
    // Two billable marketing messages today (prices from status webhooks).
    let store = &f.app.state.store;
    f.open_window(USER).await;
    let mut wamids = Vec::new();
    for text in ["one", "two"] {
        let id = f.send_ok(USER, text).await;
        let m = f.wait_status(&id, &["read"]).await;
        wamids.push(m.provider_message_id.unwrap());
    }
    // The sandbox's own prices (free service) land first; ours replace them.
    settle(&f, 1 + 2 * 3).await;
    for wamid in wamids {
        let body = f.messages_body(json!({"statuses": [{"id": wamid, "status": "read",
            "timestamp": "1764230100", "recipient_id": USER,
            "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"}}]}));
        assert_eq!(f.post_webhook(&body, None).await.status(), 200);
    }
    let day = f.app.clock_now().format("%Y-%m-%d").to_string();
    // Reported once the day is two days old.
    f.app.clock.advance(chrono::Duration::days(2));
    let id = format!("{}:{day}:billable.marketing", f.ws);
    let mut reported = None;
    for _ in 0..100 {
        // The first answer is lost (the client gives up): retried after a minute.
        f.app.clock.advance(chrono::Duration::seconds(30));
        let reports = store.usage_reports(&f.ws.to_string()).await.unwrap();
        if let Some(r) = reports
            .iter()
            .find(|r| r.id == id && r.reported_at.is_some())
        {
            reported = Some(r.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = reported.expect("the day was reported");
    assert_eq!(r.quantity, 2);
    assert!(r.attempts >= 2, "the lost answer was retried: {r:?}");
    // Stripe counted it once, under the same identifier and idempotency key.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (events, requests) = {
        let seen = fake.seen.lock().unwrap();
        let requests = seen
            .requests
            .iter()
            .filter(|(p, _)| p == "billing/meter_events")
            .count();
        (seen.meter_events.clone(), requests)
    };
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[&id],
        vec![(
            "waypost_marketing".to_owned(),
            "cus_1".to_owned(),
            "2".to_owned()
        )]
    );
    assert!(requests >= 2, "sent again after the lost answer");
    let all = store.usage_reports(&f.ws.to_string()).await.unwrap();
    assert_eq!(all.len(), 1, "queued once: {all:?}");
}
