//! Per-country prices (issue #23): a message keeps its recipient's country
//! (from the number's calling code; never the number), billable messages are
//! also counted per country, and the estimate prices messages to a country
//! the rate card names at that country's price, the others at the default.

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::bsuid::get;
use crate::incidents::operator_token;
use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;
use crate::usage::{priced_status, settle, totals, usage_key, wait_priced};

on_both_backends!(billable_messages_are_priced_by_their_recipients_country);

/// A Brazilian mobile number.
const BR_USER: &str = "5511987654321";

async fn reply(f: &Fixture, to: &str, text: &str) -> String {
    let id = f.send_ok(to, text).await;
    f.wait_status(&id, &["read"]).await;
    wait_priced(f, &id).await;
    id
}

async fn put_card(f: &Fixture, token: &str, csv: &'static str) -> (u16, Value) {
    let res = f
        .app
        .client
        .put(format!("{}/v1/operator/rate-card", f.app.address))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn billable_messages_are_priced_by_their_recipients_country(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let key = usage_key(&f).await;
    f.open_window(USER).await;
    f.open_window(BR_USER).await;
    let de = [reply(&f, USER, "one").await, reply(&f, USER, "two").await];
    let br = reply(&f, BR_USER, "três").await;
    let br_utility = reply(&f, BR_USER, "quatro").await;
    // The sandbox's own prices land first; ours replace them.
    settle(&f, 2 + 4 * 3).await;
    assert_eq!(f.message(&de[0]).await.country.as_deref(), Some("DE"));
    assert_eq!(f.message(&br).await.country.as_deref(), Some("BR"));
    let marketing = json!({"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"});
    for id in de.iter().chain([&br]) {
        priced_status(&f, id, "read", marketing.clone()).await;
    }
    // A utility message to Brazil, whose only utility price is Germany's.
    let utility =
        json!({"billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility"});
    priced_status(&f, &br_utility, "read", utility).await;

    let (_, token) = operator_token(&f.app).await;
    let (status, card) = put_card(
        &f,
        &token,
        "category,currency,unit_price,country\nmarketing,EUR,0.1131,\nmarketing,EUR,0.0625,BR\nutility,EUR,0.0456,DE\n",
    )
    .await;
    assert_eq!(status, 200, "{card}");
    assert_eq!(card[0]["country"], Value::Null, "{card}");
    assert_eq!(card[1]["country"], "BR", "{card}");
    let (status, p) = put_card(
        &f,
        &token,
        "category,currency,unit_price,country\nmarketing,EUR,1,Brazil\n",
    )
    .await;
    assert_eq!(status, 422);
    assert!(p["detail"].as_str().unwrap().contains("line 2"), "{p}");

    let now = f.app.clock_now();
    let range = format!(
        "from={}&to={}&granularity=month",
        (now - chrono::Duration::days(3)).format("%Y-%m-%d"),
        (now + chrono::Duration::days(3)).format("%Y-%m-%d")
    );
    let (status, report) = get(&f, &key, &format!("/v1/usage?{range}")).await;
    assert_eq!(status, 200, "{report}");
    let t = totals(&report);
    assert_eq!(t["billable.marketing"], 3, "{report}");
    assert_eq!(t["billable_by_country.marketing.DE"], 2, "{report}");
    assert_eq!(t["billable_by_country.marketing.BR"], 1, "{report}");
    assert_eq!(t["billable_by_country.utility.BR"], 1, "{report}");
    // No full number in any counter name.
    assert!(!report.to_string().contains(BR_USER) && !report.to_string().contains(USER));

    let cost = &report["estimated_cost"];
    assert_eq!(
        cost["categories"],
        json!([
            {"category": "marketing", "billable": 3, "unit_price": "0.113100",
             "countries": [{"country": "BR", "billable": 1, "unit_price": "0.062500", "cost": "0.062500"}],
             "cost": "0.288700"},
        ]),
        "{report}"
    );
    // Two German messages at the default, one Brazilian at Brazil's price;
    // the utility message to Brazil has no price.
    assert_eq!(cost["total"], "0.288700", "{report}");
    assert_eq!(cost["unpriced"], json!(["utility"]), "{report}");
}
