//! Tamper evidence: every kind of edit to the stored audit log is detected.

use serde_json::json;
use waypost_core::audit::{Actor, chain_name};
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_server::audit_chain::{checkpoint_chains, verify_chain_in_store};
use waypost_store::Backend;

use crate::encryption::create_workspace;
use crate::helpers::{TestApp, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    an_intact_log_verifies_and_its_key_is_published,
    an_edited_field_is_detected,
    a_deleted_event_is_detected,
    reordered_events_are_detected,
    a_truncated_tail_is_detected_by_the_checkpoint,
    an_altered_checkpoint_is_detected,
);

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

/// A workspace chain of 6 events with a signed checkpoint at its head; returns the chain name.
async fn logged(app: &TestApp) -> String {
    let ws: WorkspaceId = create_workspace(app, "Audited").await;
    for i in 0..5 {
        let event = NewAuditEvent::new(Some(ws), Actor::User("usr_1".into()), "test.action")
            .details(json!({"i": i}));
        app.state.store.append_audit_event(event).await.unwrap();
    }
    let key = app.state.keys.audit_signing_key();
    assert!(
        checkpoint_chains(app.state.store.as_ref(), &key, app.clock_now())
            .await
            .unwrap()
            >= 1
    );
    chain_name(Some(ws))
}

async fn problem(app: &TestApp, chain: &str) -> Option<String> {
    let key = app.state.keys.audit_signing_key().verifying_key();
    verify_chain_in_store(app.state.store.as_ref(), chain, &key)
        .await
        .unwrap()
        .problem
}

const UNLOCK: &str = "DROP TRIGGER audit_events_write_once";

fn unlock(app: &TestApp) -> String {
    match app.state.store.backend() {
        Backend::Sqlite => format!("{UNLOCK};"),
        Backend::Postgres => format!("{UNLOCK} ON audit_events;"),
    }
}

async fn an_intact_log_verifies_and_its_key_is_published(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let chain = logged(&app).await;
    let key = app.state.keys.audit_signing_key().verifying_key();
    let report = verify_chain_in_store(app.state.store.as_ref(), &chain, &key)
        .await
        .unwrap();
    assert_eq!(
        (report.events, report.checkpoints, report.problem),
        (6, 1, None)
    );
    let published: serde_json::Value = app
        .get("/v1/audit-events/public-key")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(published["algorithm"], "Ed25519");
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(published["public_key"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, key.as_bytes());
    // Another key does not accept this server's checkpoints.
    let stranger = waypost_crypto::MasterKey::generate()
        .audit_signing_key()
        .verifying_key();
    let report = verify_chain_in_store(app.state.store.as_ref(), &chain, &stranger)
        .await
        .unwrap();
    assert!(report.problem.unwrap().contains("other than this server's"));
}

async fn an_edited_field_is_detected(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let chain = logged(&app).await;
    raw(
        &app,
        &format!(
            "{} UPDATE audit_events SET action = 'forged' WHERE seq = 3;",
            unlock(&app)
        ),
    )
    .await;
    let p = problem(&app, &chain).await.expect("detected");
    assert!(
        p.contains("seq 3") && p.contains("hash does not match"),
        "{p}"
    );
}

async fn a_deleted_event_is_detected(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let chain = logged(&app).await;
    raw(&app, "DELETE FROM audit_events WHERE seq = 2;").await;
    let p = problem(&app, &chain).await.expect("detected");
    assert!(p.contains("expected seq 2, found 3"), "{p}");
}

async fn reordered_events_are_detected(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let chain = logged(&app).await;
    raw(
        &app,
        &format!(
            "{} UPDATE audit_events SET seq = 1000000 WHERE seq = 2; UPDATE audit_events SET seq = 2 WHERE seq = 3; \
             UPDATE audit_events SET seq = 3 WHERE seq = 1000000;",
            unlock(&app)
        ),
    )
    .await;
    let p = problem(&app, &chain).await.expect("detected");
    assert!(p.contains("seq 2"), "{p}");
}

async fn a_truncated_tail_is_detected_by_the_checkpoint(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let chain = logged(&app).await;
    raw(&app, "DELETE FROM audit_events WHERE seq >= 5;").await;
    let p = problem(&app, &chain).await.expect("detected");
    assert!(
        p.contains("checkpoint at seq 6") && p.contains("removed from the tail"),
        "{p}"
    );
}

async fn an_altered_checkpoint_is_detected(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let chain = logged(&app).await;
    raw(&app, "UPDATE audit_checkpoints SET seq = 4;").await;
    let p = problem(&app, &chain).await.expect("detected");
    assert!(p.contains("signature does not verify"), "{p}");
}
