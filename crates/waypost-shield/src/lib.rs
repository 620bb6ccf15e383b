//! Waypost Shield: smishing and spam detection for WhatsApp Business messages.
//!
//! `Shield::scan` extracts and analyses URLs (brand look-alikes, shorteners, raw IPs, userinfo
//! tricks, suspicious TLDs, free hosting, dynamic DNS, ...) and phone numbers (premium rate,
//! shared cost, foreign region, call-back lures), feeds those findings with hashed word and
//! character n-grams to a small linear model, and returns a `Verdict` whose every positive
//! label carries named reasons. A lure lexicon (account threats, verification demands,
//! deadlines, money lures; `lexicon`) adds wording signals that generalise across campaigns.
//! `train`, `evaluate`, `cross_validate` and `cross_dataset` support the `waypost shield
//! train|eval` commands; `split` holds the campaign-grouped evaluation and the precision/recall
//! curve the shipped threshold is chosen from. Message text is never logged.
#![forbid(unsafe_code)]

pub mod data;
pub mod error;
pub mod eval;
mod features;
mod hash;
mod lexicon;
pub mod lists;
pub mod model;
pub mod operator;
pub mod phone;
pub mod reason;
mod shield;
pub mod split;
pub mod train;
pub mod urls;

pub use data::{
    DedupStats, Example, dedup, dedup_key, kfold, load_tsv, parse_tsv, without_overlap,
};
pub use error::{Result, ShieldError};
pub use eval::{ClassMetrics, EvalReport, cross_dataset, cross_validate, evaluate};
pub use features::{FEATURE_VERSION, FeatureVec};
pub use lists::{Brand, Lists};
pub use model::Model;
pub use operator::{DomainList, SharedList};
pub use phone::PhoneVerdict;
pub use reason::{Label, Reason, Risk};
pub use shield::{Probabilities, ScanInput, Shield, Verdict};
pub use train::{TrainConfig, train};
pub use urls::UrlVerdict;
