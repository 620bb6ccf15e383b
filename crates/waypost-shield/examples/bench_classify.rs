//! Benchmark of the shield engine on one core: messages scanned per second against a baseline
//! measured in the same run on the same texts, plus the model's size and load time.
//!
//! The baseline is the least any bag-of-words classifier must do with a message: lowercase it,
//! split it into words and hash each word (FNV-1a). The ratio (baseline rate ÷ scan rate) says
//! how many times that floor the full scan costs, and stays comparable across machines.
//! Baseline and scan alternate in rounds and each reports its median round, so a noisy
//! neighbour affects both alike. Message text is never printed.
//!
//! Usage: cargo run --release -p waypost-shield --example bench_classify --
//!        [--data FILE.tsv]… [--secs N] [--goal MSGS_PER_SEC]
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use waypost_shield::{Lists, Model, ScanInput, Shield, load_tsv};

/// Used when no data file is given or found.
const BUILT_IN: &[&str] = &[
    "are we still on for lunch tomorrow? text me when you leave",
    "URGENT! Your mobile was awarded a £2000 bonus. Call 09064019788 now to claim",
    "Your parcel is held at our depot, pay the £1.99 fee at paypa1-login.com/x",
    "ok see you at the pub at 8, bring the charger pls",
    "Free entry in 2 a wkly comp to win FA Cup final tkts. Text FA to 87121 to receive entry",
    "sorry I missed your call, can you ring me back later?",
    "Check out the photos https://bit.ly/3Gx7aQp",
    "Your account has been suspended, verify at https://paypal.com.secure-login.xyz/signin",
];

const ROUNDS: u32 = 5;
const MODEL_BYTES: &[u8] = include_bytes!("../data/model.bin");

struct Args {
    data: Vec<String>,
    secs: f64,
    goal: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        data: Vec::new(),
        secs: 5.0,
        goal: 50_000.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--data" => args.data.push(value()?),
            "--secs" => args.secs = value()?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--goal" => args.goal = value()?.parse().map_err(|e| format!("--goal: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// The baseline: lowercase, split into words, FNV-1a hash of each word.
fn tokenise_and_hash(text: &str) -> u64 {
    let lower = text.to_lowercase();
    let mut acc = 0u64;
    for word in lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in word.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        acc = acc.wrapping_add(h);
    }
    acc
}

/// Messages per second of `f` over `texts` for `budget`, whole passes only.
fn rate(texts: &[ScanInput], budget: Duration, mut f: impl FnMut(&ScanInput)) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for t in texts {
            f(t);
        }
        n += texts.len() as u64;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Median time of `runs` calls of `f`, in milliseconds.
fn time_ms<T>(runs: u32, mut f: impl FnMut() -> T) -> f64 {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                black_box(f());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

fn bench_set(name: &str, texts: &[String], shield: &Shield, args: &Args) -> f64 {
    let inputs: Vec<ScanInput> = texts.iter().map(|t| ScanInput::text(t.as_str())).collect();
    let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
    // Warm-up: the first use of lazily built tables is not steady state.
    for i in &inputs {
        black_box(shield.scan(i));
        black_box(tokenise_and_hash(&i.text));
    }
    let round = Duration::from_secs_f64(args.secs / f64::from(ROUNDS));
    let (mut base, mut scan) = (Vec::new(), Vec::new());
    let mut positives = 0u64;
    for _ in 0..ROUNDS {
        base.push(rate(&inputs, round, |i| {
            black_box(tokenise_and_hash(&i.text));
        }));
        scan.push(rate(&inputs, round, |i| {
            if shield.scan(i).label.is_positive() {
                positives += 1;
            }
        }));
    }
    let (base, scan) = (median(base), median(scan));
    black_box(positives);
    println!(
        "| {name} | {} | {:.0} | {base:.0} | {scan:.0} | {:.1} | {:.1}× | {} |",
        texts.len(),
        chars as f64 / texts.len() as f64,
        1e6 / scan,
        base / scan,
        if scan >= args.goal { "yes" } else { "NO" },
    );
    scan
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;

    let model = Model::from_bytes(MODEL_BYTES)?;
    println!("## Model\n");
    println!("| measure | value |\n|---|---|");
    println!(
        "| embedded model size | {} bytes ({:.1} KiB), {} non-zero weight rows |",
        MODEL_BYTES.len(),
        MODEL_BYTES.len() as f64 / 1024.0,
        model.nonzero_rows()
    );
    println!(
        "| `Model::from_bytes` (parse the model) | {:.2} ms |",
        time_ms(21, || Model::from_bytes(MODEL_BYTES))
    );
    println!(
        "| `Lists::embedded` (parse the reference lists) | {:.2} ms |",
        time_ms(21, Lists::embedded)
    );
    println!(
        "| `Shield::embedded` (both: what start-up pays) | {:.2} ms |",
        time_ms(21, Shield::embedded)
    );

    let shield = Shield::embedded();
    println!(
        "\n## Scan throughput, one thread\n\nBaseline: lowercase + split into words + FNV-1a per word, same texts, same run; \
         {ROUNDS} alternating rounds of {:.1} s each, medians. Goal: ≥ {:.0} messages/s.\n",
        args.secs / f64::from(ROUNDS),
        args.goal
    );
    println!(
        "| data set | messages | mean chars | baseline msgs/s | scan msgs/s | µs/scan | scan cost ÷ baseline cost | goal met |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    let mut sets: Vec<(String, Vec<String>)> = Vec::new();
    for path in &args.data {
        let texts: Vec<String> = load_tsv(path)?.into_iter().map(|e| e.text).collect();
        let name = std::path::Path::new(path)
            .file_name()
            .map_or(path.clone(), |n| n.to_string_lossy().into_owned());
        sets.push((name, texts));
    }
    if sets.is_empty() {
        sets.push((
            "built-in sample (8 messages)".into(),
            BUILT_IN.iter().map(|s| s.to_string()).collect(),
        ));
    }
    let mut all_met = true;
    for (name, texts) in &sets {
        all_met &= bench_set(name, texts, &shield, &args) >= args.goal;
    }

    // The largest message the API accepts, dense with links and numbers: the single-scan
    // worst case, which decides whether scanning inline on the async runtime is acceptable.
    let mut longest = String::new();
    for i in 0.. {
        let part = format!(
            "Pay the fee at paypa1-login{i}.com/x or bit.ly/{i} and call 0906401{:04} now. ",
            i % 10_000
        );
        if longest.chars().count() + part.chars().count() > 4096 {
            break;
        }
        longest.push_str(&part);
    }
    let input = ScanInput::text(longest.as_str());
    let micros = time_ms(51, || shield.scan(&input)) * 1e3;
    println!(
        "\nLongest accepted message ({} characters, {} links and {} numbers): {micros:.0} µs per scan (median of 51).",
        longest.chars().count(),
        longest.matches("paypa1").count() * 2,
        longest.matches("0906").count(),
    );
    if !all_met {
        eprintln!(
            "scan throughput below the goal of {:.0} messages/s",
            args.goal
        );
        std::process::exit(2);
    }
    Ok(())
}
