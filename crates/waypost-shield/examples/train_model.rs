//! Trains the shipped model and measures it honestly. `--data` sets (the shared SMS corpora)
//! are the evaluation pool: campaign-grouped 5-fold CV runs over them, with `--extra` sets
//! (synthetic lures, other sources) added to every training fold but never tested on. The
//! decision threshold is the lowest one whose pooled grouped-CV precision reaches `--floor`.
//! Cross-source runs train on one source and test on another; `--heldout` sets are scored by
//! the final model only. Then the model is trained on everything and written with its
//! threshold. Prints only counts and metrics, never message text.
//!
//! Usage: cargo run --release --example train_model -- --data A.tsv --data B.tsv
//!        [--extra C.tsv]… [--heldout D.tsv]… [--out data/model.bin] [--seed N]
//!        [--floor 0.975] [--skip-eval --threshold T] [--epochs N] [--lr X] [--l2 X] [--bits N]
//! Without the evaluation the threshold cannot be chosen: `--skip-eval` needs `--threshold`.
#![forbid(unsafe_code)]

use waypost_shield::split::{choose_threshold, evaluate_scored, grouped_cross_validate, pr_curve};
use waypost_shield::{
    Example, Label, Lists, Shield, TrainConfig, dedup, load_tsv, train, without_overlap,
};

fn counts(ex: &[Example]) -> String {
    let c = |l: Label| ex.iter().filter(|e| e.label == l).count();
    format!(
        "{} (ham {}, spam {}, smishing {})",
        ex.len(),
        c(Label::Ham),
        c(Label::Spam),
        c(Label::Smishing)
    )
}

fn load_all(paths: &[String]) -> Result<Vec<Vec<Example>>, Box<dyn std::error::Error>> {
    let mut sets = Vec::new();
    for p in paths {
        let (d, _) = dedup(load_tsv(p)?);
        println!("{p}: {}", counts(&d));
        sets.push(d);
    }
    Ok(sets)
}

fn line(name: &str, shield: &Shield, test: &[Example]) {
    let (r, _) = evaluate_scored(shield, test);
    let p = r.positive;
    println!(
        "| {name} | {} | {:.4} | {:.4} | {:.4} |",
        test.len(),
        p.precision,
        p.recall,
        p.f1
    );
}

fn trained(train_set: &[Example], cfg: &TrainConfig, threshold: f32) -> Shield {
    Shield::new(train(train_set, cfg, &|_, _| {}), Lists::embedded()).with_threshold(threshold)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut data, mut extra, mut heldout) = (Vec::new(), Vec::new(), Vec::new());
    let mut out = String::from("data/model.bin");
    let mut floor = 0.975f64;
    let mut skip_eval = false;
    let mut fixed_threshold: Option<f32> = None;
    let mut cfg = TrainConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--data" => data.push(val()?),
            "--extra" => extra.push(val()?),
            "--heldout" => heldout.push(val()?),
            "--out" => out = val()?,
            "--floor" => floor = val()?.parse()?,
            "--seed" => cfg.seed = val()?.parse()?,
            "--epochs" => cfg.epochs = val()?.parse()?,
            "--lr" => cfg.learning_rate = val()?.parse()?,
            "--l2" => cfg.l2 = val()?.parse()?,
            "--bits" => cfg.bits = val()?.parse()?,
            "--skip-eval" => skip_eval = true,
            "--threshold" => fixed_threshold = Some(val()?.parse()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if data.is_empty() {
        return Err("at least one --data FILE.tsv is required".into());
    }
    if skip_eval && fixed_threshold.is_none() {
        return Err(
            "--skip-eval needs --threshold (it is otherwise chosen by the evaluation)".into(),
        );
    }
    let sets = load_all(&data)?;
    let extra_sets = load_all(&extra)?;
    let held_sets = load_all(&heldout)?;
    let (pool, stats) = dedup(sets.iter().flatten().cloned());
    let (extra_all, _) = dedup(extra_sets.iter().flatten().cloned());
    // Extra rows that near-duplicate a pool message would leak into grouped-CV test folds.
    let extra_all = without_overlap(&extra_all, &pool);
    let held: Vec<Example> = held_sets.iter().flatten().cloned().collect();
    println!(
        "pool: {} rows -> {}; {} label conflicts; extra (train only): {}; held out: {}",
        stats.input,
        counts(&pool),
        stats.label_conflicts,
        counts(&extra_all),
        counts(&held)
    );
    println!("config: {cfg:?}, precision floor {floor}");

    let mut threshold = waypost_shield::model::DEFAULT_THRESHOLD;
    if !skip_eval {
        println!("\n## Campaign-grouped 5-fold CV on the pool (positive = spam+smishing)\n");
        println!("| training data per fold | threshold | test msgs | precision | recall | F1 |");
        println!("|---|---:|---:|---:|---:|---:|");
        let (_, base) = grouped_cross_validate(&pool, &[], 5, &cfg);
        let (_, scored) = grouped_cross_validate(&pool, &extra_all, 5, &cfg);
        let chosen = choose_threshold(&scored, floor);
        threshold = chosen.threshold;
        for (name, s) in [("pool folds only", &base), ("pool folds + extra", &scored)] {
            for t in [0.5, threshold] {
                let p = pr_curve(s, &[t])[0];
                println!(
                    "| {name} | {t:.2} | {} | {:.4} | {:.4} | {:.4} |",
                    s.len(),
                    p.precision,
                    p.recall,
                    p.f1
                );
            }
        }
        println!("\nchosen threshold {threshold:.2} (precision floor {floor}): {chosen:?}");
        println!("\n## Precision/recall curve (grouped CV, pool folds + extra)\n");
        println!("| threshold | precision | recall | F1 |\n|---:|---:|---:|---:|");
        let grid: Vec<f32> = (1..=18).map(|i| i as f32 * 0.05).collect();
        for p in pr_curve(&scored, &grid) {
            println!(
                "| {:.2} | {:.4} | {:.4} | {:.4} |",
                p.threshold, p.precision, p.recall, p.f1
            );
        }

        println!("\n## Cross-source (threshold {threshold:.2})\n");
        println!(
            "| train -> test | test msgs | precision | recall | F1 |\n|---|---:|---:|---:|---:|"
        );
        if sets.len() == 2 {
            for (a, b) in [(0, 1), (1, 0)] {
                let test = without_overlap(&sets[b], &sets[a]);
                let s = trained(&sets[a], &cfg, threshold);
                line(
                    &format!("{} -> {} (overlap removed)", data[a], data[b]),
                    &s,
                    &test,
                );
            }
        }
        if !extra_all.is_empty() {
            let s = trained(&extra_all, &cfg, threshold);
            line("extra only -> pool", &s, &pool);
            if !held.is_empty() {
                line("extra only -> held out", &s, &held);
            }
        }
        if !held.is_empty() {
            let s = trained(&sets[0], &cfg, threshold);
            line(&format!("{} -> held out", data[0]), &s, &held);
            let s = trained(&pool, &cfg, threshold);
            line("pool -> held out", &s, &held);
        }
    }

    let start = std::time::Instant::now();
    let mut all = pool.clone();
    all.extend(extra_all.iter().cloned());
    let mut model = train(&all, &cfg, &|_, _| {});
    let threshold = fixed_threshold.unwrap_or(threshold);
    model.threshold = threshold;
    let bytes = model.to_bytes();
    std::fs::write(&out, &bytes)?;
    println!(
        "\nwrote {out}: {} bytes, {} non-zero rows of {}, {} training messages, threshold {threshold:.2}, trained in {:.1}s",
        bytes.len(),
        model.nonzero_rows(),
        1u64 << model.bits(),
        all.len(),
        start.elapsed().as_secs_f64()
    );
    if !held.is_empty() {
        let s = Shield::new(model, Lists::embedded());
        let (r, _) = evaluate_scored(&s, &held);
        println!("\n## Final model on the held-out set\n\n{r}");
    }
    Ok(())
}
