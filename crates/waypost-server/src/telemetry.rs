//! Logs (JSON lines through `tracing`) and the Prometheus metrics recorder.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; later calls are ignored (tests start many apps).
pub fn init_logging(format: LogFormat, filter: &str) {
    let mut filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // webauthn-rs logs ceremony state, challenges and credentials at debug and
    // trace; keep them out of the logs whatever level the operator asks for.
    for directive in ["webauthn_rs=warn", "webauthn_rs_core=warn"] {
        filter = filter.add_directive(directive.parse().expect("a valid directive"));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A scan takes tens of microseconds: the request buckets would put them all in the first.
const SCAN_LATENCY_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
];

/// The process-wide recorder (metrics macros write to one global).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("bucket list is not empty")
                // A full-name matcher wins over the suffix one.
                .set_buckets_for_metric(
                    Matcher::Full("waypost_shield_scan_duration_seconds".into()),
                    SCAN_LATENCY_BUCKETS,
                )
                .expect("bucket list is not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            metrics::describe_counter!(
                "waypost_http_requests_total",
                "HTTP requests by method, route and status"
            );
            metrics::describe_histogram!(
                "waypost_http_request_duration_seconds",
                metrics::Unit::Seconds,
                "HTTP request latency by method, route and status"
            );
            metrics::describe_counter!(
                "waypost_shield_scans_total",
                "Messages scanned by the shield, by verdict label"
            );
            metrics::describe_histogram!(
                "waypost_shield_scan_duration_seconds",
                metrics::Unit::Seconds,
                "Time the shield spends scanning one message"
            );
            metrics::gauge!("waypost_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

pub fn record_request(method: &str, route: &str, status: u16, latency: Duration) {
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("waypost_http_requests_total", &labels).increment(1);
    metrics::histogram!("waypost_http_request_duration_seconds", &labels)
        .record(latency.as_secs_f64());
}
