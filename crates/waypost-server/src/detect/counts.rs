//! Counters read for an evaluation, and each detector's memory: EWMA
//! baselines and when it last reported each entity (its cooldown).

use std::collections::{BTreeMap, HashMap};

use waypost_core::trust::{Ewma, Severity};
use waypost_store::trust::{BaselineRow, SignalRow};

use crate::ops::security_alerts::Finding;
use crate::state::AppState;

/// A detector stays quiet this long for an entity it reported.
pub const COOLDOWN_MINUTES: i64 = 60;

/// Counts of one scope kind, by (scope id, signal) then minute.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) by: HashMap<(String, String), BTreeMap<i64, i64>>,
    pub(super) workspace: HashMap<String, String>,
}

impl Counts {
    pub(super) fn from_rows(rows: Vec<SignalRow>) -> Self {
        let mut c = Self::default();
        for r in rows {
            if let Some(ws) = r.workspace_id {
                c.workspace.insert(r.scope_id.clone(), ws);
            }
            *c.by
                .entry((r.scope_id, r.signal))
                .or_default()
                .entry(r.minute)
                .or_default() += r.count;
        }
        c
    }

    pub(super) fn series(&self, id: &str, signal: &str) -> Option<&BTreeMap<i64, i64>> {
        self.by.get(&(id.to_owned(), signal.to_owned()))
    }

    pub(super) fn sum(&self, id: &str, signal: &str, from: i64, to: i64) -> i64 {
        self.series(id, signal)
            .map_or(0, |s| s.range(from..=to).map(|(_, n)| n).sum())
    }

    pub(super) fn ids_with(&self, signal: &str) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .by
            .keys()
            .filter(|(_, s)| s == signal)
            .map(|(id, _)| id.as_str())
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// Baselines and cooldowns of one detector, saved after the evaluation.
pub(super) struct Memory {
    detector: &'static str,
    scope_kind: &'static str,
    ewma: HashMap<String, Ewma>,
    fired: HashMap<String, i64>,
}

impl Memory {
    pub(super) async fn load(
        state: &AppState,
        detector: &'static str,
        scope_kind: &'static str,
    ) -> anyhow::Result<Self> {
        let mut m = Self {
            detector,
            scope_kind,
            ewma: HashMap::new(),
            fired: HashMap::new(),
        };
        for b in state.store.baselines(detector).await? {
            m.ewma.insert(
                b.scope_id,
                Ewma {
                    mean: b.mean,
                    samples: b.samples,
                    minute: b.minute,
                },
            );
        }
        for b in state.store.baselines(&format!("fired:{detector}")).await? {
            m.fired.insert(b.scope_id, b.minute);
        }
        Ok(m)
    }

    pub(super) fn baseline(&mut self, id: &str, minute: i64) -> &mut Ewma {
        self.ewma
            .entry(id.to_owned())
            .or_insert_with(|| Ewma::new(minute - 1))
    }

    /// Whether the detector may report `id` at `minute`; records that it does.
    pub(super) fn may_fire(&mut self, id: &str, minute: i64) -> bool {
        match self.fired.get(id) {
            Some(&at) if minute - at < COOLDOWN_MINUTES => false,
            _ => {
                self.fired.insert(id.to_owned(), minute);
                true
            }
        }
    }

    pub(super) async fn save(self, state: &AppState) -> anyhow::Result<()> {
        let row =
            |detector: String, id: String, mean: f64, minute: i64, samples: i64| BaselineRow {
                detector,
                scope_kind: self.scope_kind.to_owned(),
                scope_id: id,
                mean,
                minute,
                samples,
            };
        let mut rows: Vec<BaselineRow> = self
            .ewma
            .iter()
            .map(|(id, e)| {
                row(
                    self.detector.to_owned(),
                    id.clone(),
                    e.mean,
                    e.minute,
                    e.samples,
                )
            })
            .collect();
        let fired = format!("fired:{}", self.detector);
        rows.extend(
            self.fired
                .iter()
                .map(|(id, m)| row(fired.clone(), id.clone(), 0.0, *m, 0)),
        );
        state.store.save_baselines(&rows).await?;
        Ok(())
    }
}

/// Shared by the account detectors.
pub(super) fn finding(
    detector: &'static str,
    severity: Severity,
    entity_kind: &'static str,
    entity_id: &str,
    minute: i64,
    evidence: serde_json::Value,
) -> Finding {
    Finding {
        detector,
        severity,
        workspace_id: None,
        entity_kind,
        entity_id: entity_id.to_owned(),
        minute,
        evidence,
    }
}
