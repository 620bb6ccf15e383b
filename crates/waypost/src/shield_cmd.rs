//! `waypost shield train | eval | scan`: the smishing shield's model tooling.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use waypost_shield::{Label, ScanInput, Shield, TrainConfig, dedup, evaluate, load_tsv, train};

#[derive(Debug, clap::Subcommand)]
pub enum ShieldCommand {
    /// Train a model from labelled TSV files (`label<TAB>text`; ham, spam, smishing).
    Train {
        /// Training data; repeat for several files (merged and de-duplicated).
        #[arg(long = "data", value_name = "FILE.tsv", required = true)]
        data: Vec<PathBuf>,
        /// Where to write the model.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Seed for shuffling; the same seed and data give the same model, byte for byte.
        #[arg(long, default_value_t = TrainConfig::default().seed)]
        seed: u64,
    },
    /// Evaluate a model (default: the one built in) on a labelled TSV file.
    Eval {
        #[arg(long, value_name = "FILE")]
        model: Option<PathBuf>,
        #[arg(long = "data", value_name = "FILE.tsv", required = true)]
        data: Vec<PathBuf>,
    },
    /// Score one message with the built-in model and print the verdict as JSON.
    Scan {
        /// The message text.
        text: String,
        /// The recipient's region (ISO 3166 code, e.g. GB) for phone checks.
        #[arg(long)]
        region: Option<String>,
    },
}

pub fn run(cmd: ShieldCommand) -> anyhow::Result<()> {
    match cmd {
        ShieldCommand::Train { data, out, seed } => train_command(&data, &out, seed),
        ShieldCommand::Eval { model, data } => eval_command(model, &data),
        ShieldCommand::Scan { text, region } => {
            let input = ScanInput {
                text,
                recipient_region: region,
                ..Default::default()
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&Shield::embedded().scan(&input))?
            );
            Ok(())
        }
    }
}

fn load_all(files: &[PathBuf]) -> anyhow::Result<Vec<waypost_shield::Example>> {
    let mut all = Vec::new();
    for file in files {
        all.extend(load_tsv(file).with_context(|| format!("--data {}", file.display()))?);
    }
    if all.is_empty() {
        bail!("--data: the files hold no examples");
    }
    Ok(all)
}

fn train_command(files: &[PathBuf], out: &PathBuf, seed: u64) -> anyhow::Result<()> {
    let (examples, stats) = dedup(load_all(files)?);
    let count = |l: Label| examples.iter().filter(|e| e.label == l).count();
    println!(
        "{} rows, {} unique after de-duplication (ham {}, spam {}, smishing {})",
        stats.input,
        stats.kept,
        count(Label::Ham),
        count(Label::Spam),
        count(Label::Smishing)
    );
    let config = TrainConfig {
        seed,
        ..TrainConfig::default()
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("training {bar:40} {pos}/{len} steps [{elapsed}]")
            .expect("valid template"),
    );
    let started = Instant::now();
    let model = train(&examples, &config, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish();
    let bytes = model.to_bytes();
    std::fs::write(out, &bytes).with_context(|| format!("--out {}", out.display()))?;
    println!(
        "wrote {} ({} bytes) in {:.1}s with seed {seed}",
        out.display(),
        bytes.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn eval_command(model: Option<PathBuf>, files: &[PathBuf]) -> anyhow::Result<()> {
    let shield = match &model {
        Some(path) => {
            Shield::from_model_file(path).with_context(|| format!("--model {}", path.display()))?
        }
        None => Shield::embedded(),
    };
    let examples = load_all(files)?;
    let bar =
        ProgressBar::new_spinner().with_message(format!("scoring {} messages", examples.len()));
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    let report = evaluate(&shield, &examples);
    bar.finish_and_clear();
    println!("{report}");
    Ok(())
}
