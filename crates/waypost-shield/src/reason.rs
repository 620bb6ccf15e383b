//! The vocabulary of a verdict: the three labels, and `Reason`, the named explanation every
//! signal produces. Codes are stable snake_case strings that callers may match on; details are
//! human-readable and may change wording between releases.

use serde::Serialize;

/// Message class. Order matters: it is the class index in the model's weight layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    Ham,
    Spam,
    Smishing,
}

impl Label {
    pub const ALL: [Label; 3] = [Label::Ham, Label::Spam, Label::Smishing];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: usize) -> Option<Label> {
        Label::ALL.get(i).copied()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Label::Ham => "ham",
            Label::Spam => "spam",
            Label::Smishing => "smishing",
        }
    }

    /// Spam and smishing both count as the positive (unwanted) class.
    pub fn is_positive(self) -> bool {
        self != Label::Ham
    }

    pub fn parse(s: &str) -> Option<Label> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ham" => Some(Label::Ham),
            "spam" => Some(Label::Spam),
            "smishing" => Some(Label::Smishing),
            _ => None,
        }
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One named explanation. `code` is stable; `detail` is for humans.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reason {
    pub code: &'static str,
    pub detail: String,
}

impl Reason {
    pub fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Reason {
            code,
            detail: detail.into(),
        }
    }
}

/// A reason plus how much it weighs in a URL or phone risk score. Internal: callers only see
/// the reason and the resulting risk level.
#[derive(Clone, Debug)]
pub(crate) struct Signal {
    pub reason: Reason,
    pub weight: f32,
}

impl Signal {
    pub(crate) fn new(code: &'static str, weight: f32, detail: impl Into<String>) -> Self {
        Signal {
            reason: Reason::new(code, detail),
            weight,
        }
    }
}

/// Risk level for one URL or phone number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Clean,
    Suspicious,
    Malicious,
}

/// Weight at or above which a single signal, or the sum of signals, makes an item malicious.
pub(crate) const MALICIOUS_AT: f32 = 1.0;
/// Weight at or above which an item is suspicious (e.g. a lone URL shortener).
pub(crate) const SUSPICIOUS_AT: f32 = 0.3;

pub(crate) fn risk_of(signals: &[Signal]) -> (f32, Risk) {
    let total: f32 = signals.iter().map(|s| s.weight).sum();
    let risk = if total >= MALICIOUS_AT {
        Risk::Malicious
    } else if total >= SUSPICIOUS_AT {
        Risk::Suspicious
    } else {
        Risk::Clean
    };
    (total, risk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_order() {
        for l in Label::ALL {
            assert_eq!(Label::parse(l.as_str()), Some(l));
            assert_eq!(Label::from_index(l.index()), Some(l));
        }
        assert_eq!(Label::parse(" SPAM "), Some(Label::Spam));
        assert_eq!(Label::parse("phish"), None);
        assert!(!Label::Ham.is_positive() && Label::Smishing.is_positive());
    }

    #[test]
    fn risk_thresholds() {
        assert_eq!(risk_of(&[]).1, Risk::Clean);
        assert_eq!(risk_of(&[Signal::new("a", 0.3, "")]).1, Risk::Suspicious);
        let two = [Signal::new("a", 0.6, ""), Signal::new("b", 0.4, "")];
        assert_eq!(risk_of(&two).1, Risk::Malicious);
    }
}
