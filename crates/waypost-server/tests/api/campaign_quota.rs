//! A campaign larger than the plan's monthly quota for its template's
//! category (issue #23): it sends up to the quota, then pauses itself with
//! `pause_reason` `quota_exceeded` and a `campaign.paused` event saying why,
//! leaving the rest pending (none failed); once the operator raises the
//! quota, a resume sends the rest, each recipient once.

use serde_json::json;
use waypost_store::Backend;

use crate::billing_quotas::put_on_plan;
use crate::campaign_sending::{
    draft, manager, outcome, phone, sending_fixture, sends_by_phone, start, wait_campaign,
};
use crate::incidents::operator_token;
use crate::on_both_backends;

on_both_backends!(a_campaign_pauses_at_the_quota_and_resumes_when_it_is_raised);

const RECIPIENTS: usize = 12;
const QUOTA: i64 = 5;

async fn a_campaign_pauses_at_the_quota_and_resumes_when_it_is_raised(backend: Backend) {
    let Some(f) = sending_fixture(backend, 20, |c| c.campaign_window = 3, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let (_, token) = operator_token(app).await;
    let plan = |marketing: i64| json!({"name": "Small", "quotas": {"messages.marketing": marketing}, "features": ["campaigns"]});
    put_on_plan(&f, &token, "small", plan(QUOTA)).await;
    let api = manager(&f).await;
    let (id, _) = draft(app, &api, RECIPIENTS, 0).await;
    start(app, &api, &id, RECIPIENTS as u64).await;

    let paused = wait_campaign(app, &api, &id, 120, |c| c["status"] == "paused").await;
    assert_eq!(paused["pause_reason"], "quota_exceeded", "{paused}");
    // What was queued drains; the rest waits, none failed or skipped.
    let drained = wait_campaign(app, &api, &id, 60, |c| {
        c["counters"]["sent"].as_u64() == Some(QUOTA as u64)
    })
    .await;
    assert_eq!(
        outcome(&drained, "pending"),
        RECIPIENTS as u64 - QUOTA as u64,
        "{drained}"
    );
    assert_eq!(outcome(&drained, "failed"), 0, "{drained}");
    assert_eq!(outcome(&drained, "skipped"), 0, "{drained}");
    let events = app
        .state
        .store
        .customer_events_after(&f.ws.to_string(), 0, 100_000)
        .await
        .unwrap();
    let pauses: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "campaign.paused" && e.subject_id.as_deref() == Some(&id))
        .collect();
    assert_eq!(pauses.len(), 1, "paused once");
    let data = waypost_server::events::open(&app.state.keys, app.state.store.as_ref(), pauses[0])
        .await
        .unwrap()["data"]
        .clone();
    assert_eq!(data["reason"], "quota_exceeded", "{data}");
    assert!(
        data["detail"]
            .as_str()
            .is_some_and(|d| d.contains("messages.marketing")),
        "the event names the quota: {data}"
    );

    // Resumed while the quota is still spent: it pauses again, sending nothing.
    let res = api
        .post(app, &format!("/v1/campaigns/{id}/resume"), json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let again = wait_campaign(app, &api, &id, 60, |c| c["status"] == "paused").await;
    assert_eq!(again["pause_reason"], "quota_exceeded");
    assert_eq!(again["counters"]["sent"], QUOTA, "{again}");

    // The operator raises the quota; a resume sends the rest.
    put_on_plan(&f, &token, "small", plan(100)).await;
    let res = api
        .post(app, &format!("/v1/campaigns/{id}/resume"), json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let done = wait_campaign(app, &api, &id, 120, |c| c["status"] == "completed").await;
    assert_eq!(done["counters"]["sent"], RECIPIENTS as u64, "{done}");
    let sends = sends_by_phone(&f).await;
    for i in 0..RECIPIENTS {
        let p = phone(i).trim_start_matches('+').to_owned();
        assert_eq!(sends.get(&p), Some(&1), "{p} sent once: {sends:?}");
    }
}
