//! Campaigns that send, through the sandbox: a start must confirm the
//! pre-flight's count; 5,000 recipients are each sent exactly once and the
//! skipped ones are reported with their reason; a STOP received mid-campaign
//! stops that recipient's pending send; the number's messaging tier holds
//! over a rolling 24 hours of the simulated clock.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use waypost_sandbox::SandboxConfig;
use waypost_server::Config;
use waypost_store::Backend;

use crate::bearer::{ALL_SCOPES, Api};
use crate::helpers::{TestApp, assert_problem};
use crate::messaging_fixture::{Fixture, fixture};
use crate::on_both_backends;
use crate::users::{PASSWORD, api_key, audit_actions, login};

on_both_backends!(
    a_5000_recipient_campaign_sends_each_eligible_recipient_exactly_once,
    a_stop_mid_campaign_stops_that_recipients_pending_send,
    a_stop_withdraws_a_send_already_waiting_in_the_outbox,
    the_messaging_tier_holds_over_a_rolling_24_hours,
);

/// The phone of the `i`th test recipient.
pub fn phone(i: usize) -> String {
    format!("+49151{:08}", 20_000_000 + i)
}

/// A fixture whose sandbox number sends `mps` messages a second with room
/// for any number of users, and a fast campaign sender.
pub async fn sending_fixture(
    backend: Backend,
    mps: u32,
    config: impl FnOnce(&mut Config),
    sandbox: impl FnOnce(&mut SandboxConfig),
) -> Option<Fixture> {
    fixture(
        backend,
        |c| {
            c.campaign_poll_ms = 20;
            config(c);
        },
        |s| {
            s.numbers[0].throughput = mps;
            s.numbers[0].messaging_tier = 1_000_000;
            s.webhooks.template_review_ms = 10;
            sandbox(s);
        },
    )
    .await
}

/// An API key with every scope (campaigns:manage too) on the fixture's workspace.
pub async fn manager(f: &Fixture) -> Api {
    let session = login(&f.app, "ops@example.com", PASSWORD).await;
    let (_, key) = api_key(
        &f.app,
        &session,
        json!({"name": "campaigns", "scopes": ALL_SCOPES}),
    )
    .await;
    Api {
        key,
        workspace_id: f.ws,
    }
}

/// Creates the template `promo` (body `Hi {{1}}, …`), imports `eligible`
/// contacts with marketing consent and `without` without it, all tagged
/// `promo`, and saves the segment `Promo` of them; returns the segment.
pub async fn audience(app: &TestApp, api: &Api, eligible: usize, without: usize) -> Value {
    let template = json!({"name": "promo", "language": "en_US", "category": "marketing",
        "components": [{"type": "BODY", "text": "Hi {{1}}, the sale starts today.",
            "example": {"body_text": [["Ana"]]}}]});
    assert_eq!(api.post(app, "/v1/templates", template).await.status(), 201);
    let mut csv = String::from(
        "phone,name,tags,consent_marketing,consent_source,consent_captured_at,consent_text\n",
    );
    for i in 0..eligible + without {
        let consent = if i < eligible {
            "yes,web form,2026-11-01T10:00:00Z,Send me offers"
        } else {
            ",,,"
        };
        csv.push_str(&format!("{},Person {i},promo,{consent}\n", phone(i)));
    }
    let res = app
        .client
        .post(format!("{}/v1/contacts/imports", app.address))
        .bearer_auth(&api.key)
        .header("content-type", "text/csv")
        .header("idempotency-key", "promo-list")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let import: Value = res.json().await.unwrap();
    assert_eq!(import["created"], (eligible + without) as u64, "{import}");
    api.post(
        app,
        "/v1/segments",
        json!({"name": "Promo", "filter": {"tags": ["promo"]}}),
    )
    .await
    .json()
    .await
    .unwrap()
}

/// The audience of [`audience`] and a draft to it. Returns the campaign id
/// once the pre-flight is ready, and the pre-flight.
pub async fn draft(app: &TestApp, api: &Api, eligible: usize, without: usize) -> (String, Value) {
    let segment = audience(app, api, eligible, without).await;
    let res = api
        .post(
            app,
            "/v1/campaigns",
            json!({"name": "Sale", "segment_id": segment["id"],
                "template": {"name": "promo", "language": "en_US"},
                "parameters": {"body": [{"field": "name"}]}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut pre = Value::Null;
    // Up to 60 s: the approval webhook is slow on a loaded machine.
    for _ in 0..1200 {
        pre = api
            .get(app, &format!("/v1/campaigns/{id}/preflight"))
            .await
            .json()
            .await
            .unwrap();
        if pre["ready"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pre["ready"], true, "the template was never approved: {pre}");
    assert_eq!(pre["eligible"], eligible as u64, "{pre}");
    (id, pre)
}

/// Starts the campaign confirming `eligible`.
pub async fn start(app: &TestApp, api: &Api, id: &str, eligible: u64) -> Value {
    let res = api
        .post(
            app,
            &format!("/v1/campaigns/{id}/start"),
            json!({"confirm_eligible": eligible}),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Reads the campaign until `done` holds (at most `secs` seconds).
pub async fn wait_campaign(
    app: &TestApp,
    api: &Api,
    id: &str,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    wait_campaign_ticking(app, api, id, secs, chrono::Duration::zero(), done).await
}

/// As [`wait_campaign`], moving the app clock on by `tick` each poll, so that
/// retries and in-doubt sends (timed on the app clock) come due: on a loaded
/// machine some provider calls time out, and a frozen clock would hold them.
pub async fn wait_campaign_ticking(
    app: &TestApp,
    api: &Api,
    id: &str,
    secs: u64,
    tick: chrono::Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        app.clock.advance(tick);
        let c: Value = api
            .get(app, &format!("/v1/campaigns/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if done(&c) {
            return c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "campaign never got there: {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Accepted sends per recipient phone in the sandbox's log.
pub async fn sends_by_phone(f: &Fixture) -> HashMap<String, usize> {
    let log = f.sandbox_log().await;
    let mut by = HashMap::new();
    for s in log["sends"].as_array().unwrap() {
        if s["outcome"] == "accepted" {
            *by.entry(s["to"].as_str().unwrap().trim_start_matches('+').to_owned())
                .or_default() += 1;
        }
    }
    by
}

pub fn outcome(c: &Value, name: &str) -> u64 {
    c["counters"]["outcomes"][name].as_u64().unwrap()
}

async fn a_5000_recipient_campaign_sends_each_eligible_recipient_exactly_once(backend: Backend) {
    // No status webhooks (15,000 of them would only slow the test down): the
    // template's approval reaches the app through the template sync instead.
    let Some(f) = sending_fixture(
        backend,
        5000,
        |c| c.template_sync_interval_secs = 1,
        |s| s.webhooks.enabled = false,
    )
    .await
    else {
        return;
    };
    let app = &f.app;
    let api = manager(&f).await;
    let (eligible, without) = (4_950, 50);
    let (id, pre) = draft(app, &api, eligible, without).await;
    assert_eq!(pre["skipped"]["no_consent"], without as u64);

    // The key without campaigns:manage may not start it.
    let plain = Api {
        key: f.key.clone(),
        workspace_id: f.ws,
    };
    let refused = plain
        .post(
            app,
            &format!("/v1/campaigns/{id}/start"),
            json!({"confirm_eligible": eligible}),
        )
        .await;
    assert_eq!(
        assert_problem(refused, 403).await["required_scope"],
        "campaigns:manage"
    );
    // A count that is not the pre-flight's is refused with the new one.
    let stale = api
        .post(
            app,
            &format!("/v1/campaigns/{id}/start"),
            json!({"confirm_eligible": eligible + 1}),
        )
        .await;
    let p = assert_problem(stale, 409).await;
    assert!(
        p["type"].as_str().unwrap().ends_with("preflight-changed"),
        "{p}"
    );
    assert_eq!(p["preflight"]["eligible"], eligible as u64);
    assert!(p["detail"].as_str().unwrap().contains("4950"), "{p}");

    let started = std::time::Instant::now();
    let c = start(app, &api, &id, eligible as u64).await;
    assert_eq!(c["status"], "running");
    assert_eq!(c["confirmed_recipients"], eligible as u64);
    let again = api
        .post(
            app,
            &format!("/v1/campaigns/{id}/start"),
            json!({"confirm_eligible": eligible}),
        )
        .await;
    assert_eq!(
        assert_problem(again, 409).await["type"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next(),
        Some("campaign-state")
    );
    let done = wait_campaign(app, &api, &id, 240, |c| {
        c["status"] == "completed" && c["counters"]["sent"] == eligible as u64
    })
    .await;
    eprintln!(
        "{eligible} recipients sent in {:?} ({backend:?})",
        started.elapsed()
    );
    assert_eq!(done["counters"]["recipients"], (eligible + without) as u64);
    assert_eq!(done["counters"]["skipped"], json!({"no_consent": without}));
    assert_eq!(outcome(&done, "pending"), 0);
    assert!(done["finished_at"].is_string());

    let by_phone = sends_by_phone(&f).await;
    assert_eq!(
        by_phone.len(),
        eligible,
        "every eligible recipient was sent"
    );
    assert!(by_phone.values().all(|n| *n == 1), "nobody was sent twice");
    for i in eligible..eligible + without {
        assert!(!by_phone.contains_key(phone(i).trim_start_matches('+')));
    }

    let res = api
        .get(app, &format!("/v1/campaigns/{id}/outcomes.csv"))
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "seq,contact_id,outcome,skip_reason,error_code,message_id,queued_at"
    );
    assert_eq!(lines.len(), 1 + eligible + without);
    assert_eq!(
        lines.iter().filter(|l| l.contains(",sent,")).count(),
        eligible
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains(",skipped,no_consent,"))
            .count(),
        without
    );
    assert!(!csv.contains("+49"), "the export carries no phone numbers");

    let actions = audit_actions(app, Some(f.ws)).await;
    for a in ["campaign.started", "campaign.completed"] {
        assert!(actions.iter().any(|x| x == a), "{a} not audited");
    }
}

async fn a_stop_mid_campaign_stops_that_recipients_pending_send(backend: Backend) {
    // Ten a second, at most five waiting in the outbox: the last recipients
    // are still pending when the STOP arrives.
    let Some(f) = sending_fixture(backend, 10, |c| c.campaign_window = 5, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let api = manager(&f).await;
    let (id, _) = draft(app, &api, 40, 0).await;
    start(app, &api, &id, 40).await;
    wait_campaign(app, &api, &id, 180, |c| {
        c["counters"]["sent"].as_u64().unwrap() >= 3
    })
    .await;
    let stopper = phone(39);
    f.inject(stopper.trim_start_matches('+'), "STOP").await;
    let done = wait_campaign(app, &api, &id, 240, |c| c["status"] == "completed").await;
    let by_phone = sends_by_phone(&f).await;
    assert!(
        !by_phone.contains_key(stopper.trim_start_matches('+')),
        "the recipient who sent STOP was not sent the campaign"
    );
    assert_eq!(by_phone.len(), 39, "{done}");
    assert_eq!(
        done["counters"]["skipped"],
        json!({"opted_out": 1}),
        "{done}"
    );
    let csv = api
        .get(app, &format!("/v1/campaigns/{id}/outcomes.csv"))
        .await
        .text()
        .await
        .unwrap();
    let stopped: Vec<&str> = csv
        .lines()
        .filter(|l| l.contains(",skipped,opted_out,"))
        .collect();
    assert_eq!(stopped.len(), 1, "{csv}");
    assert!(stopped[0].ends_with(",,"), "never queued: {}", stopped[0]);
}

async fn a_stop_withdraws_a_send_already_waiting_in_the_outbox(backend: Backend) {
    // Five a second and a wide window: every message waits in the outbox at once.
    // 2 messages a second: the last of 20 waits about ten seconds, time enough
    // for the STOP to arrive first on a loaded machine.
    let Some(f) = sending_fixture(backend, 2, |c| c.campaign_window = 100, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let api = manager(&f).await;
    let (id, _) = draft(app, &api, 20, 0).await;
    start(app, &api, &id, 20).await;
    wait_campaign(app, &api, &id, 180, |c| {
        outcome(c, "pending") == 0 && c["counters"]["sent"].as_u64().unwrap() >= 2
    })
    .await;
    // The recipient the dispatcher takes last is still waiting: it writes STOP.
    // The outbox is taken in order of acceptance time, then message id; the
    // campaign accepts its recipients concurrently, so `seq` says nothing of it.
    let csv = api
        .get(app, &format!("/v1/campaigns/{id}/outcomes.csv"))
        .await
        .text()
        .await
        .unwrap();
    let mut waiting = Vec::new();
    for line in csv
        .lines()
        .filter(|l| l.split(',').nth(2) == Some("queued"))
    {
        let f: Vec<&str> = line.split(',').collect();
        let (contact_id, message_id) = (f[1].to_owned(), f[5].to_owned());
        let message: Value = api
            .get(app, &format!("/v1/messages/{message_id}"))
            .await
            .json()
            .await
            .unwrap();
        let accepted: chrono::DateTime<chrono::Utc> =
            message["created_at"].as_str().unwrap().parse().unwrap();
        waiting.push(((accepted, message_id), contact_id));
    }
    let contact_id = waiting
        .iter()
        .max_by(|a, b| a.0.cmp(&b.0))
        .expect("some still queued")
        .1
        .clone();
    let contact: Value = api
        .get(app, &format!("/v1/contacts/{contact_id}"))
        .await
        .json()
        .await
        .unwrap();
    let stopper = contact["phone"]
        .as_str()
        .unwrap()
        .trim_start_matches('+')
        .to_owned();
    f.inject(&stopper, "STOP").await;
    let done = wait_campaign(app, &api, &id, 240, |c| c["status"] == "completed").await;
    let by_phone = sends_by_phone(&f).await;
    assert!(
        !by_phone.contains_key(&stopper),
        "the send waiting in the outbox was withdrawn"
    );
    assert_eq!(by_phone.len(), 19, "{done}");
    assert_eq!(outcome(&done, "opted_out"), 1, "{done}");
}

async fn the_messaging_tier_holds_over_a_rolling_24_hours(backend: Backend) {
    let Some(f) = sending_fixture(backend, 1000, |_| {}, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let api = manager(&f).await;
    let path = format!("/v1/channels/{}/messaging-tier", f.channel.id);
    let tier: Value = api.get(app, &path).await.json().await.unwrap();
    assert_eq!(tier["tier"], "unlimited");
    let bad = api
        .send(
            app,
            reqwest::Method::PUT,
            &path,
            Some(json!({"tier": "2k"})),
            &[],
        )
        .await;
    assert!(
        assert_problem(bad, 422).await["detail"]
            .as_str()
            .unwrap()
            .contains("250, 1k")
    );
    let res = api
        .send(
            app,
            reqwest::Method::PUT,
            &path,
            Some(json!({"tier": "250"})),
            &[],
        )
        .await;
    assert_eq!(res.status(), 200);

    let (id, _) = draft(app, &api, 300, 0).await;
    start(app, &api, &id, 300).await;
    // Generous waits: the whole suite shares two cores.
    // The clock ticks while waiting (at most minutes of app time in all,
    // far less than the day the tier counts).
    let tick = chrono::Duration::milliseconds(200);
    let held =
        wait_campaign_ticking(app, &api, &id, 180, tick, |c| c["counters"]["sent"] == 250).await;
    assert_eq!(held["status"], "running");
    // It stays at 250 while the day has not passed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.clock.advance(chrono::Duration::hours(23));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let c = wait_campaign(app, &api, &id, 5, |_| true).await;
    assert_eq!(c["counters"]["sent"], 250, "{c}");
    assert_eq!(outcome(&c, "pending"), 50, "{c}");
    // A rolling day after the first sends, the rest go.
    app.clock
        .advance(chrono::Duration::hours(1) + chrono::Duration::seconds(1));
    let done =
        wait_campaign_ticking(app, &api, &id, 180, tick, |c| c["status"] == "completed").await;
    assert_eq!(done["counters"]["sent"], 300, "{done}");
    assert_eq!(sends_by_phone(&f).await.len(), 300);
}
