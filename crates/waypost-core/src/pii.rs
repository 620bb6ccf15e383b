//! PII redaction before text leaves for a language model: emails, IBANs
//! (mod-97 checked), card numbers (Luhn checked), national ids (US SSN,
//! UK NI number), phone numbers and street addresses are replaced by typed
//! placeholders (`[PHONE_1]`). [`Redaction::restore`] puts the originals
//! back into the model's reply, only where the model echoed a placeholder.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

/// The kinds of personal data recognised, in the order they are looked for
/// (the more specific first, so an IBAN's digits are not taken for a phone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PiiKind {
    Email,
    Iban,
    Card,
    NationalId,
    Phone,
    Address,
}

impl PiiKind {
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "EMAIL",
            PiiKind::Iban => "IBAN",
            PiiKind::Card => "CARD",
            PiiKind::NationalId => "NATIONAL_ID",
            PiiKind::Phone => "PHONE",
            PiiKind::Address => "ADDRESS",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Iban => "iban",
            PiiKind::Card => "card",
            PiiKind::NationalId => "national_id",
            PiiKind::Phone => "phone",
            PiiKind::Address => "address",
        }
    }
}

static PATTERNS: LazyLock<Vec<(PiiKind, Regex)>> = LazyLock::new(|| {
    let r = |s: &str| Regex::new(s).expect("a PII pattern compiles");
    vec![
        (
            PiiKind::Email,
            r(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b"),
        ),
        (
            PiiKind::Iban,
            r(r"(?i)\b[a-z]{2}\d{2}(?:[ ]?[a-z0-9]{4}){2,7}(?:[ ]?[a-z0-9]{1,4})?\b"),
        ),
        (PiiKind::Card, r(r"\b\d(?:[ -]?\d){12,18}\b")),
        (
            PiiKind::NationalId,
            r(r"(?i)\b(?:\d{3}-\d{2}-\d{4}|[a-ceghj-pr-tw-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[a-d])\b"),
        ),
        (PiiKind::Phone, r(r"(?:\+|\b00)?\d[\d ()./-]{6,18}\d\b")),
        (
            PiiKind::Address,
            r(
                r"(?i)\b\d{1,5}[a-z]?\s+(?:[a-zäöüß]+\s){0,3}(?:street|st\.|road|rd\.|avenue|ave\.|lane|drive|boulevard|blvd\.?|way|place)\b|\b[a-zäöüß-]+(?:straße|strasse|weg|platz|allee|gasse)\s+\d{1,5}[a-z]?\b",
            ),
        ),
    ]
});

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn iban_valid(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let rearranged = compact[4..].chars().chain(compact[..4].chars());
    let mut rem: u32 = 0;
    for c in rearranged {
        let v = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        for d in if v >= 10 {
            vec![v / 10, v % 10]
        } else {
            vec![v]
        } {
            rem = (rem * 10 + d) % 97;
        }
    }
    rem == 1
}

/// Whether a candidate really is of `kind` (checksums where there are some).
fn confirmed(kind: PiiKind, s: &str) -> bool {
    match kind {
        PiiKind::Iban => iban_valid(s),
        PiiKind::Card => {
            let d: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
            (13..=19).contains(&d.len()) && luhn(&d)
        }
        PiiKind::Phone => {
            let n = s.chars().filter(char::is_ascii_digit).count();
            (7..=15).contains(&n)
        }
        _ => true,
    }
}

/// A text with its personal data replaced, and how to put it back.
#[derive(Clone, Default)]
pub struct Redaction {
    pub text: String,
    /// Placeholder → original.
    originals: BTreeMap<String, String>,
    counts: BTreeMap<PiiKind, u32>,
}

impl std::fmt::Debug for Redaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redaction")
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl Redaction {
    /// How many items of each kind were replaced.
    pub fn counts(&self) -> &BTreeMap<PiiKind, u32> {
        &self.counts
    }

    pub fn total(&self) -> u32 {
        self.counts.values().sum()
    }

    /// `reply` with each placeholder it contains replaced by its original.
    pub fn restore(&self, reply: &str) -> String {
        let mut out = reply.to_owned();
        for (placeholder, original) in &self.originals {
            out = out.replace(placeholder.as_str(), original);
        }
        out
    }
}

/// Replaces the personal data in `text`. The same value gets the same placeholder.
pub fn redact(text: &str) -> Redaction {
    let mut r = Redaction {
        text: text.to_owned(),
        ..Default::default()
    };
    let mut seen: BTreeMap<(PiiKind, String), String> = BTreeMap::new();
    for (kind, pattern) in PATTERNS.iter() {
        let current = r.text.clone();
        let mut out = String::with_capacity(current.len());
        let mut last = 0;
        for m in pattern.find_iter(&current) {
            // Never re-redact inside a placeholder already put in.
            let before = &current[..m.start()];
            // A number after `+` is an international phone number, whatever its checksum.
            let phone_like = *kind == PiiKind::Card && before.ends_with('+');
            if before.ends_with('[') || phone_like || !confirmed(*kind, m.as_str()) {
                continue;
            }
            let value = m.as_str().to_owned();
            let placeholder = match seen.get(&(*kind, value.clone())) {
                Some(p) => p.clone(),
                None => {
                    let n = r.counts.entry(*kind).or_default();
                    *n += 1;
                    let p = format!("[{}_{}]", kind.placeholder(), n);
                    seen.insert((*kind, value.clone()), p.clone());
                    r.originals.insert(p.clone(), value);
                    p
                }
            };
            out.push_str(&current[last..m.start()]);
            out.push_str(&placeholder);
            last = m.end();
        }
        out.push_str(&current[last..]);
        r.text = out;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_replaced_by_a_typed_placeholder() {
        let r = redact(
            "I'm anna.b@example.org, call +49 151 1234 5678. Card 4111 1111 1111 1111, \
             IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789, I live at 221 Baker Street.",
        );
        assert_eq!(
            r.text,
            "I'm [EMAIL_1], call [PHONE_1]. Card [CARD_1], IBAN [IBAN_1], SSN [NATIONAL_ID_1], \
             I live at [ADDRESS_1]."
        );
        assert_eq!(r.total(), 6);
        assert_eq!(
            r.restore("Thanks [EMAIL_1], we will call [PHONE_1]."),
            "Thanks anna.b@example.org, we will call +49 151 1234 5678."
        );
    }

    #[test]
    fn checksums_keep_ordinary_numbers() {
        // Fails Luhn: not a card (but long enough to look like a phone number? no: 16 digits).
        let r = redact("order 4111 1111 1111 1112 arrived");
        assert_eq!(r.counts().get(&PiiKind::Card), None);
        assert!(!redact("DE00 3704 0044 0532 0130 00").text.contains("[IBAN"));
        assert_eq!(redact("it costs 25 euros, 3 items").total(), 0);
    }

    #[test]
    fn the_same_value_gets_the_same_placeholder_and_street_names_are_found() {
        let r = redact("Hauptstraße 5 or hauptstraße 5? Mail a@b.de and a@b.de");
        assert_eq!(
            r.text,
            "[ADDRESS_1] or [ADDRESS_2]? Mail [EMAIL_1] and [EMAIL_1]"
        );
        assert_eq!(r.restore("[ADDRESS_3] stays"), "[ADDRESS_3] stays");
    }
}
