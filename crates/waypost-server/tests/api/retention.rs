//! Retention: what goes and what stays at each boundary by the application
//! clock, dry runs that count exactly what a run removes, and audit chains
//! that still verify after their oldest events go — and fail when the signed
//! start is removed or forged.

use std::collections::HashMap;

use chrono::Duration as Days;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use waypost_core::audit::{Actor, chain_name};
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_server::audit_chain::{checkpoint_chains, verify_chain_in_store};
use waypost_server::retention::{Policy, run};
use waypost_store::Backend;
use waypost_store::messaging::MessagingSettings;

use crate::helpers::{TestApp, spawn_app};
use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;

on_both_backends!(
    records_go_at_their_boundaries,
    audit_chains_stay_verifiable_after_a_purge,
);

async fn pass(app: &TestApp, dry_run: bool) -> HashMap<&'static str, u64> {
    let policy = Policy::from_config(&app.state.config);
    run(
        app.state.store.as_ref(),
        &app.state.keys.audit_signing_key(),
        &policy,
        app.clock_now(),
        dry_run,
        &CancellationToken::new(),
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.kind, r.rows))
    .collect()
}

/// A conversation: an inbound text, an outbound reply read by the user, and a
/// status webhook for a message nobody knows. Returns the two message ids.
async fn conversation(f: &Fixture, unknown_wamid: &str) -> (String, String) {
    let inbound = f.inject(USER, "hello there").await;
    let inbound = f.wait_inbound(&inbound).await.id;
    let outbound = f.send_ok(USER, "hi, how can we help?").await;
    f.wait_status(&outbound, &["read"]).await;
    let status = json!({"statuses": [{"id": unknown_wamid, "status": "delivered",
        "timestamp": "1764230100", "recipient_id": USER}]});
    let res = f.post_webhook(&f.messages_body(status), None).await;
    assert_eq!(res.status(), 200);
    (inbound, outbound)
}

async fn message_status(f: &Fixture, id: &str) -> u16 {
    f.app
        .client
        .get(format!("{}/v1/messages/{id}", f.app.address))
        .bearer_auth(&f.key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn records_go_at_their_boundaries(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let store = &f.app.state.store;
    let t0 = f.app.clock_now();
    let (old_in, old_out) = conversation(&f, "wamid.UNKNOWN.OLD").await;
    f.app.clock.advance(Days::days(30));
    let (new_in, new_out) = conversation(&f, "wamid.UNKNOWN.NEW").await;
    // Let the webhook worker fan every event out, so they are eligible.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        store.unmatched_status_count(&f.channel.id).await.unwrap(),
        2
    );

    // One minute short of 90 days after the first conversation: nothing is due.
    let boundary = t0 + Days::days(90);
    f.app
        .clock
        .advance(boundary - Days::minutes(1) - f.app.clock_now());
    let before = pass(&f.app, true).await;
    for kind in ["message_metadata", "inbound_records", "customer_events"] {
        assert_eq!(before[kind], 0, "{kind} is not due yet: {before:?}");
    }
    assert_eq!(pass(&f.app, false).await["message_metadata"], 0);
    assert_eq!(message_status(&f, &old_out).await, 200);

    // Two minutes later the first conversation is past 90 days; the second is not.
    f.app.clock.advance(Days::minutes(2));
    let due = pass(&f.app, true).await;
    assert_eq!(due["message_metadata"], 2, "{due:?}");
    assert_eq!(due["inbound_records"], 1, "{due:?}");
    assert!(due["customer_events"] >= 3, "{due:?}");
    assert_eq!(due["audit_events"], 0, "audit events stay a year: {due:?}");
    let done = pass(&f.app, false).await;
    for kind in ["message_metadata", "inbound_records", "customer_events"] {
        assert_eq!(
            done[kind], due[kind],
            "the dry run counted what went: {kind}"
        );
    }
    for id in [&old_in, &old_out] {
        assert_eq!(message_status(&f, id).await, 404, "{id} purged");
    }
    for id in [&new_in, &new_out] {
        assert_eq!(message_status(&f, id).await, 200, "{id} kept");
    }
    let kept: Value = f
        .app
        .client
        .get(format!("{}/v1/messages/{new_out}", f.app.address))
        .bearer_auth(&f.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        kept["history"].as_array().is_some_and(|h| h.len() >= 3),
        "the kept message keeps its status history: {kept}"
    );
    assert_eq!(
        store.unmatched_status_count(&f.channel.id).await.unwrap(),
        1
    );
    let again = pass(&f.app, true).await;
    assert!(
        again.values().all(|n| *n == 0),
        "a second pass finds nothing: {again:?}"
    );

    // Content the workspace keeps longer than the metadata period keeps its message.
    let settings = MessagingSettings {
        content_retention: "days:365".parse().unwrap(),
        shield_policy: "flag".parse().unwrap(),
    };
    let audit = NewAuditEvent::new(Some(f.ws), Actor::System, "workspace.updated");
    store
        .update_messaging_settings(&f.ws.to_string(), &settings, audit)
        .await
        .unwrap();
    // Written behind the node's back: its next poll of the cache generation sees it.
    f.app.state.lookups.refresh().await.unwrap();
    let (kept_in, kept_out) = conversation(&f, "wamid.UNKNOWN.KEPT").await;
    f.app.clock.advance(Days::days(91));
    let due = pass(&f.app, true).await;
    assert_eq!(
        due["message_metadata"], 2,
        "only the content-less pair: {due:?}"
    );
    assert_eq!(pass(&f.app, false).await["message_metadata"], 2);
    for id in [&new_in, &new_out] {
        assert_eq!(message_status(&f, id).await, 404, "{id} purged");
    }
    for id in [&kept_in, &kept_out] {
        assert_eq!(
            message_status(&f, id).await,
            200,
            "{id} kept with its content"
        );
    }
}

async fn raw(app: &TestApp, sql: &str) {
    match app.state.store.backend() {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        }
    }
}

async fn problem(app: &TestApp, chain: &str) -> Option<String> {
    let key = app.state.keys.audit_signing_key().verifying_key();
    verify_chain_in_store(app.state.store.as_ref(), chain, &key)
        .await
        .unwrap()
        .problem
}

async fn audit_chains_stay_verifiable_after_a_purge(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let store = app.state.store.as_ref();
    let ws = WorkspaceId::new();
    let chain = chain_name(Some(ws));
    let now = app.clock_now();
    // Four events from 400 days ago, a signed checkpoint, then three recent ones.
    for (i, age) in [400, 399, 398, 367, 364, 10, 1].into_iter().enumerate() {
        let mut event = NewAuditEvent::new(Some(ws), Actor::User("usr_1".into()), "test.action")
            .details(json!({"i": i}));
        event.occurred_at = now - Days::days(age);
        store.append_audit_event(event).await.unwrap();
        if i == 3 {
            let key = app.state.keys.audit_signing_key();
            checkpoint_chains(store, &key, now).await.unwrap();
        }
    }
    let key = app.state.keys.audit_signing_key();
    checkpoint_chains(store, &key, now).await.unwrap();
    assert_eq!(problem(&app, &chain).await, None);

    // A day short of a year keeps everything from 364 days on: four events go.
    assert_eq!(pass(&app, true).await["audit_events"], 4);
    assert_eq!(pass(&app, false).await["audit_events"], 4);
    let kept = store.audit_chain(&chain, 0, 100).await.unwrap();
    assert_eq!(
        kept.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [5, 6, 7],
        "the chain keeps its tail"
    );
    assert_eq!(problem(&app, &chain).await, None, "still verifies");
    let start = store.audit_chain_start(&chain).await.unwrap().unwrap();
    assert_eq!(start.seq, 5);
    // Appending goes on from the kept head.
    store
        .append_audit_event(NewAuditEvent::new(Some(ws), Actor::System, "test.after"))
        .await
        .unwrap();
    assert_eq!(problem(&app, &chain).await, None);
    assert_eq!(pass(&app, true).await["audit_events"], 0);

    // A forged start (moved forward to hide event 5) does not verify.
    raw(
        &app,
        &format!("UPDATE audit_chain_starts SET seq = 6 WHERE chain = '{chain}'"),
    )
    .await;
    let p = problem(&app, &chain).await.expect("forged start detected");
    assert!(p.contains("start"), "{p}");
    // Without its start record, the cut chain does not verify either.
    raw(
        &app,
        &format!("DELETE FROM audit_chain_starts WHERE chain = '{chain}'"),
    )
    .await;
    assert!(
        problem(&app, &chain).await.is_some(),
        "missing start detected"
    );
}
