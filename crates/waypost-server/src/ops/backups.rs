//! What the scheduled backups look like, for operators: the configuration,
//! what the scheduler last did, the files in `backup_dir` (newest first), the
//! newest scheduled backup with its envelope checked, and when the next one
//! is due. The server holds only the backup public key, so a backup's
//! contents are verified offline with the identity (`waypost backup verify`).

use chrono::{DateTime, Utc};

use crate::backup::check_envelope;
use crate::backup_schedule::{BackupFile, BackupStatus, list_backups, next_due};
use crate::error::ApiError;
use crate::state::AppState;

/// Most files an overview lists (a year of daily backups and two days of hourly ones fit).
pub const MAX_LISTED: usize = 500;

#[derive(Debug, Clone)]
pub struct BackupOverview {
    /// Whether `backup_dir` is set.
    pub enabled: bool,
    pub dir: Option<String>,
    pub interval_secs: u64,
    pub retention_days: u32,
    /// What this node's scheduler last did (since it started).
    pub status: BackupStatus,
    /// The newest complete scheduled (hourly) backup.
    pub last: Option<BackupFile>,
    /// Whether the newest backup's age envelope reads; the reason when not.
    pub last_envelope: Option<Result<(), String>>,
    pub next_due: Option<DateTime<Utc>>,
    /// Newest first, at most [`MAX_LISTED`].
    pub files: Vec<BackupFile>,
    pub total_files: usize,
    pub total_bytes: u64,
}

/// The backup overview of this server.
pub async fn overview(state: &AppState) -> Result<BackupOverview, ApiError> {
    let config = &state.config;
    let status = state.backups.snapshot(config.backup_dir.is_some());
    let now = state.clock.now();
    let Some(dir) = config.backup_dir.clone() else {
        return Ok(BackupOverview {
            enabled: false,
            dir: None,
            interval_secs: config.backup_interval_secs,
            retention_days: config.backup_retention_days,
            status,
            last: None,
            last_envelope: None,
            next_due: None,
            files: Vec::new(),
            total_files: 0,
            total_bytes: 0,
        });
    };
    let listed = dir.clone();
    // Directory listing and the envelope check touch the disk: off the async workers.
    let (mut files, last_envelope) = tokio::task::spawn_blocking(move || {
        let files = list_backups(&listed)?;
        let envelope = files
            .iter()
            .find(|f| f.kind == "hourly")
            .map(|f| check_envelope(&f.path).map_err(|e| format!("{e:#}")));
        Ok::<_, std::io::Error>((files, envelope))
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("cannot list {}: {e}", dir.display())))?;
    let last = files.iter().find(|f| f.kind == "hourly").cloned();
    let total_files = files.len();
    let total_bytes = files.iter().map(|f| f.bytes).sum();
    files.truncate(MAX_LISTED);
    Ok(BackupOverview {
        enabled: true,
        dir: Some(dir.display().to_string()),
        interval_secs: config.backup_interval_secs,
        retention_days: config.backup_retention_days,
        next_due: Some(next_due(
            last.as_ref().map(|f| f.at),
            now,
            config.backup_interval_secs,
        )),
        status,
        last,
        last_envelope,
        files,
        total_files,
        total_bytes,
    })
}
