//! Scheduled backups in `serve`: every `backup_interval_secs` an encrypted
//! backup `hourly-YYYYMMDDTHHMMSSZ.backup` is written to `backup_dir`, and the
//! newest backup of each day is kept as `daily-YYYYMMDD.backup`. Files are aged
//! by the time in their name (not their mtime), so what is removed does not
//! depend on copies or restores touching files: hourly backups are kept
//! [`HOURLY_RETENTION_HOURS`], daily ones `backup_retention_days`.
//!
//! Failures are logged, counted (`waypost_backups_total{outcome}`) and shown by
//! `/readyz`; they never stop the server.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use waypost_store::Store;

use crate::config::Config;
use crate::guard::Clock;

/// Hourly backups older than this are removed; the daily ones cover the rest.
pub const HOURLY_RETENTION_HOURS: i64 = 48;
/// The scheduler looks at the clock at least this often.
const MAX_TICK: Duration = Duration::from_secs(60);
const HOURLY_FORMAT: &str = "%Y%m%dT%H%M%SZ";
const DAILY_FORMAT: &str = "%Y%m%d";

/// What the last scheduled backups did, for `/readyz`.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct BackupStatus {
    /// Whether `backup_dir` is set.
    pub enabled: bool,
    /// When the newest backup was written.
    pub last_success_at: Option<DateTime<Utc>>,
    /// The newest failure, when it is newer than the last success.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// Shared between the backup worker and `/readyz`.
#[derive(Debug, Default)]
pub struct BackupTracker(Mutex<BackupStatus>);

impl BackupTracker {
    pub fn snapshot(&self, enabled: bool) -> BackupStatus {
        let status = self.0.lock().unwrap_or_else(|e| e.into_inner());
        BackupStatus {
            enabled,
            ..status.clone()
        }
    }

    fn succeeded(&self, at: DateTime<Utc>) {
        let mut status = self.0.lock().unwrap_or_else(|e| e.into_inner());
        status.last_success_at = Some(at);
        status.last_error = None;
        status.last_error_at = None;
        metrics::counter!("waypost_backups_total", "outcome" => "success").increment(1);
        metrics::gauge!("waypost_backup_last_success_timestamp_seconds").set(at.timestamp() as f64);
    }

    fn failed(&self, at: DateTime<Utc>, error: String) {
        let mut status = self.0.lock().unwrap_or_else(|e| e.into_inner());
        status.last_error = Some(error);
        status.last_error_at = Some(at);
        metrics::counter!("waypost_backups_total", "outcome" => "failure").increment(1);
    }
}

/// Runs until shutdown when `backup_dir` is set; returns at once otherwise.
pub async fn scheduled_backups(
    config: Arc<Config>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    tracker: Arc<BackupTracker>,
    shutdown: CancellationToken,
) {
    let Some(dir) = config.backup_dir.clone() else {
        return;
    };
    let interval = Duration::from_secs(config.backup_interval_secs.max(1));
    let tick = interval.min(MAX_TICK);
    loop {
        let now = clock.now();
        match backup_if_due(&config, store.as_ref(), &dir, now).await {
            Ok(Some(path)) => {
                tracker.succeeded(now);
                tracing::info!(file = %path.display(), "scheduled backup written");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "scheduled backup failed; retrying later");
                tracker.failed(now, format!("{e:#}"));
            }
        }
        match remove_expired(&dir, now, config.backup_retention_days) {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(count = removed.len(), "removed expired backups")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot remove expired backups"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

/// Writes a backup when the newest one is at least one interval old.
async fn backup_if_due(
    config: &Config,
    store: &dyn Store,
    dir: &Path,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<PathBuf>> {
    let recipient = config
        .backup_recipient
        .as_deref()
        .context("WAYPOST_BACKUP_RECIPIENT is not set")?;
    let interval = chrono::Duration::seconds(config.backup_interval_secs.max(1) as i64);
    if let Some(newest) = newest_hourly(dir)
        && now - newest < interval
        && newest <= now
    {
        return Ok(None);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = dir.join(format!("hourly-{}.backup", now.format(HOURLY_FORMAT)));
    if let Err(e) = crate::backup::create_backup(store, recipient, &file, &|_| {}).await {
        // Unfinished files are also aged out by name, should this removal fail.
        let _ = std::fs::remove_file(file.with_extension("partial"));
        return Err(e);
    }
    let daily = dir.join(format!("daily-{}.backup", now.format(DAILY_FORMAT)));
    let partial = daily.with_extension("partial");
    std::fs::copy(&file, &partial)
        .and_then(|_| std::fs::rename(&partial, &daily))
        .with_context(|| format!("cannot write {}", daily.display()))?;
    Ok(Some(file))
}

/// The kind and time a backup file's name carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Named {
    Hourly(DateTime<Utc>),
    Daily(NaiveDate),
    /// An unfinished hourly backup, left by a crash or a failed write.
    Partial(DateTime<Utc>),
}

fn parse_name(name: &str) -> Option<Named> {
    if let Some(t) = name
        .strip_prefix("hourly-")
        .and_then(|n| n.strip_suffix(".partial"))
    {
        let t = NaiveDateTime::parse_from_str(t, HOURLY_FORMAT).ok()?;
        return Some(Named::Partial(t.and_utc()));
    }
    let stem = name.strip_suffix(".backup")?;
    if let Some(t) = stem.strip_prefix("hourly-") {
        let t = NaiveDateTime::parse_from_str(t, HOURLY_FORMAT).ok()?;
        return Some(Named::Hourly(t.and_utc()));
    }
    let d = stem.strip_prefix("daily-")?;
    NaiveDate::parse_from_str(d, DAILY_FORMAT)
        .ok()
        .map(Named::Daily)
}

fn named_files(dir: &Path) -> std::io::Result<Vec<(PathBuf, Named)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(named) = entry.file_name().to_str().and_then(parse_name) {
            out.push((entry.path(), named));
        }
    }
    Ok(out)
}

fn newest_hourly(dir: &Path) -> Option<DateTime<Utc>> {
    named_files(dir)
        .ok()?
        .into_iter()
        .filter_map(|(_, n)| match n {
            Named::Hourly(t) => Some(t),
            Named::Daily(_) | Named::Partial(_) => None,
        })
        .max()
}

/// One file in `backup_dir`, as the operator pages list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    pub name: String,
    /// `hourly`, `daily` or `unfinished`.
    pub kind: &'static str,
    /// The time its name carries (midnight UTC for daily backups).
    pub at: DateTime<Utc>,
    pub bytes: u64,
    pub path: PathBuf,
}

/// The backups in `dir`, newest first; an absent directory holds none.
pub fn list_backups(dir: &Path) -> std::io::Result<Vec<BackupFile>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for (path, named) in named_files(dir)? {
        let (kind, at) = match named {
            Named::Hourly(t) => ("hourly", t),
            Named::Partial(t) => ("unfinished", t),
            Named::Daily(d) => ("daily", d.and_time(chrono::NaiveTime::MIN).and_utc()),
        };
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push(BackupFile {
            name,
            kind,
            at,
            bytes,
            path,
        });
    }
    files.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.name.cmp(&b.name)));
    Ok(files)
}

/// When the scheduler writes the next backup: one interval after the newest
/// hourly one, or at its next look at the clock when that time has passed.
pub fn next_due(
    newest: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    interval_secs: u64,
) -> DateTime<Utc> {
    let interval = chrono::Duration::seconds(interval_secs.max(1) as i64);
    let tick = chrono::Duration::from_std(MAX_TICK.min(Duration::from_secs(interval_secs.max(1))))
        .unwrap_or(interval);
    match newest {
        Some(t) if t + interval > now => t + interval,
        _ => now + tick,
    }
}

/// Removes hourly backups (and unfinished ones) older than [`HOURLY_RETENTION_HOURS`] and daily ones
/// older than `retention_days`, by the time in their names. Returns what it removed.
pub fn remove_expired(
    dir: &Path,
    now: DateTime<Utc>,
    retention_days: u32,
) -> std::io::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let hourly_cutoff = now - chrono::Duration::hours(HOURLY_RETENTION_HOURS);
    let daily_cutoff = (now - chrono::Duration::days(retention_days.into())).date_naive();
    let mut removed = Vec::new();
    for (path, named) in named_files(dir)? {
        let expired = match named {
            Named::Hourly(t) | Named::Partial(t) => t < hourly_cutoff,
            Named::Daily(d) => d < daily_cutoff,
        };
        if expired {
            std::fs::remove_file(&path)?;
            removed.push(path);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_kind_and_time() {
        assert_eq!(
            parse_name("hourly-20261127T065500Z.backup"),
            Some(Named::Hourly(
                "2026-11-27T06:55:00Z".parse::<DateTime<Utc>>().unwrap()
            ))
        );
        assert_eq!(
            parse_name("daily-20261127.backup"),
            Some(Named::Daily(NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()))
        );
        assert_eq!(
            parse_name("hourly-20261127T065500Z.partial"),
            Some(Named::Partial(
                "2026-11-27T06:55:00Z".parse::<DateTime<Utc>>().unwrap()
            ))
        );
        for other in [
            "daily-20261127.partial",
            "hourly-2026.backup",
            "notes.txt",
            "daily-x.backup",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    #[test]
    fn backups_are_listed_newest_first_and_the_next_one_is_due_an_interval_later() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "hourly-20261127T100000Z.backup",
            "hourly-20261127T110000Z.backup",
            "daily-20261127.backup",
            "hourly-20261127T120000Z.partial",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), b"xyz").unwrap();
        }
        let files = list_backups(dir.path()).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "hourly-20261127T120000Z.partial",
                "hourly-20261127T110000Z.backup",
                "hourly-20261127T100000Z.backup",
                "daily-20261127.backup"
            ]
        );
        assert_eq!(files[1].kind, "hourly");
        assert_eq!(files[1].bytes, 3);
        assert!(list_backups(&dir.path().join("absent")).unwrap().is_empty());

        let t: DateTime<Utc> = "2026-11-27T11:00:00Z".parse().unwrap();
        let now: DateTime<Utc> = "2026-11-27T11:20:00Z".parse().unwrap();
        assert_eq!(next_due(Some(t), now, 3600), t + chrono::Duration::hours(1));
        let late: DateTime<Utc> = "2026-11-27T12:30:00Z".parse().unwrap();
        assert_eq!(
            next_due(Some(t), late, 3600),
            late + chrono::Duration::seconds(60)
        );
        assert_eq!(next_due(None, now, 30), now + chrono::Duration::seconds(30));
    }

    #[test]
    fn retention_removes_only_expired_files() {
        let dir = tempfile::tempdir().unwrap();
        let now: DateTime<Utc> = "2026-11-27T12:00:00Z".parse().unwrap();
        for name in [
            "hourly-20261127T110000Z.backup",
            "hourly-20261125T110000Z.backup",  // 49 hours old
            "hourly-20261125T100000Z.partial", // unfinished, 50 hours old
            "hourly-20261127T100000Z.partial", // unfinished, recent: kept
            "daily-20260829.backup",           // 90 days old: kept
            "daily-20260828.backup",           // 91 days old
            "unrelated.txt",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let mut removed: Vec<String> = remove_expired(dir.path(), now, 90)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        removed.sort();
        assert_eq!(
            removed,
            [
                "daily-20260828.backup",
                "hourly-20261125T100000Z.partial",
                "hourly-20261125T110000Z.backup"
            ]
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }
}
