//! Scheduled backups in `serve`: written at the interval, verifiable, aged out
//! by the time in their names, and failures counted and shown by `/readyz`.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use waypost_server::backup::{generate_identity, verify_backup};
use waypost_store::Backend;

use crate::helpers::{TestApp, spawn_app_with};
use crate::on_both_backends;

on_both_backends!(
    scheduled_backups_are_written_kept_and_aged_out,
    failing_backups_are_counted_and_shown
);

fn names(dir: &Path, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix) && n.ends_with(".backup"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Polls until `done` holds (the scheduler ticks every second in these tests).
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..150 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn readiness(app: &TestApp) -> serde_json::Value {
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn scheduled_backups_are_written_kept_and_aged_out(backend: Backend) {
    let keys = tempfile::tempdir().unwrap();
    let identity = keys.path().join("backup.key");
    let public = generate_identity(&identity).unwrap();
    let dir = keys.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let today = Utc::now();
    let old_daily = format!(
        "daily-{}.backup",
        (today - chrono::Duration::days(91)).format("%Y%m%d")
    );
    let kept_daily = format!(
        "daily-{}.backup",
        (today - chrono::Duration::days(89)).format("%Y%m%d")
    );
    let old_hourly = format!(
        "hourly-{}.backup",
        (today - chrono::Duration::hours(49)).format("%Y%m%dT%H%M%SZ")
    );
    for name in [&old_daily, &kept_daily, &old_hourly] {
        std::fs::write(dir.join(name), b"old").unwrap();
    }
    let backup_dir = dir.clone();
    let Some(app) = spawn_app_with(backend, move |c| {
        c.backup_dir = Some(backup_dir);
        c.backup_recipient = Some(public);
        c.backup_interval_secs = 1;
    })
    .await
    else {
        return;
    };

    let first = format!("hourly-{}.backup", app.clock_now().format("%Y%m%dT%H%M%SZ"));
    let first_daily = format!("daily-{}.backup", app.clock_now().format("%Y%m%d"));
    wait_for("the first backup and the first clean-up", || {
        names(&dir, "hourly-") == [first.clone()] && !names(&dir, "daily-").contains(&old_daily)
    })
    .await;
    let hourly = names(&dir, "hourly-");
    let daily = names(&dir, "daily-");
    assert_eq!(
        daily,
        [kept_daily.clone(), first_daily],
        "the 91-day-old daily backup is removed, the 89-day-old one kept"
    );
    let summary = verify_backup(&dir.join(&hourly[0]), &identity).unwrap();
    assert!(summary.rows > 0, "{summary:?}");
    verify_backup(&dir.join(&daily[1]), &identity).unwrap();

    let ready = readiness(&app).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["backups"]["enabled"], true);
    assert!(ready["backups"]["last_success_at"].is_string(), "{ready}");
    assert!(ready["backups"]["last_error"].is_null(), "{ready}");
    let metrics = app.metrics().await.text().await.unwrap();
    assert!(
        metrics.contains("waypost_backups_total{outcome=\"success\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("waypost_backup_last_success_timestamp_seconds"));

    // An hour later the next backup is due; three days later the first two are
    // past the 48 hours hourly backups are kept, and a new day has its daily.
    app.clock.advance(chrono::Duration::hours(1));
    wait_for("the second backup", || names(&dir, "hourly-").len() == 2).await;
    app.clock.advance(chrono::Duration::days(3));
    let later = app.clock_now();
    let newest = format!("hourly-{}.backup", later.format("%Y%m%dT%H%M%SZ"));
    wait_for("the old hourly backups to go", || {
        names(&dir, "hourly-") == [newest.clone()]
    })
    .await;
    let daily = names(&dir, "daily-");
    assert!(daily.contains(&format!("daily-{}.backup", later.format("%Y%m%d"))));
    assert!(!daily.contains(&kept_daily), "now past 90 days: {daily:?}");
}

async fn failing_backups_are_counted_and_shown(backend: Backend) {
    let keys = tempfile::tempdir().unwrap();
    let public = generate_identity(&keys.path().join("backup.key")).unwrap();
    // A regular file where the directory should be: no backup can be written,
    // whoever runs the tests.
    let not_a_dir = keys.path().join("not-a-dir");
    std::fs::write(&not_a_dir, b"file").unwrap();
    let Some(app) = spawn_app_with(backend, move |c| {
        c.backup_dir = Some(not_a_dir);
        c.backup_recipient = Some(public);
        c.backup_interval_secs = 1;
    })
    .await
    else {
        return;
    };
    let mut ready = serde_json::Value::Null;
    for _ in 0..150 {
        ready = readiness(&app).await;
        if ready["backups"]["last_error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ready["status"], "ready",
        "a failing backup leaves the node ready"
    );
    assert!(ready["backups"]["last_error"].is_string(), "{ready}");
    assert!(ready["backups"]["last_error_at"].is_string(), "{ready}");
    assert!(ready["backups"]["last_success_at"].is_null(), "{ready}");
    let metrics = app.metrics().await.text().await.unwrap();
    assert!(
        metrics.contains("waypost_backups_total{outcome=\"failure\"}"),
        "{metrics}"
    );
}
