//! Writes seeded synthetic training messages (TSV, `label<TAB>text`) for the lure kinds the
//! 2010s SMS corpora lack: account-threat phishing with odd links or call-back numbers, KYC
//! and wallet scams, parcel-fee and refund lures, advance-fee and lottery fraud, promotions
//! with a number to call; and, so the model does not learn "link or number ⇒ spam", ordinary
//! modern messages carrying official brand links, one-time codes and phone numbers. Fillers
//! and templates are drawn by SplitMix64 from `--seed`, so the output is byte-identical for a
//! seed. Run: cargo run --release -p waypost-shield --example synth_messages -- --out FILE
#![forbid(unsafe_code)]

use std::fmt::Write as _;

mod fillers;
mod generator;
mod templates;

use generator::Gen;
use templates::{HAM, SMISHING, SPAM};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut out = String::from("data/train/synthetic.tsv");
    let mut seed = 2024u64;
    let mut scale = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = args.next().ok_or("--out needs a file")?,
            "--seed" => seed = args.next().ok_or("--seed needs a number")?.parse()?,
            "--scale" => scale = args.next().ok_or("--scale needs a number")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mut g = Gen::new(seed);
    let mut tsv = String::from("label\ttext\n");
    let mut counts = [0usize; 3];
    for (label, templates, n) in [
        ("smishing", SMISHING, 1400 * scale),
        ("spam", SPAM, 700 * scale),
        ("ham", HAM, 2000 * scale),
    ] {
        for _ in 0..n {
            let t = templates[g.below(templates.len())];
            let mut text = g.fill(t);
            if label != "ham" && g.chance(0.15) {
                text = g.obfuscate(&text);
            }
            if g.chance(0.1) {
                text = text.to_uppercase();
            }
            writeln!(tsv, "{label}\t{text}")?;
            counts[match label {
                "smishing" => 2,
                "spam" => 1,
                _ => 0,
            }] += 1;
        }
    }
    std::fs::write(&out, tsv)?;
    println!(
        "wrote {out}: ham {}, spam {}, smishing {} (seed {seed})",
        counts[0], counts[1], counts[2]
    );
    Ok(())
}
