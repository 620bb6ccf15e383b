//! Feature extraction for the linear model: hashed word unigrams and bigrams, character 3- to
//! 5-grams, and named signal features (URL and phone findings, shouting). Text is normalised
//! first: URLs and phone numbers are cut out and only their analysed risk signals become
//! features (in the 2010s SMS training data almost no ham has a link or a full number, so mere
//! presence would be learnt as spam and misfire on WhatsApp traffic where both are everyday),
//! letters are lowercased and remaining digits collapsed to shapes. Block norms have a floor so
//! very short messages do not get outsized feature values. Changing anything here changes feature
//! indices, so `FEATURE_VERSION` is stored in the model and checked on load.

use crate::hash::Fnv;

/// Bump whenever extraction changes; models record it and refuse a mismatch.
pub const FEATURE_VERSION: u32 = 2;

/// Char n-grams outnumber words several times over; halving their block's norm keeps them
/// from drowning out word and signal features (measured: better cross-validated F1).
const CHAR_W: f32 = 0.5;
/// Floors for the block norms (1/sqrt(max(n, floor))): without them a three-word message gets
/// each feature at 0.58 against 0.16 in a typical spam and is scored overconfidently.
const MIN_WORDS: usize = 16;
const MIN_CHARS: usize = 64;
const NS_WORD: u8 = 1;
const NS_BIGRAM: u8 = 2;
const NS_CHAR: u8 = 3;
const NS_SIGNAL: u8 = 4;
const NS_BIAS: u8 = 5;

/// Sparse feature vector: bucket indices and values (duplicates allowed, they add up).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeatureVec {
    pub idx: Vec<u32>,
    pub val: Vec<f32>,
}

/// Human-readable name of a feature, kept only when explaining a verdict.
#[derive(Clone, Debug)]
pub(crate) struct NamedFeature {
    pub idx: u32,
    pub val: f32,
    pub name: String,
    /// Char n-grams are too cryptic to show a user as a reason.
    pub explainable: bool,
}

fn bucket(h: u64, bits: u8) -> u32 {
    (h & ((1u64 << bits) - 1)) as u32
}

/// Signal feature index, shared with training so names hash identically.
pub(crate) fn signal_index(name: &str, bits: u8) -> u32 {
    let mut h = Fnv::new(NS_SIGNAL);
    h.bytes(name.as_bytes());
    bucket(h.finish(), bits)
}

/// Normalises one token: lowercase, all-digit tokens become their length shape (`<d11>`),
/// digits inside words become `0` (so `2nd`/`4th` share a form and codes do not memorise).
fn norm_token(tok: &str, out: &mut String) {
    out.clear();
    if tok.chars().all(|c| c.is_ascii_digit()) {
        out.push_str("<d");
        out.push_str(&tok.len().min(12).to_string());
        out.push('>');
        return;
    }
    for c in tok.chars() {
        if c.is_ascii_digit() {
            out.push('0');
        } else {
            out.extend(c.to_lowercase());
        }
    }
}

/// Symbols that carry signal on their own (money, urgency).
fn is_symbol_token(c: char) -> bool {
    matches!(c, '£' | '$' | '€' | '₹' | '!' | '?' | '%' | '&' | '*')
}

/// Splits cleaned text into tokens: alphanumeric runs and single signal symbols.
fn tokens(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            let c = rest.chars().next()?;
            let len = c.len_utf8();
            if c.is_alphanumeric() {
                let end = rest
                    .char_indices()
                    .find(|&(_, ch)| !ch.is_alphanumeric())
                    .map_or(rest.len(), |(i, _)| i.max(len));
                let (tok, tail) = rest.split_at(end);
                rest = tail;
                return Some(tok);
            }
            let (sym, tail) = rest.split_at(len);
            rest = tail;
            if is_symbol_token(c) {
                return Some(sym);
            }
        }
    })
}

/// Extracts features from `cleaned` text (placeholders already substituted) plus named signals.
pub(crate) fn featurize(
    cleaned: &str,
    signals: &[String],
    bits: u8,
    mut names: Option<&mut Vec<NamedFeature>>,
) -> FeatureVec {
    let mut fv = FeatureVec::default();
    let mut tok = String::new();
    let mut prev = String::new();
    let mut word_idx: Vec<u32> = Vec::with_capacity(64);
    let mut word_names: Vec<(u32, String)> = Vec::new();
    let want = names.is_some();
    for raw in tokens(cleaned) {
        norm_token(raw, &mut tok);
        let mut h = Fnv::new(NS_WORD);
        h.bytes(tok.as_bytes());
        let i = bucket(h.finish(), bits);
        word_idx.push(i);
        if want {
            word_names.push((i, tok.clone()));
        }
        if !prev.is_empty() {
            let mut h = Fnv::new(NS_BIGRAM);
            h.bytes(prev.as_bytes());
            h.byte(0xff);
            h.bytes(tok.as_bytes());
            let i = bucket(h.finish(), bits);
            word_idx.push(i);
            if want {
                word_names.push((i, format!("{prev} {tok}")));
            }
        }
        std::mem::swap(&mut prev, &mut tok);
    }
    let scale = 1.0 / (word_idx.len().max(MIN_WORDS) as f32).sqrt();
    for (n, &i) in word_idx.iter().enumerate() {
        fv.idx.push(i);
        fv.val.push(scale);
        if let Some(names) = names.as_deref_mut() {
            names.push(NamedFeature {
                idx: i,
                val: scale,
                name: word_names[n].1.clone(),
                explainable: true,
            });
        }
    }

    // Character n-grams over the lowercased text with digits folded and spaces collapsed:
    // robust to misspellings, l33t-speak variants and unseen words. Punctuation is dropped, so
    // a name split to dodge filters ("PAY-TM", "P.a.y.p.a.l") yields the same n-grams.
    let mut chars: Vec<char> = Vec::with_capacity(cleaned.len() + 2);
    chars.push(' ');
    for c in cleaned.chars() {
        let c = if c.is_ascii_digit() {
            '0'
        } else if c.is_whitespace() {
            ' '
        } else if !c.is_alphanumeric() && !is_symbol_token(c) {
            continue;
        } else {
            c.to_lowercase().next().unwrap_or(c)
        };
        if c == ' ' && chars.last() == Some(&' ') {
            continue;
        }
        chars.push(c);
    }
    if chars.last() != Some(&' ') {
        chars.push(' ');
    }
    let start = fv.idx.len();
    for i in 0..chars.len() {
        let mut h = Fnv::new(NS_CHAR);
        for (n, &c) in chars[i..].iter().take(5).enumerate() {
            h.char(c);
            if n >= 2 {
                fv.idx.push(bucket(h.finish(), bits));
                if let Some(names) = names.as_deref_mut() {
                    names.push(NamedFeature {
                        idx: *fv.idx.last().unwrap_or(&0),
                        val: 0.0,
                        name: chars[i..=i + n].iter().collect(),
                        explainable: false,
                    });
                }
            }
        }
    }
    let n_char = fv.idx.len() - start;
    let scale = CHAR_W / (n_char.max(MIN_CHARS) as f32).sqrt();
    fv.val.resize(fv.idx.len(), scale);
    if let Some(names) = names.as_deref_mut() {
        for nf in names.iter_mut().filter(|n| !n.explainable) {
            nf.val = scale;
        }
    }

    for s in signals {
        let i = signal_index(s, bits);
        fv.idx.push(i);
        fv.val.push(1.0);
        if let Some(names) = names.as_deref_mut() {
            names.push(NamedFeature {
                idx: i,
                val: 1.0,
                name: format!("signal {s}"),
                explainable: true,
            });
        }
    }
    let mut h = Fnv::new(NS_BIAS);
    h.byte(0);
    fv.idx.push(bucket(h.finish(), bits));
    fv.val.push(1.0);
    fv
}

/// Share of upper-case letters, a classic "shouting" spam cue lost by lowercasing.
pub(crate) fn caps_signal(text: &str) -> Option<&'static str> {
    let (mut up, mut letters) = (0usize, 0usize);
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        up += usize::from(c.is_uppercase());
    }
    if letters < 12 {
        return None;
    }
    let r = up as f32 / letters as f32;
    if r >= 0.6 {
        Some("caps_high")
    } else if r >= 0.25 {
        Some("caps_some")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_words_and_symbols() {
        let t: Vec<&str> = tokens("WIN £500 now!! call-back 2nite").collect();
        assert_eq!(
            t,
            vec!["WIN", "£", "500", "now", "!", "!", "call", "back", "2nite"]
        );
        assert_eq!(tokens("").count(), 0);
        assert_eq!(tokens("  ...  ").count(), 0);
    }

    #[test]
    fn token_normalisation() {
        let mut s = String::new();
        norm_token("08712300220", &mut s);
        assert_eq!(s, "<d11>");
        norm_token("2NITE", &mut s);
        assert_eq!(s, "0nite");
    }

    #[test]
    fn features_are_deterministic_and_in_range() {
        let sig = vec!["url:url_shortener".to_string()];
        let a = featurize("Claim your prize now", &sig, 12, None);
        let b = featurize("Claim your prize now", &sig, 12, None);
        assert_eq!(a, b);
        assert_eq!(a.idx.len(), a.val.len());
        assert!(a.idx.iter().all(|&i| i < 1 << 12));
        assert!(a.idx.contains(&signal_index("url:url_shortener", 12)));
        let c = featurize("completely different words", &[], 12, None);
        assert_ne!(a.idx, c.idx);
    }

    #[test]
    fn names_line_up_with_indices() {
        let mut names = Vec::new();
        let fv = featurize("call now", &["phone".into()], 16, Some(&mut names));
        assert!(names.iter().any(|n| n.name == "call now" && n.explainable));
        assert!(names.iter().any(|n| n.name == "signal phone"));
        for n in &names {
            assert!(fv.idx.contains(&n.idx));
        }
        assert_eq!(names.len() + 1, fv.idx.len());
    }

    #[test]
    fn caps() {
        assert_eq!(
            caps_signal("URGENT YOU HAVE WON A PRIZE"),
            Some("caps_high")
        );
        assert_eq!(caps_signal("see you later at the pub tonight"), None);
        assert_eq!(caps_signal("OK"), None);
    }
}
