//! Measures embedded-model load time and single-core scan throughput. With `--data FILE.tsv`
//! it scans the messages of that file (text is never printed); otherwise a built-in mix.
//!
//! Usage: cargo run --release --example throughput [-- --data FILE.tsv] [--secs N]
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use waypost_shield::{Model, ScanInput, Shield, load_tsv};

const MIX: &[&str] = &[
    "are we still on for lunch tomorrow? text me when you leave",
    "URGENT! Your mobile was awarded a £2000 bonus. Call 09064019788 now to claim",
    "Your parcel is held at our depot, pay the £1.99 fee at paypa1-login.com/x",
    "ok see you at the pub at 8, bring the charger pls",
    "Free entry in 2 a wkly comp to win FA Cup final tkts. Text FA to 87121 to receive entry",
    "sorry I missed your call, can you ring me back later?",
    "Check out the photos https://bit.ly/3Gx7aQp",
    "Your account has been suspended, verify at https://paypal.com.secure-login.xyz/signin",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut texts: Vec<String> = MIX.iter().map(|s| s.to_string()).collect();
    let mut secs = 3.0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => {
                let path = args.next().ok_or("--data needs a file")?;
                texts = load_tsv(path)?.into_iter().map(|e| e.text).collect();
            }
            "--secs" => secs = args.next().ok_or("--secs needs a number")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }

    let bytes = include_bytes!("../data/model.bin");
    let t = Instant::now();
    let model = Model::from_bytes(bytes)?;
    let parse_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let shield = Shield::embedded();
    let embedded_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "model: {} bytes, {} non-zero rows; from_bytes {parse_ms:.2} ms; Shield::embedded {embedded_ms:.2} ms",
        bytes.len(),
        model.nonzero_rows()
    );

    // Warm-up: first use of the phone metadata and regex caches is not steady state.
    for t in &texts {
        std::hint::black_box(shield.scan(&ScanInput::text(t.as_str())));
    }
    let inputs: Vec<ScanInput> = texts.iter().map(|t| ScanInput::text(t.as_str())).collect();
    let deadline = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut n = 0u64;
    let mut positives = 0u64;
    while start.elapsed() < deadline {
        for input in &inputs {
            if shield.scan(input).label.is_positive() {
                positives += 1;
            }
            n += 1;
        }
    }
    let el = start.elapsed().as_secs_f64();
    println!(
        "scan: {n} messages in {el:.2}s on one thread = {:.0} messages/s ({:.1} µs/message, {positives} positive)",
        n as f64 / el,
        el * 1e6 / n as f64
    );
    Ok(())
}
