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

/// Filters, cursor pagination and the JSON-lines export.
mod reading {
    use super::*;
    use crate::users::*;

    on_both_backends!(audit_events_filter_page_and_export);

    async fn audit_events_filter_page_and_export(backend: Backend) {
        let Some(app) = spawn_app(backend).await else {
            return;
        };
        let a = owner(&app, "ana@example.com", "Acme").await;
        let s = login(&app, &a.email, PASSWORD).await;
        let (_, key) = api_key(
            &app,
            &s,
            json!({"name": "auditor", "scopes": ["audit:read"]}),
        )
        .await;
        for i in 0..600 {
            let event = NewAuditEvent::new(
                Some(a.workspace_id),
                Actor::ApiKey("key_bulk".into()),
                "bulk.write",
            )
            .target("thing", format!("t{}", i % 3));
            app.state.store.append_audit_event(event).await.unwrap();
        }
        let get = |q: String| {
            bearer_get(
                &app,
                &key,
                Box::leak(format!("/v1/audit-events{q}").into_boxed_str()),
            )
        };
        let page: serde_json::Value = get("?action=api_key.created".into())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["data"].as_array().unwrap().len(), 1);
        let page: serde_json::Value = get(format!("?actor={}&limit=500", a.user_id))
            .await
            .json()
            .await
            .unwrap();
        assert!(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["actor_id"] == a.user_id.as_str())
        );
        let page: serde_json::Value = get("?target=t1&limit=500".into())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["data"].as_array().unwrap().len(), 200);
        let past = (chrono::Utc::now() - chrono::Duration::minutes(10))
            .to_rfc3339()
            .replace('+', "%2B");
        let page: serde_json::Value = get(format!("?until={past}")).await.json().await.unwrap();
        assert!(page["data"].as_array().unwrap().is_empty());
        let page: serde_json::Value = get(format!("?since={past}&limit=250"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["data"].as_array().unwrap().len(), 250);
        let cursor = page["next_cursor"].as_i64().expect("more pages");
        let next: serde_json::Value = get(format!("?since={past}&limit=250&after={cursor}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(next["data"][0]["seq"].as_i64().unwrap(), cursor + 1);

        let res = bearer_get(&app, &key, "/v1/audit-events/export").await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/x-ndjson");
        let body = res.text().await.unwrap();
        let lines: Vec<serde_json::Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let total = app
            .state
            .store
            .audit_chain(&chain_name(Some(a.workspace_id)), 0, 10_000)
            .await
            .unwrap()
            .len();
        assert_eq!(lines.len(), total, "the export pages through everything");
        assert!(
            lines
                .windows(2)
                .all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64())
        );

        app.clock.advance(chrono::Duration::minutes(6));
        let s = login(&app, &a.email, PASSWORD).await;
        app.clock.advance(chrono::Duration::minutes(6));
        let res = s.get(&app, "/v1/audit-events/export").await;
        assert_eq!(
            res.status(),
            403,
            "exports by a session need a recent re-authentication"
        );
    }
}
