//! Honest evaluation: campaign-grouped cross-validation and the precision/recall curve that the
//! decision threshold is chosen from. Random folds put one campaign's variants ("call 0906…
//! to claim £900" / "£1000") on both sides of the split and so measure recall of seen
//! campaigns; here every message is reduced to a campaign key (URLs, numbers, brand and
//! capitalised names masked) and messages sharing a key, or the opening or closing run of
//! masked words, form one group that stays in one fold.

use std::collections::HashMap;

use serde::Serialize;

use crate::data::Example;
use crate::eval::EvalReport;
use crate::hash::SplitMix64;
use crate::lists::Lists;
use crate::shield::Shield;
use crate::train::{TrainConfig, train};

/// Masked words that open or close a message and tie campaign variants together.
const EDGE_WORDS: usize = 6;

/// The campaign key: lowercase words with links as `<u>`, digit-bearing tokens as `<n>` and
/// mid-sentence capitalised words (names, brands) as `<x>`.
pub fn campaign_key(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut sentence_start = true;
    for raw in text.split_whitespace() {
        let lower = raw.to_lowercase();
        let ends = raw.ends_with(['.', '!', '?']);
        let word: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
        let tok = if lower.contains("://") || lower.starts_with("www.") || looks_like_host(&lower) {
            "<u>".to_string()
        } else if word.chars().any(|c| c.is_ascii_digit()) {
            "<n>".to_string()
        } else if word.is_empty() {
            sentence_start |= ends;
            continue;
        } else if !sentence_start && raw.chars().next().is_some_and(char::is_uppercase) {
            "<x>".to_string()
        } else {
            word
        };
        if out.last() != Some(&tok) || !tok.starts_with('<') {
            out.push(tok);
        }
        sentence_start = ends;
    }
    out
}

fn looks_like_host(w: &str) -> bool {
    let w = w.trim_end_matches(['.', ',', '!', '?', ')']);
    let Some((head, tld)) = w.rsplit_once('.') else {
        return false;
    };
    !head.is_empty() && (2..=6).contains(&tld.len()) && tld.chars().all(|c| c.is_ascii_lowercase())
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Group id per example: equal campaign keys, or equal first or last `EDGE_WORDS` masked
/// words, join a group (transitively).
pub fn campaign_groups(examples: &[Example]) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..examples.len()).collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, e) in examples.iter().enumerate() {
        let key = campaign_key(&e.text);
        let mut keys = vec![format!("all:{}", key.join(" "))];
        if key.len() >= EDGE_WORDS + 2 {
            keys.push(format!("head:{}", key[..EDGE_WORDS].join(" ")));
            keys.push(format!("tail:{}", key[key.len() - EDGE_WORDS..].join(" ")));
        }
        for k in keys {
            match seen.get(&k) {
                Some(&j) => {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    parent[a.max(b)] = a.min(b);
                }
                None => {
                    seen.insert(k, i);
                }
            }
        }
    }
    (0..examples.len()).map(|i| find(&mut parent, i)).collect()
}

/// Group k-fold: whole groups go to folds, positive-bearing groups and ham-only groups are
/// spread separately so each fold gets its share of both. Returns test indices per fold.
pub fn group_kfold(examples: &[Example], groups: &[usize], k: usize, seed: u64) -> Vec<Vec<usize>> {
    let k = k.max(2);
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, &g) in groups.iter().enumerate() {
        members.entry(g).or_default().push(i);
    }
    let mut ids: Vec<usize> = members.keys().copied().collect();
    ids.sort_unstable();
    let mut rng = SplitMix64::new(seed);
    rng.shuffle(&mut ids);
    // Big groups first so the greedy fill stays balanced.
    ids.sort_by_key(|g| std::cmp::Reverse(members[g].len()));
    let mut folds = vec![Vec::new(); k];
    let mut load = vec![[0usize; 2]; k];
    for g in ids {
        let m = &members[&g];
        let pos = usize::from(m.iter().any(|&i| examples[i].label.is_positive()));
        let f = (0..k).min_by_key(|&f| (load[f][pos], f)).unwrap_or(0);
        load[f][pos] += m.len();
        folds[f].extend_from_slice(m);
    }
    for f in &mut folds {
        f.sort_unstable();
    }
    folds
}

/// One point of the precision/recall curve (positive = spam or smishing).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CurvePoint {
    pub threshold: f32,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// Precision and recall of `score >= t` for each threshold `t`.
pub fn pr_curve(scored: &[(f32, bool)], thresholds: &[f32]) -> Vec<CurvePoint> {
    thresholds
        .iter()
        .map(|&t| {
            let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
            for &(s, pos) in scored {
                match (s >= t, pos) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => fn_ += 1,
                    (false, false) => {}
                }
            }
            let precision = if tp + fp == 0 {
                1.0
            } else {
                tp as f64 / (tp + fp) as f64
            };
            let recall = if tp + fn_ == 0 {
                0.0
            } else {
                tp as f64 / (tp + fn_) as f64
            };
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            CurvePoint {
                threshold: t,
                precision,
                recall,
                f1,
            }
        })
        .collect()
}

/// The lowest threshold in 0.05..=0.90 (steps of 0.01) whose precision reaches `floor`: the
/// most recall the floor allows. Falls back to 0.90 when no threshold reaches it.
pub fn choose_threshold(scored: &[(f32, bool)], floor: f64) -> CurvePoint {
    let grid: Vec<f32> = (5..=90).map(|i| i as f32 / 100.0).collect();
    let curve = pr_curve(scored, &grid);
    curve
        .iter()
        .find(|p| p.precision >= floor)
        .or(curve.last())
        .copied()
        .unwrap_or(CurvePoint {
            threshold: 0.9,
            precision: 0.0,
            recall: 0.0,
            f1: 0.0,
        })
}

/// Scores every example with the full scan pipeline: the report plus (score, is positive).
pub fn evaluate_scored(shield: &Shield, examples: &[Example]) -> (EvalReport, Vec<(f32, bool)>) {
    let mut confusion = [[0u64; 3]; 3];
    let mut scored = Vec::with_capacity(examples.len());
    let start = std::time::Instant::now();
    for e in examples {
        let v = shield.scan(&crate::shield::ScanInput::text(e.text.as_str()));
        confusion[e.label.index()][v.label.index()] += 1;
        scored.push((v.score, e.label.is_positive()));
    }
    let report = EvalReport::from_confusion(confusion, start.elapsed().as_secs_f64());
    (report, scored)
}

/// Campaign-grouped k-fold CV over `pool`; `extra` (other sources, synthetic lures) joins every
/// training fold but is never tested on. Scores are pooled over folds.
pub fn grouped_cross_validate(
    pool: &[Example],
    extra: &[Example],
    k: usize,
    cfg: &TrainConfig,
) -> (EvalReport, Vec<(f32, bool)>) {
    let groups = campaign_groups(pool);
    let folds = group_kfold(pool, &groups, k, cfg.seed);
    let mut report = EvalReport::default();
    let mut scored = Vec::new();
    for test_idx in &folds {
        let mut is_test = vec![false; pool.len()];
        for &i in test_idx {
            is_test[i] = true;
        }
        let mut train_set: Vec<Example> = pool
            .iter()
            .zip(&is_test)
            .filter(|(_, t)| !**t)
            .map(|(e, _)| e.clone())
            .collect();
        train_set.extend_from_slice(extra);
        let test: Vec<Example> = test_idx.iter().map(|&i| pool[i].clone()).collect();
        let model = train(&train_set, cfg, &|_, _| {});
        let (r, s) = evaluate_scored(&Shield::new(model, Lists::embedded()), &test);
        report = report.merge(&r);
        scored.extend(s);
    }
    (report, scored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::Label;

    #[test]
    fn campaign_key_masks_links_numbers_and_names() {
        let a = campaign_key("Your Paytm KYC expired. Call 9830012345 or visit paytm-kyc.in now");
        let b = campaign_key("Your Airtel KYC expired. Call 7788990011 or visit http://x.co/a now");
        assert_eq!(a, b);
        assert_eq!(a[1], "<x>");
        assert!(a.contains(&"<n>".to_string()) && a.contains(&"<u>".to_string()));
    }

    #[test]
    fn variants_share_a_group_and_folds_keep_groups_whole() {
        let ex = vec![
            Example::new(
                Label::Spam,
                "WINNER you have won 900 pounds call 09061 now to claim your prize today",
            ),
            Example::new(
                Label::Spam,
                "WINNER you have won 1000 pounds call 09062 now to claim your prize today",
            ),
            Example::new(Label::Ham, "see you at six"),
            Example::new(Label::Ham, "can you buy milk"),
            Example::new(Label::Spam, "free ringtones every week text GO"),
        ];
        let g = campaign_groups(&ex);
        assert_eq!(g[0], g[1]);
        assert_ne!(g[2], g[3]);
        let folds = group_kfold(&ex, &g, 2, 1);
        assert_eq!(folds.iter().map(Vec::len).sum::<usize>(), ex.len());
        assert!(folds.iter().any(|f| f.contains(&0) && f.contains(&1)));
    }

    #[test]
    fn threshold_meets_the_floor() {
        let scored = vec![
            (0.95, true),
            (0.8, true),
            (0.6, false),
            (0.55, true),
            (0.1, false),
        ];
        let p = choose_threshold(&scored, 0.99);
        assert!((p.threshold - 0.61).abs() < 1e-6, "{p:?}");
        assert_eq!(p.recall, 2.0 / 3.0);
        let curve = pr_curve(&scored, &[0.5]);
        assert_eq!(curve[0].precision, 0.75);
        assert_eq!(curve[0].recall, 1.0);
    }
}
