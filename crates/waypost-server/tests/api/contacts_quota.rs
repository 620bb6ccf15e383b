//! The plan's `contacts` limit (issue #23): contacts the business adds (API,
//! import rows) are refused past it with a `quota-exceeded` problem naming
//! the quota, while an import still updates the contacts it has, and a new
//! customer who writes in is always added (counted, never dropped).

use serde_json::{Value, json};
use waypost_store::Backend;
use waypost_store::audiences::ContactQuery;

use crate::billing_quotas::put_on_plan;
use crate::helpers::assert_problem;
use crate::incidents::operator_token;
use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;

on_both_backends!(business_added_contacts_stop_at_the_limit_but_customers_always_get_in);

async fn add(f: &Fixture, phone: &str) -> reqwest::Response {
    f.app
        .client
        .post(format!("{}/v1/contacts", f.app.address))
        .bearer_auth(&f.key)
        .json(&json!({ "phone": phone }))
        .send()
        .await
        .unwrap()
}

async fn import(f: &Fixture, csv: &str) -> Value {
    let res = f
        .app
        .client
        .post(format!("{}/v1/contacts/imports", f.app.address))
        .bearer_auth(&f.key)
        .header("content-type", "text/csv")
        .header("idempotency-key", "quota-list")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn held(f: &Fixture) -> i64 {
    f.app
        .state
        .store
        .count_contacts(&f.ws.to_string(), &ContactQuery::default())
        .await
        .unwrap()
        .contacts
}

async fn business_added_contacts_stop_at_the_limit_but_customers_always_get_in(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let (_, token) = operator_token(&f.app).await;
    let plan = |contacts: i64| json!({"name": "Tiny", "quotas": {"contacts": contacts}});
    put_on_plan(&f, &token, "tiny", plan(3)).await;
    for i in 1..=3 {
        assert_eq!(add(&f, &format!("+491515550000{i}")).await.status(), 201);
    }
    let p = assert_problem(add(&f, "+4915155500004").await, 429).await;
    assert!(
        p["type"].as_str().unwrap().ends_with("/quota-exceeded"),
        "{p}"
    );
    assert_eq!(
        (&p["quota"], &p["limit"], &p["used"]),
        (&json!("contacts"), &json!(3), &json!(3))
    );
    assert!(p["detail"].as_str().unwrap().contains("contacts"), "{p}");
    assert_eq!(held(&f).await, 3);

    // An import updates a contact it has; a row adding one more is refused.
    let done = import(&f, "phone,name\n+4915155500001,Ada\n+4915155500005,Bo\n").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        (&done["updated"], &done["created"], &done["invalid"]),
        (&json!(1), &json!(0), &json!(1)),
        "{done}"
    );
    let id = done["id"].as_str().unwrap();
    let rows: Value = f
        .app
        .client
        .get(format!("{}/v1/contacts/imports/{id}/rows", f.app.address))
        .bearer_auth(&f.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refused = &rows["data"][1];
    assert_eq!(refused["outcome"], "invalid", "{rows}");
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("quota-exceeded") && d.contains("`contacts`")),
        "{rows}"
    );
    assert_eq!(held(&f).await, 3);

    // A new customer writing in is added past the limit; the message is kept.
    f.open_window(USER).await;
    assert_eq!(held(&f).await, 4);

    // A bigger plan lets the business add again.
    put_on_plan(&f, &token, "tiny", plan(5)).await;
    assert_eq!(add(&f, "+4915155500004").await.status(), 201);
    assert_eq!(held(&f).await, 5);
}
