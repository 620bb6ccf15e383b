//! Stored content as a usage metric (issue #23): with content retention on,
//! each retention pass sets the day's `storage.content_bytes` per channel to
//! the bytes of retained content held (as stored, encrypted); `GET /v1/usage`
//! shows it per day and a month's peak; once the content expires and is
//! purged, the day after holds none while the earlier day keeps its figure.

use std::time::Duration;

use serde_json::Value;
use waypost_store::Backend;

use crate::bsuid::get;
use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;
use crate::usage::usage_key;

on_both_backends!(retained_content_is_measured_daily_and_drops_when_purged);

/// Bytes of message content the workspace's rows hold, read directly.
async fn held_bytes(f: &Fixture) -> i64 {
    let sql = "SELECT CAST(COALESCE(SUM(LENGTH(content)), 0) AS BIGINT) FROM messages \
               WHERE workspace_id = $1 AND content IS NOT NULL";
    let ws = f.ws.to_string();
    match f.app.db.backend() {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&f.app.db.url).await.unwrap();
            sqlx::query_scalar(sql)
                .bind(ws)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&f.app.db.url).await.unwrap();
            sqlx::query_scalar(sql)
                .bind(ws)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    }
}

fn day(d: chrono::DateTime<chrono::Utc>) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// `storage.content_bytes` of each period of a report (absent: 0).
async fn stored(f: &Fixture, key: &str, query: &str) -> Vec<(String, Option<String>, i64)> {
    let (status, report) = get(f, key, &format!("/v1/usage?{query}")).await;
    assert_eq!(status, 200, "{report}");
    report["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p: &Value| {
            (
                p["period"].as_str().unwrap().to_owned(),
                p["channel_id"].as_str().map(str::to_owned),
                p["metrics"]["storage.content_bytes"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// Waits until the day's snapshot shows `bytes` on the fixture's channel (and nothing else).
async fn wait_day(f: &Fixture, key: &str, d: chrono::DateTime<chrono::Utc>, bytes: i64) {
    let query = format!("from={0}&to={0}&breakdown=channel", day(d));
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = stored(f, key, &query).await;
        seen.retain(|(_, _, b)| *b != 0);
        if seen.iter().any(|(_, _, b)| *b == bytes) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen,
        vec![(day(d), Some(f.channel.id.clone()), bytes)],
        "the day's snapshot, on the channel"
    );
}

async fn retained_content_is_measured_daily_and_drops_when_purged(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.retention_interval_secs = 1, |_| {}).await else {
        return;
    };
    let key = usage_key(&f).await;
    f.keep_content().await;
    f.open_window(USER).await;
    let wamid = f
        .inject(USER, "Where is my parcel? It was due on Monday.")
        .await;
    f.wait_inbound(&wamid).await;
    for i in 0..2 {
        let id = f
            .send_ok(USER, &format!("It left our depot today, sorry ({i})."))
            .await;
        f.wait_status(&id, &["sent", "delivered", "read"]).await;
    }
    let bytes = held_bytes(&f).await;
    assert!(bytes > 0, "content is retained");

    let first = f.app.clock_now();
    wait_day(&f, &key, first, bytes).await;
    // The next day holds the same: a month shows the peak, not the sum.
    f.app.clock.advance(chrono::Duration::days(1));
    wait_day(&f, &key, f.app.clock_now(), bytes).await;
    let months = format!(
        "from={}&to={}&granularity=month",
        day(first),
        day(f.app.clock_now())
    );
    let peaks = stored(&f, &key, &months).await;
    assert!(
        !peaks.is_empty() && peaks.iter().all(|(_, _, b)| *b == bytes),
        "{peaks:?}"
    );

    // A week later the content has expired; the purge leaves none held.
    f.app.clock.advance(chrono::Duration::days(7));
    let later = f.app.clock_now();
    let mut purged = false;
    for _ in 0..200 {
        if held_bytes(&f).await == 0 {
            purged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(purged, "the content was purged");
    // One more pass after the purge has set the later day.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let both = format!("from={}&to={}", day(first), day(later));
    let report = stored(&f, &key, &both).await;
    assert_eq!(
        report
            .iter()
            .find(|(p, _, _)| *p == day(first))
            .map(|r| r.2),
        Some(bytes),
        "the earlier day keeps its figure: {report:?}"
    );
    assert_eq!(
        report
            .iter()
            .find(|(p, _, _)| *p == day(later))
            .map_or(0, |r| r.2),
        0,
        "nothing held after the purge: {report:?}"
    );
}
