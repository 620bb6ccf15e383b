//! Trains the shipped model and measures it: de-duplicates the union of the data sets, runs
//! 5-fold cross-validation and cross-dataset evaluation, then trains on the whole union and
//! writes the model. Prints only counts and metrics, never message text.
//!
//! Usage: cargo run --release --example train_model -- --data A.tsv --data B.tsv
//!        [--out data/model.bin] [--seed N] [--skip-eval | --cv-only]
//!        [--epochs N] [--lr X] [--l2 X] [--bits N] [--no-balance]
#![forbid(unsafe_code)]

use waypost_shield::{
    Example, Label, TrainConfig, cross_dataset, cross_validate, dedup, load_tsv, train,
};

fn positive_only(ex: &[Example]) -> usize {
    ex.iter().filter(|e| e.label.is_positive()).count()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut data = Vec::new();
    let mut out = String::from("data/model.bin");
    let mut seed = TrainConfig::default().seed;
    let mut skip_eval = false;
    let mut cv_only = false;
    let mut cfg = TrainConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => data.push(args.next().ok_or("--data needs a file")?),
            "--out" => out = args.next().ok_or("--out needs a file")?,
            "--seed" => seed = args.next().ok_or("--seed needs a number")?.parse()?,
            "--skip-eval" => skip_eval = true,
            "--epochs" => cfg.epochs = args.next().ok_or("--epochs needs a number")?.parse()?,
            "--lr" => cfg.learning_rate = args.next().ok_or("--lr needs a number")?.parse()?,
            "--l2" => cfg.l2 = args.next().ok_or("--l2 needs a number")?.parse()?,
            "--bits" => cfg.bits = args.next().ok_or("--bits needs a number")?.parse()?,
            "--no-balance" => cfg.balance_classes = false,
            "--cv-only" => cv_only = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if data.is_empty() {
        return Err("at least one --data FILE.tsv is required".into());
    }
    cfg.seed = seed;
    let sets: Vec<Vec<Example>> = data.iter().map(load_tsv).collect::<Result<_, _>>()?;
    for (path, set) in data.iter().zip(&sets) {
        let (d, _) = dedup(set.clone());
        println!(
            "{path}: {} rows, {} after dedup ({} positive)",
            set.len(),
            d.len(),
            positive_only(&d)
        );
    }
    let (union, stats) = dedup(sets.iter().flatten().cloned());
    let counts: Vec<usize> = Label::ALL
        .iter()
        .map(|l| union.iter().filter(|e| e.label == *l).count())
        .collect();
    println!(
        "union: {} rows -> {} unique (ham {}, spam {}, smishing {}); {} label conflicts \
         ({} ham vs positive, {} spam upgraded to smishing)",
        stats.input,
        stats.kept,
        counts[0],
        counts[1],
        counts[2],
        stats.label_conflicts,
        stats.ham_vs_positive,
        stats.upgraded_to_smishing
    );
    println!("config: {cfg:?}");

    if !skip_eval {
        let cv = cross_validate(&union, 5, &cfg, &|f, n| eprintln!("fold {f}/{n}"));
        println!("\n=== 5-fold CV on the de-duplicated union ===\n{cv}");
        if cv_only {
            return Ok(());
        }
        if sets.len() == 2 {
            for (a, b) in [(0, 1), (1, 0)] {
                let (tr, _) = dedup(sets[a].clone());
                let (te, _) = dedup(sets[b].clone());
                for drop in [false, true] {
                    let (r, n) = cross_dataset(&tr, &te, &cfg, drop);
                    println!(
                        "\n=== train {} -> test {} ({}; {} test messages) ===\n{r}",
                        data[a],
                        data[b],
                        if drop {
                            "near-duplicates of training messages removed"
                        } else {
                            "all test messages"
                        },
                        n
                    );
                }
            }
        }
    }

    let start = std::time::Instant::now();
    let model = train(&union, &cfg, &|_, _| {});
    let bytes = model.to_bytes();
    std::fs::write(&out, &bytes)?;
    println!(
        "\nwrote {out}: {} bytes, {} non-zero rows of {}, trained in {:.1}s",
        bytes.len(),
        model.nonzero_rows(),
        1u64 << model.bits(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
