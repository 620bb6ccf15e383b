//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::Operator;
use crate::backup_schedule::BackupStatus;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` while the process runs; `ready` when it can serve traffic.
    pub status: &'static str,
}

/// The readiness answer: ready, and what the scheduled backups last did
/// (shown for monitoring; a failing backup does not make the node unready).
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: &'static str,
    pub backups: BackupStatus,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process runs", body = Health)),
    security(()))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database answers and its migrations are current. The answer also shows
/// the scheduled backups' last success and last error.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "Database unreachable or migrations not current",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(()))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let database = state.store.ping().await;
    let migrations = match &database {
        Ok(()) => state
            .store
            .migration_status()
            .await
            .map(|s| waypost_store::migrations_current(&s)),
        Err(_) => Ok(false),
    };
    match (database, migrations) {
        (Ok(()), Ok(true)) => Ok(Json(Readiness {
            status: "ready",
            backups: state.backups.snapshot(state.config.backup_dir.is_some()),
        })),
        (db, migrations) => {
            let checks = json!({
                "database": if db.is_ok() { "ok" } else { "unreachable" },
                "migrations": match migrations { Ok(true) => "current", Ok(false) => "not current", Err(_) => "unknown" },
            });
            if let Err(e) = &db {
                tracing::warn!(error = %e, "readiness: database unreachable");
            }
            Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not-ready",
                "Not ready",
                "The service cannot serve traffic yet.",
            )
            .with("checks", checks)
            .with(
                "backups",
                json!(state.backups.snapshot(state.config.backup_dir.is_some())),
            )
            .into())
        }
    }
}

/// Prometheus text exposition: request counts and latencies by route and status,
/// database pool sizes, build information, open security incidents and the
/// hours left until each one's notification deadline, open security alerts.
/// It names incidents and endpoints, so on the main listener it needs an
/// operator token; `WAYPOST_METRICS_LISTEN` serves it without one on a
/// separate (private) address.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("operator_token" = [])),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn metrics(State(state): State<AppState>, _operator: Operator) -> impl IntoResponse {
    render(&state).await
}

/// `/metrics` on the separate metrics listener: no token (the address is the guard).
pub async fn metrics_open(State(state): State<AppState>) -> impl IntoResponse {
    render(&state).await
}

async fn render(state: &AppState) -> axum::response::Response {
    for pool in state.store.pool_stats() {
        metrics::gauge!("waypost_db_pool_connections", "pool" => pool.name, "state" => "open")
            .set(pool.size as f64);
        metrics::gauge!("waypost_db_pool_connections", "pool" => pool.name, "state" => "idle")
            .set(pool.idle as f64);
        metrics::gauge!("waypost_db_pool_max_connections", "pool" => pool.name)
            .set(pool.max as f64);
    }
    match state.store.open_alert_count().await {
        Ok(n) => metrics::gauge!("waypost_security_alerts_open").set(n as f64),
        Err(e) => tracing::warn!(error = %e, "cannot count open security alerts for metrics"),
    }
    match state.store.outbox_backlog().await {
        Ok((depth, oldest)) => {
            metrics::gauge!("waypost_outbox_depth").set(depth as f64);
            let age = oldest.map_or(0.0, |t| (state.clock.now() - t).num_seconds().max(0) as f64);
            metrics::gauge!("waypost_outbox_oldest_due_age_seconds").set(age);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the outbox backlog for metrics"),
    }
    if let Some(expiry) = state
        .config
        .tls_cert
        .as_deref()
        .and_then(certificate_expiry)
    {
        metrics::gauge!("waypost_tls_certificate_expiry_timestamp_seconds").set(expiry as f64);
    }
    let mut body = state.metrics.render();
    match crate::ops::incidents::metrics_text(state).await {
        Ok(text) => body.push_str(&text),
        // A scrape still answers; the missing series show the gap.
        Err(e) => tracing::warn!(error = %e, "cannot read open incidents for metrics"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// When the first certificate of the PEM file at `path` expires (unix seconds).
fn certificate_expiry(path: &std::path::Path) -> Option<i64> {
    let pem = std::fs::read(path).ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    Some(cert.validity().not_after.timestamp())
}
