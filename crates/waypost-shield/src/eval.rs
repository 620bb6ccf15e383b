//! Evaluation: confusion matrix, per-class and positive-vs-ham precision/recall/F1, and
//! throughput, plus k-fold cross-validation and cross-dataset helpers built on `train`.
//! "Positive" means spam or smishing; a smishing message predicted as spam still counts as a
//! correct positive in the binary figures.

use std::fmt;
use std::time::Instant;

use serde::Serialize;

use crate::data::{Example, kfold, without_overlap};
use crate::lists::Lists;
use crate::reason::Label;
use crate::shield::Shield;
use crate::train::{TrainConfig, train};

/// Precision, recall, F1 and support (true count) for one class or for the positive class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ClassMetrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

fn metrics(tp: u64, fp: u64, fn_: u64) -> ClassMetrics {
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    ClassMetrics {
        precision,
        recall,
        f1,
        support: tp + fn_,
    }
}

/// Evaluation result. `confusion[true][predicted]`, indices in `Label` order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EvalReport {
    pub examples: u64,
    pub confusion: [[u64; 3]; 3],
    pub per_class: [ClassMetrics; 3],
    pub positive: ClassMetrics,
    pub accuracy: f64,
    pub seconds: f64,
    pub messages_per_sec: f64,
}

impl EvalReport {
    /// Builds a report from a confusion matrix and the time spent classifying.
    pub fn from_confusion(confusion: [[u64; 3]; 3], seconds: f64) -> EvalReport {
        let examples: u64 = confusion.iter().flatten().sum();
        let per_class = std::array::from_fn(|k| {
            let tp = confusion[k][k];
            let fp = (0..3).filter(|&t| t != k).map(|t| confusion[t][k]).sum();
            let fn_ = (0..3).filter(|&p| p != k).map(|p| confusion[k][p]).sum();
            metrics(tp, fp, fn_)
        });
        let pos = |i: usize| i != Label::Ham.index();
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        for (t, row) in confusion.iter().enumerate() {
            for (p, &c) in row.iter().enumerate() {
                match (pos(t), pos(p)) {
                    (true, true) => tp += c,
                    (false, true) => fp += c,
                    (true, false) => fn_ += c,
                    (false, false) => {}
                }
            }
        }
        let correct: u64 = (0..3).map(|k| confusion[k][k]).sum();
        EvalReport {
            examples,
            confusion,
            per_class,
            positive: metrics(tp, fp, fn_),
            accuracy: if examples == 0 {
                0.0
            } else {
                correct as f64 / examples as f64
            },
            seconds,
            messages_per_sec: if seconds > 0.0 {
                examples as f64 / seconds
            } else {
                0.0
            },
        }
    }

    /// Sums two reports (used to pool cross-validation folds).
    pub fn merge(&self, other: &EvalReport) -> EvalReport {
        let mut c = self.confusion;
        for (t, row) in other.confusion.iter().enumerate() {
            for (p, v) in row.iter().enumerate() {
                c[t][p] += v;
            }
        }
        EvalReport::from_confusion(c, self.seconds + other.seconds)
    }
}

/// Classifies every example with the full scan pipeline and scores the result.
pub fn evaluate(shield: &Shield, examples: &[Example]) -> EvalReport {
    let mut confusion = [[0u64; 3]; 3];
    let start = Instant::now();
    for e in examples {
        let p = shield.classify(&e.text);
        confusion[e.label.index()][p.index()] += 1;
    }
    EvalReport::from_confusion(confusion, start.elapsed().as_secs_f64())
}

/// Stratified k-fold cross-validation; fold reports are pooled into one.
pub fn cross_validate(
    examples: &[Example],
    k: usize,
    cfg: &TrainConfig,
    progress: &dyn Fn(u64, u64),
) -> EvalReport {
    let folds = kfold(examples, k, cfg.seed);
    let mut report = EvalReport::default();
    for (f, test_idx) in folds.iter().enumerate() {
        let mut is_test = vec![false; examples.len()];
        for &i in test_idx {
            is_test[i] = true;
        }
        let train_set: Vec<Example> = examples
            .iter()
            .zip(&is_test)
            .filter(|(_, t)| !**t)
            .map(|(e, _)| e.clone())
            .collect();
        let test_set: Vec<Example> = test_idx.iter().map(|&i| examples[i].clone()).collect();
        let model = train(&train_set, cfg, &|_, _| {});
        let r = evaluate(&Shield::new(model, Lists::embedded()), &test_set);
        report = report.merge(&r);
        progress(f as u64 + 1, folds.len() as u64);
    }
    report
}

/// Trains on `train_set` and evaluates on `test_set`. With `drop_overlap`, test messages that
/// near-duplicate a training message are removed first; the second value is how many remain.
pub fn cross_dataset(
    train_set: &[Example],
    test_set: &[Example],
    cfg: &TrainConfig,
    drop_overlap: bool,
) -> (EvalReport, usize) {
    let test: Vec<Example> = if drop_overlap {
        without_overlap(test_set, train_set)
    } else {
        test_set.to_vec()
    };
    let model = train(train_set, cfg, &|_, _| {});
    let r = evaluate(&Shield::new(model, Lists::embedded()), &test);
    (r, test.len())
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "examples: {}   accuracy: {:.4}",
            self.examples, self.accuracy
        )?;
        let p = &self.positive;
        writeln!(
            f,
            "positive (spam+smishing vs ham): precision {:.4}  recall {:.4}  F1 {:.4}  (support {})",
            p.precision, p.recall, p.f1, p.support
        )?;
        writeln!(
            f,
            "{:<10} {:>9} {:>9} {:>9} {:>8}",
            "class", "precision", "recall", "F1", "support"
        )?;
        for l in Label::ALL {
            let m = &self.per_class[l.index()];
            writeln!(
                f,
                "{:<10} {:>9.4} {:>9.4} {:>9.4} {:>8}",
                l.as_str(),
                m.precision,
                m.recall,
                m.f1,
                m.support
            )?;
        }
        writeln!(f, "confusion (rows = true, columns = predicted):")?;
        writeln!(f, "{:<10} {:>8} {:>8} {:>8}", "", "ham", "spam", "smishing")?;
        for l in Label::ALL {
            let r = &self.confusion[l.index()];
            writeln!(f, "{:<10} {:>8} {:>8} {:>8}", l.as_str(), r[0], r[1], r[2])?;
        }
        write!(
            f,
            "throughput: {:.0} messages/s ({:.3} s)",
            self.messages_per_sec, self.seconds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_from_confusion() {
        // true ham: 8 ham, 1 spam, 1 smishing; true spam: 1 ham, 4 spam; true smishing: 5 smishing
        let c = [[8, 1, 1], [1, 4, 0], [0, 0, 5]];
        let r = EvalReport::from_confusion(c, 2.0);
        assert_eq!(r.examples, 20);
        assert!((r.accuracy - 17.0 / 20.0).abs() < 1e-12);
        // positive: tp = 9, fp = 2, fn = 1
        assert!((r.positive.precision - 9.0 / 11.0).abs() < 1e-12);
        assert!((r.positive.recall - 0.9).abs() < 1e-12);
        assert_eq!(r.positive.support, 10);
        let spam = r.per_class[1];
        assert!((spam.precision - 0.8).abs() < 1e-12 && (spam.recall - 0.8).abs() < 1e-12);
        assert!((r.messages_per_sec - 10.0).abs() < 1e-12);
        let m = r.merge(&r);
        assert_eq!(m.examples, 40);
        assert_eq!(m.confusion[0][0], 16);
        let text = r.to_string();
        assert!(text.contains("positive (spam+smishing vs ham)") && text.contains("smishing"));
    }

    #[test]
    fn empty_report_has_no_nans() {
        let r = EvalReport::from_confusion([[0; 3]; 3], 0.0);
        assert_eq!(r.positive.f1, 0.0);
        assert_eq!(r.accuracy, 0.0);
        assert!(!r.to_string().contains("NaN"));
    }
}
