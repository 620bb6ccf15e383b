//! Usage metering (issue #23): the counters of messages sent and received
//! through the sandbox, of prices its status webhooks report (and others
//! posted here, in both pricing shapes), of shield scans and active contacts
//! match what happened exactly; `GET /v1/usage` reports them by day, month
//! and channel, as JSON and CSV, with a cost estimated from the operator's
//! rate card.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::bsuid::get;
use crate::helpers::assert_problem;
use crate::incidents::operator_token;
use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;
use crate::users::{PASSWORD, api_key, login};

on_both_backends!(
    usage_counts_match_the_traffic_exactly,
    rate_cards_are_validated_and_usage_needs_its_scope
);

/// A key of the fixture's workspace with `usage:read` (and `shield:scan`).
pub async fn usage_key(f: &Fixture) -> String {
    let session = login(&f.app, "ops@example.com", PASSWORD).await;
    api_key(
        &f.app,
        &session,
        json!({"name": "usage", "scopes": ["usage:read", "shield:scan"]}),
    )
    .await
    .1
}

/// The days around now, so a report covers everything the test did.
fn range(f: &Fixture) -> String {
    let now = f.app.clock_now();
    let day = |d: chrono::DateTime<chrono::Utc>| d.format("%Y-%m-%d").to_string();
    format!(
        "from={}&to={}",
        day(now - chrono::Duration::days(3)),
        day(now + chrono::Duration::days(3))
    )
}

/// Every counter of a report summed over its periods.
pub fn totals(report: &Value) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for p in report["data"].as_array().unwrap() {
        for (k, v) in p["metrics"].as_object().unwrap() {
            *out.entry(k.clone()).or_default() += v.as_i64().unwrap();
        }
    }
    out
}

fn expect(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// Waits until the message's price (from the sandbox's statuses) is stored.
pub async fn wait_priced(f: &Fixture, id: &str) {
    // Up to 20 s: statuses come slowly on a loaded machine.
    for _ in 0..400 {
        if f.app
            .state
            .store
            .message_pricing(id)
            .await
            .unwrap()
            .is_some()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no price reported for {id}");
}

/// Waits until the sandbox has delivered `n` webhooks (an inbound message is
/// one, a send's statuses three): a late `delivered` carries a price too, and
/// the latest report of a price wins.
pub async fn settle(f: &Fixture, n: u64) {
    for _ in 0..400 {
        let log = f.sandbox_log().await;
        if log["counters"]["webhooks_delivered"].as_u64().unwrap_or(0) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the sandbox never delivered {n} webhooks");
}

/// A status webhook for one of our messages, with a price.
pub async fn priced_status(f: &Fixture, id: &str, status: &str, pricing: Value) {
    let wamid = f.message(id).await.provider_message_id.unwrap();
    let body = f.messages_body(json!({"statuses": [{"id": wamid, "status": status,
        "timestamp": "1764230100", "recipient_id": USER, "pricing": pricing}]}));
    assert_eq!(f.post_webhook(&body, None).await.status(), 200);
}

async fn usage_counts_match_the_traffic_exactly(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let key = usage_key(&f).await;
    // Two inbound texts: one customer-service window, one active contact.
    f.open_window(USER).await;
    let wamid = f.inject(USER, "and another thing").await;
    f.wait_inbound(&wamid).await;
    // Three replies; the sandbox prices each as free customer service.
    let mut sent = Vec::new();
    for i in 0..3 {
        let id = f.send_ok(USER, &format!("reply {i}")).await;
        f.wait_status(&id, &["read"]).await;
        wait_priced(&f, &id).await;
        sent.push(id);
    }
    settle(&f, 2 + 3 * 3).await;
    // One re-priced as billable marketing (conversation-based shape), twice:
    // a replayed report counts once.
    let cbp = json!({"billable": true, "pricing_model": "CBP", "category": "marketing"});
    priced_status(&f, &sent[0], "read", cbp.clone()).await;
    priced_status(&f, &sent[0], "read", cbp).await;
    // One as utility under per-message pricing without `billable`: `regular` is billable.
    let pmp = json!({"pricing_model": "PMP", "type": "regular", "category": "utility"});
    priced_status(&f, &sent[1], "read", pmp).await;
    // One shield scan through the API (workspace-wide, no channel).
    let res = f
        .app
        .client
        .post(format!("{}/v1/shield/scan", f.app.address))
        .bearer_auth(&key)
        .json(&json!({"text": "Your parcel is waiting"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let (status, report) = get(
        &f,
        &key,
        &format!("/v1/usage?granularity=month&{}", range(&f)),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["granularity"], "month");
    assert_eq!(
        totals(&report),
        expect(&[
            ("accepted.service", 3),
            ("billable.marketing", 1),
            ("billable.utility", 1),
            // The recipient's number is German.
            ("billable_by_country.marketing.DE", 1),
            ("billable_by_country.utility.DE", 1),
            ("contacts.active_month", 1),
            ("conversations.opened", 1),
            ("messages.inbound.text", 2),
            ("messages.outbound.text", 3),
            ("priced.marketing", 1),
            ("priced.service", 1),
            ("priced.utility", 1),
            ("shield.scans", 1),
        ]),
        "{report}"
    );
    // No rate card yet: no estimate.
    assert_eq!(report["estimated_cost"], Value::Null);

    // By day: distinct contacts per day instead of per month.
    let (_, daily) = get(&f, &key, &format!("/v1/usage?{}", range(&f))).await;
    let day_totals = totals(&daily);
    assert_eq!(day_totals.get("contacts.active_month"), None);
    assert!(day_totals["contacts.active"] >= 1, "{daily}");
    assert_eq!(day_totals["messages.outbound.text"], 3);

    // Per channel: messages on the channel, the scan on none.
    let (_, by_channel) = get(
        &f,
        &key,
        &format!(
            "/v1/usage?granularity=month&breakdown=channel&{}",
            range(&f)
        ),
    )
    .await;
    for p in by_channel["data"].as_array().unwrap() {
        let metrics = p["metrics"].as_object().unwrap();
        if metrics.contains_key("shield.scans") {
            assert_eq!(p["channel_id"], Value::Null, "{p}");
        } else {
            assert_eq!(p["channel_id"], f.channel.id.as_str(), "{p}");
        }
    }
    assert_eq!(totals(&by_channel), totals(&report));

    // The operator loads a rate card; the estimate prices billable messages.
    let (_, token) = operator_token(&f.app).await;
    let res = f
        .app
        .client
        .put(format!("{}/v1/operator/rate-card", f.app.address))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body("category,currency,unit_price\nmarketing,EUR,0.1131\nutility,EUR,0.0456\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let card: Value = res.json().await.unwrap();
    assert_eq!(card[0]["unit_price"], "0.113100", "{card}");
    let (_, report) = get(
        &f,
        &key,
        &format!("/v1/usage?granularity=month&{}", range(&f)),
    )
    .await;
    let cost = &report["estimated_cost"];
    assert_eq!(cost["currency"], "EUR", "{report}");
    assert_eq!(cost["total"], "0.158700", "{report}");
    assert_eq!(
        cost["categories"],
        json!([
            {"category": "marketing", "billable": 1, "unit_price": "0.113100", "countries": [], "cost": "0.113100"},
            {"category": "utility", "billable": 1, "unit_price": "0.045600", "countries": [], "cost": "0.045600"}
        ])
    );

    // CSV, by Accept header or by `format`.
    for (path, accept) in [
        (
            format!("/v1/usage?granularity=month&{}", range(&f)),
            "text/csv",
        ),
        (
            format!("/v1/usage?granularity=month&format=csv&{}", range(&f)),
            "*/*",
        ),
    ] {
        let res = f
            .app
            .client
            .get(format!("{}{path}", f.app.address))
            .bearer_auth(&key)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let csv = res.text().await.unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("period,channel_id,metric,count"));
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.len(), totals(&report).len(), "{csv}");
        assert!(
            rows.iter()
                .any(|l| l.ends_with(",messages.outbound.text,3")),
            "{csv}"
        );
    }
}

async fn rate_cards_are_validated_and_usage_needs_its_scope(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    // The fixture's sending key has no `usage:read`.
    let res = f
        .app
        .client
        .get(format!("{}/v1/usage", f.app.address))
        .bearer_auth(&f.key)
        .send()
        .await
        .unwrap();
    let p = assert_problem(res, 403).await;
    assert_eq!(p["required_scope"], "usage:read");
    let key = usage_key(&f).await;
    for (query, needle) in [
        ("from=2026-13-01", "`from`"),
        ("from=2026-05-02&to=2026-05-01", "after"),
        ("from=2024-01-01&to=2026-01-01", "400 days"),
        ("granularity=week", "granularity"),
        ("breakdown=country", "breakdown"),
    ] {
        let res = f
            .app
            .client
            .get(format!("{}/v1/usage?{query}", f.app.address))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        let p = assert_problem(res, 422).await;
        assert!(
            p["detail"].as_str().unwrap().contains(needle),
            "{query}: {p}"
        );
    }
    // Rate cards: operators only, and checked line by line.
    let put = |token: String, body: &'static str| {
        f.app
            .client
            .put(format!("{}/v1/operator/rate-card", f.app.address))
            .bearer_auth(token)
            .body(body)
            .send()
    };
    assert_eq!(
        put(key.clone(), "category,currency,unit_price\nmarketing,EUR,1")
            .await
            .unwrap()
            .status(),
        403
    );
    let (_, token) = operator_token(&f.app).await;
    let p = assert_problem(
        put(
            token.clone(),
            "category,currency,unit_price\nmarketing,EUR,1\nutility,USD,1",
        )
        .await
        .unwrap(),
        422,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("one currency"),
        "{p}"
    );
    let p = assert_problem(
        put(
            token.clone(),
            "category,currency,unit_price\nmarketing,EUR,1.1234567",
        )
        .await
        .unwrap(),
        422,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("line 2"), "{p}");
    // Nothing was loaded by the refused cards.
    let card: Value = f
        .app
        .client
        .get(format!("{}/v1/operator/rate-card", f.app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(card, json!([]));
}
