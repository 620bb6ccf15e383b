//! Public-API checks: the shipped model loads fast and intact, and the crate's train/evaluate
//! entry points work together (on tiny data; the full data set is never used in tests).

use std::time::Instant;

use waypost_shield::{
    Example, Label, Model, ScanInput, Shield, TrainConfig, cross_validate, evaluate, parse_tsv,
    train,
};

const MODEL: &[u8] = include_bytes!("../data/model.bin");

#[test]
fn embedded_model_round_trips_and_loads_quickly() {
    let t = Instant::now();
    let m = Model::from_bytes(MODEL).unwrap();
    // Generous bound for debug builds on a loaded machine; release loads in a few ms.
    assert!(t.elapsed().as_millis() < 2000);
    assert_eq!(m.bits(), 18);
    assert_eq!(m.to_bytes(), MODEL);
    assert!(MODEL.len() < 4 * 1024 * 1024);
}

#[test]
fn embedded_shield_classifies_clear_cases() {
    let s = Shield::embedded();
    let spam = s.scan(&ScanInput::text(
        "Congratulations! You've won a £1000 Tesco gift card. Claim now at tesco-rewards.xyz/claim",
    ));
    assert!(spam.label.is_positive(), "{spam:?}");
    assert!(!spam.reasons.is_empty());
    let ham = s.scan(&ScanInput::text(
        "Can you grab some milk on your way home? Thanks x",
    ));
    assert_eq!(ham.label, Label::Ham);
}

fn tiny_tsv() -> Vec<Example> {
    let text = "label\ttext
spam\tWINNER! You won a £1000 prize, call 09061743386 now to claim
spam\tFree entry in our weekly draw, txt WIN to 87066 to claim your prize
spam\tURGENT your mobile number was awarded £2000, call 09064019788 to claim
spam\tYou have won a free holiday! Claim at www.claim-prize.xyz today
smishing\tYour parcel is held, pay the fee at paypa1-login.com/x
smishing\tYour account is locked, verify at http://amaz0n-security.com/verify
ham\tare we still on for lunch tomorrow?
ham\tok see you at the pub at 8
ham\tcan you pick up milk on the way home
ham\tthanks for dinner last night, it was lovely
ham\trunning late, be there in ten minutes
ham\thappy birthday! hope you have a great day
";
    parse_tsv(text, "tiny.tsv").unwrap()
}

#[test]
fn train_then_evaluate_on_tiny_data() {
    let data = tiny_tsv();
    let cfg = TrainConfig {
        bits: 14,
        epochs: 5,
        ..TrainConfig::default()
    };
    let model = Model::from_bytes(&train(&data, &cfg, &|_, _| {}).to_bytes()).unwrap();
    let report = evaluate(
        &Shield::new(model, waypost_shield::Lists::embedded()),
        &data,
    );
    assert_eq!(report.examples, data.len() as u64);
    assert!(report.positive.f1 > 0.99, "{report}");
    let cv = cross_validate(&data, 3, &cfg, &|_, _| {});
    assert_eq!(cv.examples, data.len() as u64);
}
