//! Health, readiness, metrics, OpenAPI, request ids, security headers, shutdown.

use waypost_store::Backend;

use crate::helpers::{assert_problem, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    health_and_readiness_answer,
    readiness_fails_when_migrations_are_not_current,
    metrics_count_requests_by_route_and_status,
    openapi_is_served_and_matches_the_committed_copy,
    request_ids_are_kept_when_sane_and_made_otherwise,
    security_headers_are_on_every_response,
    stopping_drains_and_returns_ok,
);

async fn health_and_readiness_answer(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
}

async fn readiness_fails_when_migrations_are_not_current(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Pretend a migration was never applied: the binary expects more than the database has.
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
            sqlx::query("DELETE FROM _sqlx_migrations")
                .execute(&pool)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
            sqlx::query("DELETE FROM _sqlx_migrations")
                .execute(&pool)
                .await
                .unwrap();
        }
    }
    let body = assert_problem(app.get("/readyz").await, 503).await;
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["migrations"], "not current");
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "liveness does not depend on the database"
    );
}

async fn metrics_count_requests_by_route_and_status(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.get("/healthz").await;
    app.get("/definitely-missing").await;
    let res = app.metrics().await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains(r#"waypost_http_requests_total{method="GET",route="/healthz",status="200"}"#),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    assert!(
        text.contains("waypost_http_request_duration_seconds_bucket{"),
        "latency is a histogram: {text}"
    );
    assert!(text.contains("waypost_db_pool_connections{"), "{text}");
    assert!(text.contains("waypost_build_info{version=\""), "{text}");
    assert!(
        !text.contains("definitely-missing"),
        "unmatched paths must not become labels"
    );
}

async fn openapi_is_served_and_matches_the_committed_copy(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), 200);
    let served: serde_json::Value = res.json().await.unwrap();
    assert_eq!(served["openapi"], "3.1.0");
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert!(
            served["paths"][path]["get"].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    let committed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");
    let committed = std::fs::read_to_string(committed_path)
        .expect("openapi.json is committed at the repository root");
    assert!(
        committed.trim_end() == waypost_server::openapi_json(),
        "openapi.json is out of date: run `cargo run -- openapi > openapi.json`"
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&committed).unwrap(),
        served
    );
    // Generated clients name their functions after operation ids.
    let mut ids = std::collections::BTreeMap::<String, usize>::new();
    for item in served["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            if let Some(id) = op["operationId"].as_str() {
                *ids.entry(id.to_owned()).or_default() += 1;
            }
        }
    }
    let repeated: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "operation ids used twice: {repeated:?}"
    );
}

async fn request_ids_are_kept_when_sane_and_made_otherwise(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let url = format!("{}/healthz", app.address);
    let res = app
        .client
        .get(&url)
        .header("x-request-id", "trace-42.a_b")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-42.a_b");
    let res = app
        .client
        .get(&url)
        .header("x-request-id", "<script>alert(1)</script>")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 26, "a fresh ULID replaces an unsafe id: {id}");
    let a = app.get("/healthz").await.headers()["x-request-id"].clone();
    let b = app.get("/healthz").await.headers()["x-request-id"].clone();
    assert_ne!(a, b);
}

async fn security_headers_are_on_every_response(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for path in ["/healthz", "/nope", "/openapi.json"] {
        let res = app.get(path).await;
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS without TLS"
        );
    }
}

async fn stopping_drains_and_returns_ok(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let address = app.address.clone();
    assert_eq!(app.get("/healthz").await.status(), 200);
    let started = std::time::Instant::now();
    app.stop().await.expect("clean stop");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "stopped within the grace period"
    );
    let after = reqwest::get(format!("{address}/healthz")).await;
    assert!(after.is_err(), "no longer accepting connections");
}

#[test]
fn readme_shows_the_permission_table() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let table = waypost_core::auth::permission_table_markdown();
    assert!(
        readme.contains(table.trim()),
        "README.md's permission table is out of date; it must contain:\n{table}"
    );
}
