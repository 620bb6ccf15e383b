//! Backup status for operators: the newest scheduled backup (time, size,
//! envelope check), the next one due, the scheduler's last error, and every
//! file kept in `backup_dir`. Read from `ops::backups`.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::operator::{OperatorChrome, OperatorPage};
use super::page::{PageError, render};
use crate::ops::backups::{BackupOverview, overview};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "backups.html")]
struct BackupsPage {
    chrome: OperatorChrome,
    o: BackupOverview,
    /// The newest backup is older than two intervals: the schedule is behind.
    stale: bool,
}

/// `1.4 MB`, `820 kB`, `12 B`.
pub fn size(bytes: &u64) -> String {
    let b = *bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// `every hour`, `every 15 minutes`, `every 30 seconds`.
pub fn every(secs: &u64) -> String {
    match *secs {
        3600 => "every hour".into(),
        s if s.is_multiple_of(3600) => format!("every {} hours", s / 3600),
        s if s.is_multiple_of(60) => format!("every {} minutes", s / 60),
        s => format!("every {s} seconds"),
    }
}

/// `GET /operator/backups`.
pub async fn index(
    State(state): State<AppState>,
    page: OperatorPage,
) -> Result<Response, PageError> {
    let o = overview(&state).await?;
    let now = state.clock.now();
    let limit = chrono::Duration::seconds(2 * o.interval_secs.max(1) as i64);
    let stale = o.last.as_ref().is_some_and(|f| now - f.at > limit);
    Ok(render(
        StatusCode::OK,
        &BackupsPage {
            chrome: page.chrome,
            o,
            stale,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_intervals_read_naturally() {
        assert_eq!(size(&12), "12 B");
        assert_eq!(size(&820_000), "820 kB");
        assert_eq!(size(&1_400_000), "1.4 MB");
        assert_eq!(every(&3600), "every hour");
        assert_eq!(every(&7200), "every 2 hours");
        assert_eq!(every(&900), "every 15 minutes");
        assert_eq!(every(&30), "every 30 seconds");
    }
}
