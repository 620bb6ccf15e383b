//! The scanning entry point. `Shield` bundles the reference lists, the operator allow- and
//! blocklists and the model; `scan` runs URL and phone analysis, turns their findings into
//! model features, and combines the model's probabilities with strong signals into a
//! `Verdict`. Decision rule: a blocklisted URL, or any URL/number that is malicious on its own
//! (brand look-alike, deceptive userinfo, premium-rate number with a call-back lure), makes the
//! message smishing; otherwise the model decides (positive when P(spam)+P(smishing), raised
//! by any medium-risk URL or number, reaches the threshold). Weak signals such as a lone URL
//! shortener are reported but never decide alone.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::features::{FeatureVec, NamedFeature, caps_signal, featurize};
use crate::lexicon;
use crate::lists::Brand;
use crate::lists::Lists;
use crate::model::Model;
use crate::operator::{DomainList, SharedList};
use crate::phone::{PhoneVerdict, extract_phones, find_candidates, parse_region};
use crate::reason::{Label, Reason, Risk};
use crate::urls::{UrlVerdict, analyze_url_in, extract_urls, normalize};

static EMBEDDED_MODEL: &[u8] = include_bytes!("../data/model.bin");

/// What to scan. `url` and `phone` are extra items outside the text (e.g. a button link or a
/// contact card); `recipient_region` is a CLDR region such as "GB".
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScanInput {
    pub text: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub recipient_region: Option<String>,
}

impl ScanInput {
    pub fn text(text: impl Into<String>) -> ScanInput {
        ScanInput {
            text: text.into(),
            ..ScanInput::default()
        }
    }
}

/// Model class probabilities.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Probabilities {
    pub ham: f32,
    pub spam: f32,
    pub smishing: f32,
}

/// The outcome of a scan. `score` is the probability-like confidence that the message is
/// unwanted (spam or smishing), in 0..=1.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub label: Label,
    pub score: f32,
    pub probabilities: Probabilities,
    pub reasons: Vec<Reason>,
    pub urls: Vec<UrlVerdict>,
    pub phones: Vec<PhoneVerdict>,
}

/// Findings for one message before the model runs.
pub(crate) struct Analysis {
    pub urls: Vec<UrlVerdict>,
    pub phones: Vec<PhoneVerdict>,
    pub cleaned: String,
    pub signals: Vec<String>,
    /// Account-threat wording ("suspended", "expires"), or a demand to verify or update an
    /// account, a brand's service or by a deadline ("update your KYC", "re-activate today").
    pub lure: bool,
}

/// Number types that say nothing about intent: ordinary people share these all the time.
const BENIGN_TYPES: [&str; 4] = ["mobile", "fixed_line", "fixed_line_or_mobile", "unknown"];

/// URL and phone analysis plus the text with those spans cut out.
pub(crate) fn analyze(
    input: &ScanInput,
    lists: &Lists,
    allow: &DomainList,
    block: &DomainList,
) -> Analysis {
    let text = input.text.as_str();
    let region = input.recipient_region.as_deref().and_then(parse_region);
    let found = extract_urls(text, lists);
    let url_spans: Vec<(usize, usize)> = found.iter().map(|u| (u.start, u.end)).collect();
    let extra = input.url.as_deref().and_then(normalize);
    let mentioned = if found.is_empty() && extra.is_none() {
        Vec::new()
    } else {
        mentioned_brands(text, lists)
    };
    let mut urls: Vec<UrlVerdict> = found
        .iter()
        .chain(extra.as_ref())
        .map(|u| analyze_url_in(u, lists, allow, block, &mentioned))
        .collect();
    urls.dedup_by(|a, b| a.url == b.url);
    let mut phones = extract_phones(text, &url_spans, region);
    if let Some(p) = input.phone.as_deref() {
        phones.extend(crate::phone::analyze_phone(p, p, 0, region));
    }

    // Cut URL and number spans, in order.
    let mut spans = url_spans;
    spans.extend(
        find_candidates(text)
            .into_iter()
            .filter(|(a, b)| !spans_overlap(&found, *a, *b)),
    );
    spans.sort_unstable();
    let mut cleaned = String::with_capacity(text.len() + 16);
    let mut pos = 0;
    for (a, b) in spans {
        if a < pos {
            continue;
        }
        cleaned.push_str(&text[pos..a]);
        // Cut, not kept (see `features`): only the analysed signals reach the model.
        cleaned.push(' ');
        pos = b;
    }
    cleaned.push_str(&text[pos..]);
    let lex = lexicon::scan(&cleaned);
    for w in &lex.recovered {
        cleaned.push(' ');
        cleaned.push_str(w);
    }

    let mut signals = Vec::new();
    // Links to a domain no protected brand owns; an official brand link is everyday traffic.
    let odd_link = urls.iter().any(|u| !u.allowlisted && !u.official);
    let phone = phones
        .iter()
        .any(|p| p.number_type.as_deref() != Some("short_code"));
    lexicon::signals(&lex, odd_link, phone, &mut signals);
    if odd_link {
        signals.push("link:unofficial".into());
    }
    if phone {
        signals.push("phone:present".into());
    }
    for u in urls.iter().filter(|u| !u.allowlisted) {
        signals.extend(u.reasons.iter().map(|r| format!("url:{}", r.code)));
        match u.verdict {
            Risk::Malicious => signals.push("url_risk:malicious".into()),
            Risk::Suspicious => signals.push("url_risk:suspicious".into()),
            Risk::Clean => {}
        }
    }
    for p in &phones {
        signals.extend(p.reasons.iter().map(|r| format!("phone:{}", r.code)));
        if let Some(t) = p
            .number_type
            .as_deref()
            .filter(|t| !BENIGN_TYPES.contains(t))
        {
            signals.push(format!("phone_type:{t}"));
        }
    }
    signals.extend(caps_signal(text).map(str::to_string));
    signals.sort_unstable();
    signals.dedup();
    Analysis {
        urls,
        phones,
        cleaned,
        signals,
        lure: lex.has(lexicon::THREAT)
            || (lex.has(lexicon::VERIFY)
                && (lex.has(lexicon::ACCOUNT)
                    || lex.has(lexicon::BRAND)
                    || lex.has(lexicon::URGENT)
                    || lex.deadline)),
    }
}

/// Brand names too close to ordinary words to count unless capitalised ("Apple", "Chase").
const AMBIGUOUS_BRANDS: [&str; 9] = [
    "apple",
    "chase",
    "steam",
    "outlook",
    "adobe",
    "halifax",
    "santander",
    "hermes",
    "monzo",
];

/// Protected brands the message names: a word (or two joined, "Royal Mail") equal to a brand.
/// Three-letter brands (DHL, UPS, IRS) and ambiguous words only count when capitalised.
fn mentioned_brands<'l>(text: &str, lists: &'l Lists) -> Vec<&'l Brand> {
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut out: Vec<&Brand> = Vec::new();
    let mut consider = |candidate: &str, original: &str| {
        let lower = candidate.to_lowercase();
        let Some(b) = lists.brands.iter().find(|b| b.name() == lower) else {
            return;
        };
        let capital = original.chars().next().is_some_and(char::is_uppercase);
        let upper = original.chars().all(|c| !c.is_lowercase());
        let ok = if lower.len() <= 3 {
            upper
        } else if AMBIGUOUS_BRANDS.contains(&lower.as_str()) {
            capital
        } else {
            true
        };
        if ok && !out.iter().any(|o| o.name() == b.name()) {
            out.push(b);
        }
    };
    for (i, w) in words.iter().enumerate() {
        consider(w, w);
        if let Some(next) = words.get(i + 1) {
            consider(&format!("{w}{next}"), w);
        }
    }
    out
}

fn spans_overlap(urls: &[crate::urls::NormalizedUrl], a: usize, b: usize) -> bool {
    urls.iter().any(|u| a < u.end && b > u.start)
}

/// Features of a message exactly as `Shield::scan` computes them with empty operator lists and
/// no recipient region; used for training so train and scan features agree.
pub(crate) fn training_features(text: &str, lists: &Lists, bits: u8) -> FeatureVec {
    let empty = DomainList::default();
    let a = analyze(&ScanInput::text(text), lists, &empty, &empty);
    featurize(&a.cleaned, &a.signals, bits, None)
}

/// The detector. Cheap to clone (everything is behind `Arc`) and safe to share across threads.
#[derive(Clone, Debug)]
pub struct Shield {
    lists: Arc<Lists>,
    allow: Arc<SharedList>,
    block: Arc<SharedList>,
    model: Arc<Model>,
    threshold: f32,
}

impl Shield {
    /// The shipped model and embedded lists, empty operator lists.
    pub fn embedded() -> Shield {
        Shield::new(Shield::embedded_model(), Lists::embedded())
    }

    /// The shipped model alone.
    pub fn embedded_model() -> Model {
        // The shipped file is verified by the test suite; failing here is a packaging bug.
        Model::from_bytes(EMBEDDED_MODEL).expect("embedded model is valid")
    }

    /// Replaces the reference lists (e.g. `Lists::load_dir(operator_dir)?`).
    pub fn with_lists(mut self, lists: Lists) -> Shield {
        self.lists = Arc::new(lists);
        self
    }

    pub fn new(model: Model, lists: Lists) -> Shield {
        Shield {
            lists: Arc::new(lists),
            allow: Arc::new(SharedList::default()),
            block: Arc::new(SharedList::default()),
            threshold: model.threshold,
            model: Arc::new(model),
        }
    }

    /// A model loaded from a file, with the embedded lists.
    pub fn from_model_file(path: &std::path::Path) -> Result<Shield> {
        let bytes = std::fs::read(path).map_err(|e| crate::error::ShieldError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        Ok(Shield::new(Model::from_bytes(&bytes)?, Lists::embedded()))
    }

    /// Sets the P(spam)+P(smishing) threshold for a positive verdict (default: the one stored
    /// in the model, chosen at training time for recall at a precision floor).
    pub fn with_threshold(mut self, threshold: f32) -> Shield {
        self.threshold = threshold.clamp(0.0, 1.0);
        self
    }

    /// Operator allowlist; reload with `allowlist().reload_if_changed(path)`.
    pub fn allowlist(&self) -> &SharedList {
        &self.allow
    }

    /// Operator blocklist; reload with `blocklist().reload_if_changed(path)`.
    pub fn blocklist(&self) -> &SharedList {
        &self.block
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn lists(&self) -> &Lists {
        &self.lists
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Scans one message.
    pub fn scan(&self, input: &ScanInput) -> Verdict {
        let allow = self.allow.snapshot();
        let block = self.block.snapshot();
        let a = analyze(input, &self.lists, &allow, &block);
        let fv = featurize(&a.cleaned, &a.signals, self.model.bits, None);
        let p = self.model.probabilities(&fv);
        // Medium-risk URLs and numbers (suspicious, not malicious on their own) raise the
        // score by noisy-OR with half their risk: a lone shortener (0.3) adds 0.15, enough to
        // tip a borderline message but never to make an innocuous one positive by itself.
        let item_risk = a
            .urls
            .iter()
            .filter(|u| u.verdict == Risk::Suspicious)
            .map(|u| u.risk_score)
            .chain(
                a.phones
                    .iter()
                    .filter(|p| p.verdict == Risk::Suspicious)
                    .map(|p| p.risk_score),
            )
            .fold(0.0f32, f32::max)
            .min(0.99);
        // Next to threat wording a risky link or number is the lure itself: full weight.
        let share = if a.lure { 1.0 } else { 0.5 };
        let p_pos = 1.0 - (1.0 - (p[1] + p[2])) * (1.0 - share * item_risk);

        let blocklisted = a
            .urls
            .iter()
            .any(|u| u.reasons.iter().any(|r| r.code == "blocklisted"));
        // Threat wording with a link that is both unofficial and risky (shortener, odd TLD,
        // lure-word domain) is the shape of nearly every account-takeover campaign.
        let lure_link = a.lure
            && a.urls
                .iter()
                .any(|u| !u.allowlisted && !u.official && u.verdict >= Risk::Suspicious);
        let strong = lure_link
            || a.urls.iter().any(|u| u.verdict == Risk::Malicious)
            || a.phones.iter().any(|p| p.verdict == Risk::Malicious);
        let (label, score, by_model) = if blocklisted {
            (Label::Smishing, 1.0, false)
        } else if strong {
            (Label::Smishing, p_pos.max(0.9), false)
        } else if p_pos >= self.threshold {
            let l = if p[2] >= p[1] {
                Label::Smishing
            } else {
                Label::Spam
            };
            (l, p_pos, true)
        } else {
            (Label::Ham, p_pos, false)
        };

        let mut reasons: Vec<Reason> = Vec::new();
        for r in a
            .urls
            .iter()
            .flat_map(|u| &u.reasons)
            .chain(a.phones.iter().flat_map(|p| &p.reasons))
        {
            if !reasons.contains(r) {
                reasons.push(r.clone());
            }
        }
        if by_model || (label.is_positive() && p[1] + p[2] >= self.threshold) {
            reasons.push(self.explain(&a, label, p_pos));
        }
        Verdict {
            label,
            score: score.clamp(0.0, 1.0),
            probabilities: Probabilities {
                ham: p[0],
                spam: p[1],
                smishing: p[2],
            },
            reasons,
            urls: a.urls,
            phones: a.phones,
        }
    }

    /// Label only, without explanations (used for evaluation and throughput).
    pub fn classify(&self, text: &str) -> Label {
        self.scan(&ScanInput::text(text)).label
    }

    /// Names the words and signals that pushed the score toward `label` the most.
    fn explain(&self, a: &Analysis, label: Label, p_pos: f32) -> Reason {
        let mut names: Vec<NamedFeature> = Vec::new();
        featurize(&a.cleaned, &a.signals, self.model.bits, Some(&mut names));
        let k = label.index();
        let mut scored: Vec<(f32, String)> = names
            .into_iter()
            .filter(|n| n.explainable)
            .map(|n| {
                let c = n.val * (self.model.weight(n.idx, k) - self.model.weight(n.idx, 0));
                (c, n.name)
            })
            .filter(|(c, _)| *c > 0.0)
            .collect();
        scored.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.1.cmp(&y.1)));
        let mut top: Vec<String> = Vec::new();
        for (_, name) in scored {
            if !top.contains(&name) {
                top.push(name);
            }
            if top.len() == 5 {
                break;
            }
        }
        let terms = if top.is_empty() {
            String::from("overall wording")
        } else {
            top.iter()
                .map(|t| format!("'{t}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Reason::new(
            "text_classifier",
            format!(
                "text model rates it {label} (P(unwanted)={p_pos:.2}); strongest cues: {terms}"
            ),
        )
    }
}

#[cfg(test)]
mod tests;
