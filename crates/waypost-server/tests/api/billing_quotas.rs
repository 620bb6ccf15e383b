//! Plans and quotas (issue #23): an operator defines a plan and puts a
//! workspace on it; sends and shield scans warn at 80 % and 100 % of their
//! monthly quota (once each) and are refused past it with a `quota-exceeded`
//! problem naming the quota and when it resets; a read-only billing status
//! refuses use with 402 but still allows reads; held limits (channels) refuse
//! one more; a feature outside the plan (campaigns) is refused with 402.

use chrono::Datelike;
use serde_json::{Value, json};
use waypost_store::Backend;

use crate::bsuid::get;
use crate::helpers::assert_problem;
use crate::incidents::operator_token;
use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;
use crate::usage::{totals, usage_key};
use crate::users::{PASSWORD, api_key, login};

on_both_backends!(
    quotas_warn_at_80_and_100_percent_and_refuse_past_the_limit,
    billing_status_and_held_limits_are_enforced
);

/// `PUT` with an operator token.
pub async fn operator_put(f: &Fixture, token: &str, path: &str, body: Value) -> (u16, Value) {
    let res = f
        .app
        .client
        .put(format!("{}{path}", f.app.address))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Defines `plan` and puts the fixture's workspace on it.
pub async fn put_on_plan(f: &Fixture, token: &str, plan: &str, body: Value) {
    let (status, v) = operator_put(f, token, &format!("/v1/operator/plans/{plan}"), body).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = operator_put(
        f,
        token,
        &format!("/v1/operator/workspaces/{}/plan", f.ws),
        json!({"plan_id": plan}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["plan_id"], plan);
}

fn warnings(types: &[String]) -> usize {
    types.iter().filter(|t| *t == "usage.quota_warning").count()
}

fn next_month(f: &Fixture) -> String {
    let now = f.app.clock_now().date_naive();
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    format!("{y:04}-{m:02}-01T00:00:00Z")
}

async fn scan(f: &Fixture, key: &str) -> reqwest::Response {
    f.app
        .client
        .post(format!("{}/v1/shield/scan", f.app.address))
        .bearer_auth(key)
        .json(&json!({"text": "hello"}))
        .send()
        .await
        .unwrap()
}

async fn quotas_warn_at_80_and_100_percent_and_refuse_past_the_limit(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let key = usage_key(&f).await;
    let (_, token) = operator_token(&f.app).await;
    // Unknown quotas and features are refused.
    let (status, p) = operator_put(
        &f,
        &token,
        "/v1/operator/plans/bad",
        json!({"name": "Bad", "quotas": {"messages.bogus": 1}}),
    )
    .await;
    assert_eq!(status, 422, "{p}");
    let (status, _) = operator_put(
        &f,
        &token,
        "/v1/operator/plans/bad",
        json!({"name": "Bad", "features": ["teleport"]}),
    )
    .await;
    assert_eq!(status, 422);
    put_on_plan(
        &f,
        &token,
        "starter",
        json!({"name": "Starter", "quotas": {"messages.service": 5, "shield.scans": 2}, "features": []}),
    )
    .await;

    f.open_window(USER).await;
    for i in 0..3 {
        f.send_ok(USER, &format!("m{i}")).await;
    }
    assert_eq!(warnings(&f.event_types().await), 0);
    f.send_ok(USER, "fourth").await;
    assert_eq!(warnings(&f.event_types().await), 1, "80 %");
    f.send_ok(USER, "fifth").await;
    assert_eq!(warnings(&f.event_types().await), 2, "100 %");
    let res = f.send_text(USER, "sixth").await;
    let p = assert_problem(res, 429).await;
    assert!(
        p["type"].as_str().unwrap().ends_with("/quota-exceeded"),
        "{p}"
    );
    assert_eq!(p["quota"], "messages.service");
    assert_eq!(p["limit"], 5);
    assert_eq!(p["resets_at"], next_month(&f));
    assert!(
        p["detail"].as_str().unwrap().contains("messages.service"),
        "{p}"
    );
    assert_eq!(warnings(&f.event_types().await), 2, "each level once");

    // The workspace sees its plan and what it used.
    let (status, plan) = get(&f, &key, "/v1/plan").await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["plan_id"], "starter");
    assert_eq!(
        plan["quotas"]["messages.service"],
        json!({"limit": 5, "used": 5})
    );

    // Shield scans: two fit, the third does not; a batch that does not fit is refused whole.
    assert_eq!(scan(&f, &key).await.status(), 200);
    assert_eq!(scan(&f, &key).await.status(), 200);
    let p = assert_problem(scan(&f, &key).await, 429).await;
    assert_eq!(p["quota"], "shield.scans");
    assert_eq!(warnings(&f.event_types().await), 4);

    // Refused uses are not counted.
    let now = f.app.clock_now();
    let (_, report) = get(
        &f,
        &key,
        &format!(
            "/v1/usage?granularity=month&from={}&to={}",
            (now - chrono::Duration::days(3)).format("%Y-%m-%d"),
            (now + chrono::Duration::days(3)).format("%Y-%m-%d")
        ),
    )
    .await;
    let t = totals(&report);
    assert_eq!(t["accepted.service"], 5, "{report}");
    assert_eq!(t["shield.scans"], 2, "{report}");

    // A bigger plan lets sends through again, at once.
    put_on_plan(
        &f,
        &token,
        "starter",
        json!({"name": "Starter", "quotas": {"messages.service": 6}}),
    )
    .await;
    f.send_ok(USER, "sixth, now fits").await;
}

async fn billing_status_and_held_limits_are_enforced(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let key = usage_key(&f).await;
    let (_, token) = operator_token(&f.app).await;
    put_on_plan(
        &f,
        &token,
        "solo",
        json!({"name": "Solo", "quotas": {"channels": 1}}),
    )
    .await;
    f.open_window(USER).await;
    f.send_ok(USER, "while active").await;

    // The fixture's one channel is all the plan holds.
    let session = login(&f.app, "ops@example.com", PASSWORD).await;
    let (_, admin_key) = api_key(
        &f.app,
        &session,
        json!({"name": "channels", "scopes": ["channels:manage"]}),
    )
    .await;
    let res = f
        .app
        .client
        .post(format!("{}/v1/channels", f.app.address))
        .bearer_auth(&admin_key)
        .json(&json!({"name": "Second", "provider": "sandbox", "phone_number_id": "1234567",
            "waba_id": "7654321", "access_token": "token", "app_secret": "secret", "verify_token": "verify"}))
        .send()
        .await
        .unwrap();
    let p = assert_problem(res, 429).await;
    assert_eq!(p["quota"], "channels");
    assert_eq!(p.get("resets_at"), None, "a held limit does not reset");
    // Campaigns are not in the plan: starting one is refused before anything else.
    let (_, campaign_key) = api_key(
        &f.app,
        &session,
        json!({"name": "campaigns", "scopes": ["campaigns:manage"]}),
    )
    .await;
    let res = f
        .app
        .client
        .post(format!(
            "{}/v1/campaigns/cmp_01M980SHGZVBYX5HQMCHY5N0MQ/start",
            f.app.address
        ))
        .bearer_auth(&campaign_key)
        .json(&json!({"confirm_eligible": 1}))
        .send()
        .await
        .unwrap();
    let p = assert_problem(res, 402).await;
    assert_eq!(p["quota"], "feature.campaigns");

    // Read-only: nothing new, reads still work, data untouched.
    let (status, v) = operator_put(
        &f,
        &token,
        &format!("/v1/operator/workspaces/{}/plan", f.ws),
        json!({"plan_id": "solo", "status": "read_only"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "read_only");
    let p = assert_problem(f.send_text(USER, "while read-only").await, 402).await;
    assert!(
        p["type"].as_str().unwrap().ends_with("/quota-exceeded"),
        "{p}"
    );
    assert_eq!(p["billing_status"], "read_only");
    let p = assert_problem(scan(&f, &key).await, 402).await;
    assert_eq!(p["quota"], "billing_status");
    let (status, page) = get(&f, &f.key, "/v1/messages").await;
    assert_eq!(status, 200);
    assert_eq!(page["data"].as_array().unwrap().len(), 2, "{page}");
    assert!(
        f.event_types()
            .await
            .contains(&"usage.billing_updated".to_owned())
    );

    // Back to active: sends again.
    let (status, _) = operator_put(
        &f,
        &token,
        &format!("/v1/operator/workspaces/{}/plan", f.ws),
        json!({"plan_id": "solo", "status": "active"}),
    )
    .await;
    assert_eq!(status, 200);
    f.send_ok(USER, "paid again").await;
}
