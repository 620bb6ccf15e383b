//! Campaign control: Meta pausing the template, or rating the number's
//! quality red, pauses the campaign with a `campaign.paused` event saying why; a member pauses, resumes and cancels
//! (audited); a restart of the server resumes a campaign where it stopped,
//! with nobody sent twice.

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::campaign_sending::{
    draft, manager, outcome, phone, sending_fixture, sends_by_phone, start, wait_campaign,
};
use crate::helpers::{assert_problem, spawn_with};
use crate::on_both_backends;
use crate::users::audit_actions;

on_both_backends!(
    meta_pausing_the_template_pauses_the_campaign,
    a_quality_drop_to_red_pauses_the_campaign,
    a_high_block_rate_pauses_the_campaign,
    members_pause_resume_and_cancel,
    a_restart_resumes_the_campaign_where_it_stopped,
    a_scheduled_start_and_quiet_hours_hold_sends_until_their_time,
);

async fn meta_pausing_the_template_pauses_the_campaign(backend: Backend) {
    let Some(f) = sending_fixture(backend, 10, |c| c.campaign_window = 5, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let api = manager(&f).await;
    let (id, _) = draft(app, &api, 60, 0).await;
    start(app, &api, &id, 60).await;
    wait_campaign(app, &api, &id, 180, |c| {
        c["counters"]["sent"].as_u64().unwrap() >= 3
    })
    .await;
    let templates: Value = api.get(app, "/v1/templates").await.json().await.unwrap();
    let provider_id = templates["data"][0]["provider_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .client
        .put(format!(
            "{}/_sandbox/templates/{provider_id}/status",
            f.sandbox.base_url()
        ))
        .bearer_auth(f.sandbox.control_token())
        .json(&json!({"status": "PAUSED", "reason": "LOW_QUALITY"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let paused = wait_campaign(app, &api, &id, 180, |c| c["status"] == "paused").await;
    assert_eq!(paused["pause_reason"], "template_paused");
    // What was queued drains; nothing more is fed.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let later = wait_campaign(app, &api, &id, 5, |_| true).await;
    let sent = later["counters"]["sent"].as_u64().unwrap();
    assert!(sent < 60, "{later}");
    // Sends the provider refused once the template was paused count as failed (132015).
    assert_eq!(
        outcome(&later, "pending") + sent + outcome(&later, "failed"),
        60,
        "{later}"
    );
    let events = app
        .state
        .store
        .customer_events_after(&f.ws.to_string(), 0, 100_000)
        .await
        .unwrap();
    let paused_events: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "campaign.paused")
        .collect();
    assert_eq!(paused_events.len(), 1);
    assert_eq!(paused_events[0].subject_id.as_deref(), Some(id.as_str()));
    let actions = audit_actions(app, Some(f.ws)).await;
    assert!(actions.iter().any(|a| a == "campaign.paused"));
}

async fn members_pause_resume_and_cancel(backend: Backend) {
    let Some(f) = sending_fixture(backend, 10, |c| c.campaign_window = 5, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let api = manager(&f).await;
    let (id, _) = draft(app, &api, 60, 0).await;
    let p = assert_problem(
        api.post(app, &format!("/v1/campaigns/{id}/pause"), json!({}))
            .await,
        409,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("draft"), "{p}");
    start(app, &api, &id, 60).await;
    wait_campaign(app, &api, &id, 180, |c| {
        c["counters"]["sent"].as_u64().unwrap() >= 2
    })
    .await;
    let res = api
        .post(app, &format!("/v1/campaigns/{id}/pause"), json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let paused: Value = res.json().await.unwrap();
    assert_eq!(paused["status"], "paused");
    assert_eq!(paused["pause_reason"], "manual");
    // Whatever was waiting in the outbox goes; then nothing moves.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let a = wait_campaign(app, &api, &id, 5, |_| true).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let b = wait_campaign(app, &api, &id, 5, |_| true).await;
    assert_eq!(a["counters"]["sent"], b["counters"]["sent"], "{b}");
    assert!(outcome(&b, "pending") > 0);

    let res = api
        .post(app, &format!("/v1/campaigns/{id}/resume"), json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let before = b["counters"]["sent"].as_u64().unwrap();
    wait_campaign(app, &api, &id, 180, |c| {
        c["counters"]["sent"].as_u64().unwrap() >= before + 3
    })
    .await;
    let res = api
        .post(app, &format!("/v1/campaigns/{id}/cancel"), json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let cancelled = wait_campaign(app, &api, &id, 10, |c| outcome(c, "queued") == 0).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert!(outcome(&cancelled, "cancelled") > 0, "{cancelled}");
    assert_eq!(outcome(&cancelled, "pending"), 0);
    assert_eq!(
        outcome(&cancelled, "cancelled") + cancelled["counters"]["sent"].as_u64().unwrap(),
        60,
        "{cancelled}"
    );
    let again = api
        .post(app, &format!("/v1/campaigns/{id}/resume"), json!({}))
        .await;
    assert_eq!(again.status(), 409);
    let actions = audit_actions(app, Some(f.ws)).await;
    for a in [
        "campaign.started",
        "campaign.paused",
        "campaign.resumed",
        "campaign.cancelled",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not audited");
    }
}

async fn a_restart_resumes_the_campaign_where_it_stopped(backend: Backend) {
    let Some(f) = sending_fixture(backend, 20, |c| c.campaign_window = 10, |_| {}).await else {
        return;
    };
    let api = manager(&f).await;
    let (id, _) = draft(&f.app, &api, 120, 0).await;
    start(&f.app, &api, &id, 120).await;
    wait_campaign(&f.app, &api, &id, 180, |c| {
        c["counters"]["sent"].as_u64().unwrap() >= 20
    })
    .await;

    let crate::messaging_fixture::Fixture {
        app,
        sandbox,
        key,
        ws,
        channel,
    } = f;
    let elapsed = app.clock_now() - chrono::Utc::now();
    let (config, db, dir) = (app.config.clone(), app.db.clone(), app.data_dir.clone());
    app.stop().await.unwrap();
    let app = spawn_with(config, db, dir).await;
    app.clock.advance(elapsed);
    let f = crate::messaging_fixture::Fixture {
        app,
        sandbox,
        key,
        ws,
        channel,
    };
    let before = sends_by_phone(&f).await.len();
    assert!(before < 120, "the restart came before the end");
    // The number's sliding window still holds the sends before the restart, so
    // the sandbox may answer 130429: the sender waits for the dispatcher's
    // backoff, which runs on the app's clock; move it along.
    let clock = f.app.clock.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            clock.advance(chrono::Duration::milliseconds(500));
        }
    });
    let done = wait_campaign(&f.app, &api, &id, 240, |c| {
        c["status"] == "completed" && c["counters"]["sent"] == 120
    })
    .await;
    ticker.abort();
    let by_phone = sends_by_phone(&f).await;
    assert_eq!(by_phone.len(), 120, "{done}");
    assert!(by_phone.values().all(|n| *n == 1), "nobody was sent twice");
}

async fn a_high_block_rate_pauses_the_campaign(backend: Backend) {
    // Every third recipient has stopped marketing from the business (Meta's 131050).
    let Some(f) = sending_fixture(
        backend,
        10,
        |c| {
            c.campaign_window = 5;
            c.campaign_opt_out_min_sent = 10;
            c.campaign_opt_out_threshold = 0.2;
        },
        |s| {
            for i in (0..60).step_by(3) {
                s.users.insert(
                    phone(i).trim_start_matches('+').to_owned(),
                    waypost_sandbox::UserConfig {
                        stopped_marketing: true,
                        ..Default::default()
                    },
                );
            }
        },
    )
    .await
    else {
        return;
    };
    let app = &f.app;
    let api = manager(&f).await;
    let (id, _) = draft(app, &api, 60, 0).await;
    start(app, &api, &id, 60).await;
    let paused = wait_campaign(app, &api, &id, 180, |c| c["status"] == "paused").await;
    assert_eq!(paused["pause_reason"], "opt_out_rate", "{paused}");
    assert!(outcome(&paused, "pending") > 0, "{paused}");
    assert!(
        paused["counters"]["failed_codes"]["131050"]
            .as_u64()
            .unwrap()
            >= 2,
        "{paused}"
    );
    let events = app
        .state
        .store
        .customer_events_after(&f.ws.to_string(), 0, 100_000)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "campaign.paused"
                && e.subject_id.as_deref() == Some(id.as_str()))
    );
}

async fn set_quality(f: &crate::messaging_fixture::Fixture, rating: &str) {
    let res = f
        .app
        .client
        .put(format!(
            "{}/_sandbox/numbers/{}/quality",
            f.sandbox.base_url(),
            f.channel.phone_number_id
        ))
        .bearer_auth(f.sandbox.control_token())
        .json(&json!({ "rating": rating }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn a_quality_drop_to_red_pauses_the_campaign(backend: Backend) {
    let Some(f) = sending_fixture(backend, 10, |c| c.campaign_window = 5, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let api = manager(&f).await;
    let (id, _) = draft(app, &api, 60, 0).await;
    start(app, &api, &id, 60).await;
    wait_campaign(app, &api, &id, 180, |c| {
        c["counters"]["sent"].as_u64().unwrap() >= 3
    })
    .await;
    // Meta's phone_number_quality_update webhook: FLAGGED.
    set_quality(&f, "RED").await;
    let paused = wait_campaign(app, &api, &id, 180, |c| c["status"] == "paused").await;
    assert_eq!(paused["pause_reason"], "quality_red");
    let actions = audit_actions(app, Some(f.ws)).await;
    assert!(
        actions.iter().any(|a| a == "channel.quality_changed"),
        "{actions:?}"
    );
    // Resuming while the number is still red pauses it again.
    let res = api
        .post(app, &format!("/v1/campaigns/{id}/resume"), json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let again = wait_campaign(app, &api, &id, 180, |c| {
        c["status"] == "paused" && c["pause_reason"] == "quality_red"
    })
    .await;
    assert!(outcome(&again, "pending") > 0, "{again}");
    // Once Meta unflags the number, a resume sends the rest, each once.
    set_quality(&f, "GREEN").await;
    let mut resumed = false;
    for _ in 0..100 {
        if app
            .state
            .store
            .channel_quality(&f.channel.id)
            .await
            .unwrap()
            .as_deref()
            != Some("RED")
        {
            resumed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(resumed, "the UNFLAGGED webhook never arrived");
    let res = api
        .post(app, &format!("/v1/campaigns/{id}/resume"), json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let done = wait_campaign(app, &api, &id, 180, |c| c["status"] == "completed").await;
    assert_eq!(done["counters"]["sent"], 60, "{done}");
    assert!(sends_by_phone(&f).await.values().all(|n| *n == 1));
}

/// A start at a later time waits as `scheduled` with nothing sent; quiet
/// hours hold every send until they end (the simulated clock moves on).
async fn a_scheduled_start_and_quiet_hours_hold_sends_until_their_time(backend: Backend) {
    use chrono::Timelike;
    let Some(f) = sending_fixture(backend, 10, |c| c.campaign_window = 5, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let api = manager(&f).await;
    let (id, _) = draft(app, &api, 8, 0).await;
    let later = app.clock_now() + chrono::Duration::hours(2);
    let res = api
        .post(
            app,
            &format!("/v1/campaigns/{id}/start"),
            json!({"confirm_eligible": 8, "start_at": later}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let scheduled: Value = res.json().await.unwrap();
    assert_eq!(scheduled["status"], "scheduled", "{scheduled}");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let waiting = wait_campaign(app, &api, &id, 5, |_| true).await;
    assert_eq!(waiting["status"], "scheduled", "{waiting}");
    assert_eq!(waiting["counters"]["sent"], 0, "{waiting}");
    assert!(sends_by_phone(&f).await.is_empty(), "sent before its time");

    // Quiet hours: the current UTC hour and the next; nothing goes out until they end.
    let segments: Value = api.get(app, "/v1/segments").await.json().await.unwrap();
    let res = api
        .post(
            app,
            "/v1/campaigns",
            json!({"name": "Quiet", "segment_id": segments["data"][0]["id"],
                "template": {"name": "promo", "language": "en_US"},
                "parameters": {"body": [{"field": "name"}]}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let id2 = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hour = app.clock_now().hour();
    let res = api
        .post(
            app,
            &format!("/v1/campaigns/{id2}/start"),
            json!({"confirm_eligible": 8, "time_zone": "UTC",
                   "quiet_hours": {"from_hour": hour, "to_hour": (hour + 2) % 24}}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let quiet = wait_campaign(app, &api, &id2, 5, |_| true).await;
    assert_eq!(quiet["counters"]["sent"], 0, "{quiet}");
    assert!(sends_by_phone(&f).await.is_empty(), "sent in quiet hours");

    // Two hours and a bit later: the scheduled campaign starts and quiet hours are over.
    app.clock.advance(chrono::Duration::minutes(125));
    for campaign in [&id, &id2] {
        let done = wait_campaign(app, &api, campaign, 180, |c| c["status"] == "completed").await;
        assert_eq!(done["counters"]["sent"], 8, "{done}");
    }
    let sends = sends_by_phone(&f).await;
    assert!(
        sends.len() == 8 && sends.values().all(|n| *n == 2),
        "each recipient once per campaign: {sends:?}"
    );
    let actions = audit_actions(app, Some(f.ws)).await;
    assert!(actions.iter().any(|a| a == "campaign.began"), "{actions:?}");
}
