//! The shield as the server runs it: built once at start from the embedded model and lists
//! (or the operator's list directory), with the operator's allow- and blocklists loaded at
//! start and reloaded by the maintenance worker when the files change. Also the scan
//! metrics, recorded around every scan so the API and any later caller count alike.

use std::time::Instant;

use waypost_shield::{Lists, ScanInput, Shield, Verdict};

use crate::config::Config;
use crate::error::StartupError;

/// Builds the shield the configuration describes; a bad list ends start-up naming the setting.
pub fn build(config: &Config) -> Result<Shield, StartupError> {
    let mut shield = Shield::embedded();
    if let Some(dir) = &config.shield_lists_dir {
        if !dir.is_dir() {
            return Err(StartupError(format!(
                "WAYPOST_SHIELD_LISTS_DIR: {} is not a directory",
                dir.display()
            )));
        }
        let lists = Lists::load_dir(dir)
            .map_err(|e| StartupError(format!("WAYPOST_SHIELD_LISTS_DIR: {e}")))?;
        shield = shield.with_lists(lists);
    }
    for (setting, path, list) in operator_lists(config, &shield) {
        list.reload_if_changed(path)
            .map_err(|e| StartupError(format!("{setting}: {e}")))?;
    }
    Ok(shield)
}

/// Reloads the operator lists whose files changed. A file that fails to load leaves the
/// previous list in force and is logged naming the setting.
pub fn reload_operator_lists(config: &Config, shield: &Shield) {
    for (setting, path, list) in operator_lists(config, shield) {
        match list.reload_if_changed(path) {
            Ok(true) => tracing::info!(
                setting,
                entries = list.snapshot().len(),
                "reloaded shield list"
            ),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(setting, error = %e, "shield list not reloaded; the previous one stays in force")
            }
        }
    }
}

fn operator_lists<'a>(
    config: &'a Config,
    shield: &'a Shield,
) -> impl Iterator<
    Item = (
        &'static str,
        &'a std::path::Path,
        &'a waypost_shield::SharedList,
    ),
> {
    [
        (
            "WAYPOST_SHIELD_ALLOWLIST_FILE",
            config.shield_allowlist_file.as_deref(),
            shield.allowlist(),
        ),
        (
            "WAYPOST_SHIELD_BLOCKLIST_FILE",
            config.shield_blocklist_file.as_deref(),
            shield.blocklist(),
        ),
    ]
    .into_iter()
    .filter_map(|(setting, path, list)| path.map(|p| (setting, p, list)))
}

/// Scans one message, counting it by verdict and timing it.
pub fn scan_observed(shield: &Shield, input: &ScanInput) -> Verdict {
    let started = Instant::now();
    let verdict = shield.scan(input);
    let elapsed = started.elapsed();
    metrics::counter!("waypost_shield_scans_total", "label" => verdict.label.as_str()).increment(1);
    metrics::histogram!("waypost_shield_scan_duration_seconds").record(elapsed.as_secs_f64());
    verdict
}
