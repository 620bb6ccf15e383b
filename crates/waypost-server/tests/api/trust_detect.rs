//! The detectors, run by the worker on the simulated clock: each fires on a
//! synthetic pattern; a normal week's counters replayed through the clock
//! raise nothing; credential stuffing is seen from real sign-in failures;
//! a high-severity burst suspends the key on every node within a second
//! where the workspace allows it. Alerts are listed, acknowledged (audited)
//! and sent as `security.alert` customer events.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use waypost_store::Backend;
use waypost_store::trust::SignalDelta;

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_with};
use crate::incidents::operator_token;
use crate::on_both_backends;
use crate::trust::assert_suspended;
use crate::users::*;

on_both_backends!(
    each_detector_fires_on_its_synthetic_pattern,
    a_normal_week_raises_no_alert,
    failed_sign_ins_from_one_network_are_credential_stuffing,
    a_high_severity_burst_suspends_the_key_on_every_node_within_a_second,
);

fn minute_now(app: &TestApp) -> i64 {
    app.clock_now().timestamp().div_euclid(60)
}

/// Waits until the worker has taken its first minute, so counters written
/// later are evaluated; returns the cursor.
async fn started(app: &TestApp) -> i64 {
    let t = Instant::now();
    loop {
        let c = app.state.store.detector_cursor().await.unwrap();
        if c != 0 {
            return c;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the detector worker never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Moves the clock past `minute` and waits until the worker evaluated it.
async fn evaluate_through(app: &TestApp, minute: i64) {
    let target = (minute + 1) * 60 + 10;
    let now = app.clock_now().timestamp();
    if target > now {
        app.clock.advance(chrono::Duration::seconds(target - now));
    }
    let t = Instant::now();
    while app.state.store.detector_done().await.unwrap() < minute {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "detectors did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn delta(
    kind: &'static str,
    id: &str,
    signal: &str,
    minute: i64,
    ws: Option<&str>,
    n: i64,
) -> SignalDelta {
    SignalDelta {
        scope_kind: kind,
        scope_id: id.to_owned(),
        signal: signal.to_owned(),
        minute,
        workspace_id: ws.map(str::to_owned),
        count: n,
    }
}

async fn operator_alerts(app: &TestApp, token: &str) -> Vec<Value> {
    app.client
        .get(format!("{}/v1/operator/security/alerts", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn each_detector_fires_on_its_synthetic_pattern(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let acme = owner(&app, "ana@example.com", "Acme").await;
    let ws = acme.workspace_id.to_string();
    let ws2 = owner(&app, "bob@example.com", "Bobco")
        .await
        .workspace_id
        .to_string();
    let ws3 = owner(&app, "cy@example.com", "Cyco")
        .await
        .workspace_id
        .to_string();
    let m = started(&app).await + 90;
    let w = Some(ws.as_str());
    let mut d = vec![
        // 6,000 sends in a minute from a workspace with no history (floor 500 × 10).
        delta("workspace", &ws, "send", m, w, 6_000),
        // 4,000 calls in a minute from a new key (floor 300 × 10).
        delta("api_key", "key_burst", "api_request", m, w, 4_000),
        // 40 of 100 sends failing on one channel.
        delta("channel", "chn_failing", "send", m, w, 100),
        delta("channel", "chn_failing", "provider_failure", m, w, 40),
        // 15 opt-outs for 100 sends in one workspace, 30 shield flags in another.
        delta("workspace", &ws2, "send", m, Some(&ws2), 100),
        delta("workspace", &ws2, "opt_out", m, Some(&ws2), 15),
        delta("workspace", &ws3, "send", m, Some(&ws3), 100),
        delta("workspace", &ws3, "shield_flagged", m, Some(&ws3), 30),
        // A user seen from a known network, a password change, then a new network.
        delta(
            "user",
            "usr_taken",
            "net:198.51.100.0/24",
            m - 2_000,
            None,
            1,
        ),
        delta("user", "usr_taken", "credential_change", m - 5, None, 1),
        delta("user", "usr_taken", "net:203.0.113.0/24", m, None, 1),
    ];
    // Six accounts failing from one network within ten minutes.
    for i in 0..6 {
        let pair = format!("192.0.2.0/24 unknown:{i:02}");
        d.push(delta(
            "network_user",
            &pair,
            "sign_in_failure",
            m - (i % 3),
            None,
            2,
        ));
    }
    // Two attempts every minute for 40 minutes: a script, not a person.
    for i in 0..40 {
        d.push(delta("user", "usr_bot", "sign_in_failure", m - i, None, 2));
    }
    app.state.store.add_signals(&d).await.unwrap();
    evaluate_through(&app, m).await;

    let (_, op) = operator_token(&app).await;
    let all = operator_alerts(&app, &op).await;
    let fired: Vec<(&str, &str)> = all
        .iter()
        .map(|a| {
            (
                a["detector"].as_str().unwrap(),
                a["entity"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    for (detector, entity) in [
        ("send_volume_spike", ws.as_str()),
        ("api_call_burst", "key_burst"),
        ("failure_rate_jump", "chn_failing"),
        ("opt_out_rate_jump", ws2.as_str()),
        ("shield_flag_ratio", ws3.as_str()),
        ("credential_stuffing", "192.0.2.0/24"),
        ("bot_sign_in_timing", "usr_bot"),
        ("new_network_after_credential_change", "usr_taken"),
    ] {
        assert!(
            fired.contains(&(detector, entity)),
            "{detector} on {entity} did not fire: {fired:?}"
        );
    }
    let takeover = all
        .iter()
        .find(|a| a["detector"] == "new_network_after_credential_change")
        .unwrap();
    assert_eq!(takeover["severity"], "high");
    let spike = all
        .iter()
        .find(|a| a["detector"] == "send_volume_spike")
        .unwrap();
    assert_eq!(spike["evidence"]["count"], 6000);
    assert_eq!(spike["severity"], "medium");

    // The workspace sees its own alerts, acknowledges one (audited), and got them as events.
    let s = login(&app, &acme.email, PASSWORD).await;
    let mine: Vec<Value> = s
        .get(&app, "/v1/security/alerts")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        mine.iter().all(|a| a["workspace_id"] == ws.as_str()),
        "{mine:?}"
    );
    assert_eq!(mine.len(), 3, "spike, key burst, failing channel: {mine:?}");
    let id = spike["id"].as_str().unwrap();
    let res = s
        .post(
            &app,
            &format!("/v1/security/alerts/{id}/acknowledge"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_problem(
        s.post(
            &app,
            &format!("/v1/security/alerts/{id}/acknowledge"),
            json!({}),
        )
        .await,
        404,
    )
    .await;
    let open: Vec<Value> = s
        .get(&app, "/v1/security/alerts?open=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open.len(), 2);
    let actions = audit_actions(&app, Some(acme.workspace_id)).await;
    assert!(actions.contains(&"security.alert".to_owned()));
    assert!(actions.contains(&"security.alert_acknowledged".to_owned()));
    let events = app
        .state
        .store
        .customer_events_after(&ws, 0, 1_000)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "security.alert")
            .count(),
        3
    );
    let metrics = app.metrics().await.text().await.unwrap();
    assert!(
        metrics.contains("waypost_security_alerts_open 7"),
        "{metrics}"
    );

    // A repeat of the pattern within the cooldown raises nothing new.
    let before = all.len();
    app.state
        .store
        .add_signals(&[delta("workspace", &ws, "send", m + 5, w, 9_000)])
        .await
        .unwrap();
    evaluate_through(&app, m + 5).await;
    assert_eq!(operator_alerts(&app, &op).await.len(), before);
}

/// A tiny deterministic generator, so the replayed week is the same every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: i64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n.max(1) as u64) as i64
    }
}

/// A week of ordinary traffic for two workspaces, each with a key, a channel
/// and three users: weekday business hours with noise, a daily 15-minute
/// campaign at ten times the usual rate, nights and weekends quiet, about 2 %
/// provider failures, 0.3 % opt-outs, 0.5 % shield flags, sign-ins twice a
/// day from each user's own network with an occasional typo, and one
/// password change followed by a sign-in from the usual network.
fn normal_week(start: i64, workspaces: &[String]) -> Vec<SignalDelta> {
    let mut rng = Lcg(7);
    let mut d = Vec::new();
    for minute in start..start + 7 * 24 * 60 {
        let day = (minute - start) / (24 * 60);
        let hour = ((minute - start) / 60) % 24;
        let weekday = day < 5;
        for (i, ws) in workspaces.iter().enumerate() {
            let w = Some(ws.as_str());
            let base = match (weekday, hour) {
                (true, 8..=19) => 40 + 30 * i as i64,
                (true, _) => 2,
                (false, 10..=16) => 10,
                _ => 0,
            };
            let campaign = weekday && hour == 10 && (minute - start) % 60 < 15;
            let sends = if campaign { base * 10 } else { base } + rng.next(base / 2 + 1);
            if sends == 0 {
                continue;
            }
            let key = format!("key_normal_{i}");
            let chn = format!("chn_normal_{i}");
            let failures = (sends * 2 + rng.next(100)) / 100;
            let opt_outs = i64::from(rng.next(1000) < sends * 3);
            let flagged = i64::from(rng.next(200) < sends);
            d.push(delta("workspace", ws, "send", minute, w, sends));
            d.push(delta("channel", &chn, "send", minute, w, sends));
            d.push(delta(
                "api_key",
                &key,
                "api_request",
                minute,
                w,
                sends + sends / 5,
            ));
            for (kind, id) in [("workspace", ws.as_str()), ("channel", chn.as_str())] {
                if failures > 0 {
                    d.push(delta(kind, id, "provider_failure", minute, w, failures));
                }
            }
            if opt_outs > 0 {
                d.push(delta("workspace", ws, "opt_out", minute, w, opt_outs));
            }
            if flagged > 0 {
                d.push(delta("workspace", ws, "shield_flagged", minute, w, flagged));
            }
        }
        if !weekday || !matches!((minute - start) % (24 * 60), 540 | 840) {
            continue;
        }
        for u in 0..6 {
            let user = format!("usr_normal_{u}");
            let net = format!("net:198.51.{u}.0/24");
            let at = minute + u;
            if rng.next(4) == 0 {
                d.push(delta("user", &user, "sign_in_failure", at, None, 1));
                let pair = format!("198.51.{u}.0/24 {user}");
                d.push(delta("network_user", &pair, "sign_in_failure", at, None, 1));
            }
            d.push(delta("user", &user, "sign_in", at + 1, None, 1));
            d.push(delta("user", &user, &net, at + 1, None, 1));
            if day == 2 && u == 0 && (minute - start) % (24 * 60) == 540 {
                d.push(delta("user", &user, "credential_change", at + 2, None, 1));
            }
        }
    }
    d
}

async fn a_normal_week_raises_no_alert(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = owner(&app, "ana@example.com", "Acme").await;
    let b = owner(&app, "bob@example.com", "Bobco").await;
    let start = started(&app).await + 1;
    let week = normal_week(
        start,
        &[a.workspace_id.to_string(), b.workspace_id.to_string()],
    );
    assert!(week.len() > 10_000, "a busy week: {}", week.len());
    for chunk in week.chunks(5_000) {
        app.state.store.add_signals(chunk).await.unwrap();
    }
    evaluate_through(&app, start + 7 * 24 * 60 - 1).await;
    let (_, op) = operator_token(&app).await;
    let alerts = operator_alerts(&app, &op).await;
    assert!(alerts.is_empty(), "false positives: {alerts:#?}");
    // The baselines learned the week (so they are not just the floors).
    let learned = app
        .state
        .store
        .baselines("send_volume_spike")
        .await
        .unwrap();
    assert_eq!(learned.len(), 2);
    assert!(learned.iter().all(|b| b.samples > 1_000), "{learned:?}");
    // The same detectors still see a real spike at the end of the week.
    let m = start + 7 * 24 * 60 + 5;
    let ws = a.workspace_id.to_string();
    app.state
        .store
        .add_signals(&[delta("workspace", &ws, "send", m, Some(&ws), 20_000)])
        .await
        .unwrap();
    evaluate_through(&app, m).await;
    let alerts = operator_alerts(&app, &op).await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["detector"], "send_volume_spike");
}

async fn failed_sign_ins_from_one_network_are_credential_stuffing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    started(&app).await;
    for i in 0..6 {
        let res = login_request(
            &app,
            json!({"email": format!("victim{i}@example.com"), "password": "not-the-password-123"}),
        )
        .await;
        assert_eq!(res.status(), 401);
    }
    let res = login_request(
        &app,
        json!({"email": "ana@example.com", "password": "wrong-password-1234"}),
    )
    .await;
    assert_eq!(res.status(), 401);
    // The counters reach the store within a flush (one second).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    evaluate_through(&app, minute_now(&app)).await;
    let (_, op) = operator_token(&app).await;
    let alerts = operator_alerts(&app, &op).await;
    let stuffing = alerts
        .iter()
        .find(|a| a["detector"] == "credential_stuffing")
        .unwrap_or_else(|| panic!("no stuffing alert: {alerts:#?}"));
    assert_eq!(stuffing["entity"]["kind"], "network");
    assert_eq!(stuffing["entity"]["id"], "127.0.0.0/24");
    assert_eq!(stuffing["evidence"]["accounts"], 7);
    assert!(
        !stuffing.to_string().contains("victim"),
        "no emails in evidence"
    );
    let res = app
        .client
        .post(format!(
            "{}/v1/operator/security/alerts/{}/acknowledge",
            app.address,
            stuffing["id"].as_str().unwrap()
        ))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        audit_actions(&app, None)
            .await
            .contains(&"security.alert_acknowledged".to_owned())
    );
}

async fn a_high_severity_burst_suspends_the_key_on_every_node_within_a_second(backend: Backend) {
    let Some(a) = spawn_app(backend).await else {
        return;
    };
    let mut config = a.config.clone();
    config.detection = false;
    let dir = tempfile::tempdir().unwrap();
    config.data_dir = dir.path().to_path_buf();
    let b = spawn_with(config, a.db.clone(), std::sync::Arc::new(dir)).await;
    let acme = owner(&a, "ana@example.com", "Acme").await;
    let ws = acme.workspace_id.to_string();
    let s = login(&a, &acme.email, PASSWORD).await;
    let (id, key) = api_key(&a, &s, json!({"name": "ci", "scopes": ["audit:read"]})).await;
    let (quiet_id, quiet_key) =
        api_key(&a, &s, json!({"name": "quiet", "scopes": ["audit:read"]})).await;
    let res = s
        .patch(&a, "/v1/security/policy", json!({"auto_suspend": true}))
        .await;
    assert_eq!(res.status(), 405, "the policy is set with PUT");
    let res = a
        .client
        .put(format!("{}/v1/security/policy", a.address))
        .header("cookie", &s.cookie)
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"auto_suspend": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let m = started(&a).await + 3;
    let ready = Instant::now();
    while b.state.lookups.is_empty() {
        assert_eq!(bearer_get(&b, &key, "/v1/audit-events").await.status(), 200);
        assert!(ready.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 13,000 calls in a minute: above 40 × the 300 floor, high severity.
    a.state
        .store
        .add_signals(&[
            delta("api_key", &id, "api_request", m, Some(&ws), 13_000),
            delta("api_key", &quiet_id, "api_request", m, Some(&ws), 200),
        ])
        .await
        .unwrap();
    evaluate_through(&a, m).await;
    let suspension = a
        .state
        .store
        .active_suspension("api_key", &id)
        .await
        .unwrap()
        .expect("the key was suspended automatically");
    let seen = Instant::now();
    assert_eq!(suspension.source, "automatic");
    assert!(suspension.alert_id.is_some());
    loop {
        let sent = seen.elapsed();
        let res = bearer_get(&b, &key, "/v1/audit-events").await;
        if res.status() == 403 {
            assert_suspended(res).await;
            break;
        }
        assert!(
            sent < Duration::from_secs(1),
            "node b served the key {sent:?} after suspension"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_suspended(bearer_get(&a, &key, "/v1/audit-events").await).await;
    assert_eq!(
        bearer_get(&b, &quiet_key, "/v1/audit-events")
            .await
            .status(),
        200
    );
    let actions = audit_actions(&a, Some(acme.workspace_id)).await;
    assert!(
        actions.contains(&"suspension.created".to_owned()),
        "{actions:?}"
    );
}
