//! Labelled data handling for training and evaluation: the TSV format (`label<TAB>text` with a
//! header), near-duplicate keys and de-duplication across data sets, stratified k-fold splits,
//! and removal of test messages that also occur in a training set. Errors name the file and
//! line. Nothing here logs message text.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Result, ShieldError};
use crate::hash::SplitMix64;
use crate::reason::Label;

/// One labelled message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub label: Label,
    pub text: String,
}

impl Example {
    pub fn new(label: Label, text: impl Into<String>) -> Example {
        Example {
            label,
            text: text.into(),
        }
    }
}

/// Reads a TSV data set: UTF-8, header `label<TAB>text`, labels ham/spam/smishing.
pub fn load_tsv(path: impl AsRef<Path>) -> Result<Vec<Example>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| ShieldError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let name = path.display().to_string();
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        ShieldError::Tsv {
            file: name.clone(),
            line,
            message: "not valid UTF-8".into(),
        }
    })?;
    parse_tsv(&text, &name)
}

/// Parses TSV text; `file` is used in error messages.
pub fn parse_tsv(text: &str, file: &str) -> Result<Vec<Example>> {
    let err = |line: usize, message: String| ShieldError::Tsv {
        file: file.to_string(),
        line,
        message,
    };
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim_start_matches('\u{feff}').trim_end() == "label\ttext" => {}
        Some((_, h)) => {
            let shown: String = h.chars().take(40).collect();
            return Err(err(
                1,
                format!("expected header `label<TAB>text`, found `{shown}`"),
            ));
        }
        None => {
            return Err(err(
                1,
                "empty file, expected header `label<TAB>text`".into(),
            ));
        }
    }
    let mut out = Vec::new();
    for (i, line) in lines {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (label, text) = line
            .split_once('\t')
            .ok_or_else(|| err(i + 1, "missing TAB between label and text".into()))?;
        let label = Label::parse(label).ok_or_else(|| {
            let shown: String = label.chars().take(20).collect();
            err(
                i + 1,
                format!("unknown label `{shown}` (expected ham, spam or smishing)"),
            )
        })?;
        if text.trim().is_empty() {
            return Err(err(i + 1, "empty message text".into()));
        }
        out.push(Example::new(label, text));
    }
    Ok(out)
}

/// Near-duplicate key: lowercase letters only, whitespace collapsed. Digits and punctuation
/// go, so messages differing only in a number, code or amount share a key.
pub fn dedup_key(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_alphabetic() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.extend(c.to_lowercase());
        } else if c.is_whitespace() {
            space = true;
        }
    }
    out
}

/// Counts from a de-duplication.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DedupStats {
    pub input: usize,
    pub kept: usize,
    /// Duplicates whose label disagreed with the kept copy.
    pub label_conflicts: usize,
    /// Conflicts resolved by upgrading spam to the more specific smishing.
    pub upgraded_to_smishing: usize,
    /// Conflicts where one copy said ham and the other spam or smishing (kept: the first).
    pub ham_vs_positive: usize,
}

/// Keeps the first example of each near-duplicate key, in order. When a later copy says
/// smishing where the kept one says spam, the kept copy becomes smishing (the finer label);
/// other conflicts keep the first label and are counted.
pub fn dedup(examples: impl IntoIterator<Item = Example>) -> (Vec<Example>, DedupStats) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Example> = Vec::new();
    let mut stats = DedupStats::default();
    for ex in examples {
        stats.input += 1;
        let key = dedup_key(&ex.text);
        match seen.get(&key) {
            Some(&i) => {
                if out[i].label != ex.label {
                    stats.label_conflicts += 1;
                    if out[i].label.is_positive() != ex.label.is_positive() {
                        stats.ham_vs_positive += 1;
                    }
                    if out[i].label == Label::Spam && ex.label == Label::Smishing {
                        out[i].label = Label::Smishing;
                        stats.upgraded_to_smishing += 1;
                    }
                }
            }
            None => {
                seen.insert(key, out.len());
                out.push(ex);
            }
        }
    }
    stats.kept = out.len();
    (out, stats)
}

/// Stratified k-fold: returns, for each fold, the indices of its test examples. Every index
/// is in exactly one fold; each label is spread evenly. Deterministic for a seed.
pub fn kfold(examples: &[Example], k: usize, seed: u64) -> Vec<Vec<usize>> {
    let k = k.max(2);
    let mut folds = vec![Vec::new(); k];
    let mut rng = SplitMix64::new(seed);
    let mut next = 0;
    for label in Label::ALL {
        let mut idx: Vec<usize> = (0..examples.len())
            .filter(|&i| examples[i].label == label)
            .collect();
        rng.shuffle(&mut idx);
        for i in idx {
            folds[next % k].push(i);
            next += 1;
        }
    }
    for f in &mut folds {
        f.sort_unstable();
    }
    folds
}

/// Test examples whose near-duplicate key does not occur in `train`, so a cross-dataset score
/// measures generalisation rather than recall of the same messages.
pub fn without_overlap(test: &[Example], train: &[Example]) -> Vec<Example> {
    let keys: std::collections::HashSet<String> =
        train.iter().map(|e| dedup_key(&e.text)).collect();
    test.iter()
        .filter(|e| !keys.contains(&dedup_key(&e.text)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_tsv() {
        let ex = parse_tsv(
            "label\ttext\nham\thello there\r\n\nSPAM\tWIN now\tsecond tab\n",
            "t",
        )
        .unwrap();
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[0], Example::new(Label::Ham, "hello there"));
        assert_eq!(ex[1].label, Label::Spam);
        assert_eq!(ex[1].text, "WIN now\tsecond tab");
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse_tsv("label\ttext\nham\tok\nphish\tbad\n", "d.tsv").unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.tsv: line 3: unknown label `phish` (expected ham, spam or smishing)"
        );
        let e = parse_tsv("label\ttext\nham\tok\nno tab here\n", "d.tsv").unwrap_err();
        assert!(
            e.to_string().starts_with("d.tsv: line 3: missing TAB"),
            "{e}"
        );
        let e = parse_tsv("text\tlabel\n", "d.tsv").unwrap_err();
        assert!(
            e.to_string().starts_with("d.tsv: line 1: expected header"),
            "{e}"
        );
        let e = parse_tsv("", "d.tsv").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = parse_tsv("label\ttext\nspam\t  \n", "d.tsv").unwrap_err();
        assert!(e.to_string().contains("line 2: empty message"), "{e}");
    }

    #[test]
    fn load_reports_missing_file_and_bad_utf8() {
        let e = load_tsv("/nonexistent/x.tsv").unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/x.tsv"), "{e}");
        let p = std::env::temp_dir().join(format!("shield-utf8-{}.tsv", std::process::id()));
        std::fs::write(&p, b"label\ttext\nham\tok\nham\t\xff\xfe\n").unwrap();
        let e = load_tsv(&p).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("UTF-8"), "{e}");
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn dedup_key_ignores_case_digits_and_punctuation() {
        assert_eq!(
            dedup_key("Call 0906 NOW!!  to claim £350"),
            "call now to claim"
        );
        assert_eq!(
            dedup_key("call 0800   now to   claim £1000."),
            "call now to claim"
        );
        assert_eq!(dedup_key("  "), "");
    }

    #[test]
    fn dedup_keeps_first_and_upgrades_spam_to_smishing() {
        let (out, stats) = dedup(vec![
            Example::new(Label::Spam, "Win a prize 123"),
            Example::new(Label::Ham, "hi"),
            Example::new(Label::Smishing, "WIN a prize 456"),
            Example::new(Label::Ham, "HI!"),
            Example::new(Label::Spam, "hi"),
        ]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].label, Label::Smishing);
        assert_eq!(out[1].label, Label::Ham);
        assert_eq!(stats.input, 5);
        assert_eq!(stats.kept, 2);
        assert_eq!(stats.label_conflicts, 2);
        assert_eq!(stats.upgraded_to_smishing, 1);
        assert_eq!(stats.ham_vs_positive, 1);
    }

    #[test]
    fn kfold_partitions_and_stratifies() {
        let ex: Vec<Example> = (0..50)
            .map(|i| {
                Example::new(
                    if i % 5 == 0 { Label::Spam } else { Label::Ham },
                    i.to_string(),
                )
            })
            .collect();
        let folds = kfold(&ex, 5, 1);
        let mut all: Vec<usize> = folds.concat();
        all.sort_unstable();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
        for f in &folds {
            assert_eq!(f.len(), 10);
            assert_eq!(f.iter().filter(|&&i| ex[i].label == Label::Spam).count(), 2);
        }
        assert_eq!(folds, kfold(&ex, 5, 1));
        assert_ne!(folds, kfold(&ex, 5, 2));
    }

    #[test]
    fn overlap_removal() {
        let train = vec![Example::new(Label::Spam, "Call 123 now")];
        let test = vec![
            Example::new(Label::Spam, "call 456 NOW"),
            Example::new(Label::Ham, "see you"),
        ];
        let kept = without_overlap(&test, &train);
        assert_eq!(kept, vec![Example::new(Label::Ham, "see you")]);
    }
}
