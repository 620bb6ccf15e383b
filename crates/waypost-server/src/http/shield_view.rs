//! The verdict as the API shows it: the engine's `Verdict` mirrored in types that carry an
//! OpenAPI schema, so the contract is described and cannot change by accident (a test checks
//! that the mirror serialises exactly as the engine's own type).

use serde::Serialize;
use utoipa::ToSchema;
use waypost_shield::{Label, PhoneVerdict, Reason, Risk, UrlVerdict, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScanLabel {
    Ham,
    Spam,
    Smishing,
}

impl From<Label> for ScanLabel {
    fn from(l: Label) -> Self {
        match l {
            Label::Ham => ScanLabel::Ham,
            Label::Spam => ScanLabel::Spam,
            Label::Smishing => ScanLabel::Smishing,
        }
    }
}

/// Risk of one URL or phone number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemRisk {
    Clean,
    Suspicious,
    Malicious,
}

impl From<Risk> for ItemRisk {
    fn from(r: Risk) -> Self {
        match r {
            Risk::Clean => ItemRisk::Clean,
            Risk::Suspicious => ItemRisk::Suspicious,
            Risk::Malicious => ItemRisk::Malicious,
        }
    }
}

/// A named explanation: `code` is stable (e.g. `brand_lookalike`, `premium_rate`,
/// `text_classifier`); `detail` is for people and may change wording.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanReason {
    pub code: String,
    pub detail: String,
}

impl From<Reason> for ScanReason {
    fn from(r: Reason) -> Self {
        Self {
            code: r.code.to_owned(),
            detail: r.detail,
        }
    }
}

/// The text model's class probabilities.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanProbabilities {
    pub ham: f32,
    pub spam: f32,
    pub smishing: f32,
}

/// One URL found in the text or given as `url`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScannedUrl {
    /// Normalised URL.
    pub url: String,
    /// The host as a person sees it (Unicode for internationalised names).
    pub host: String,
    pub verdict: ItemRisk,
    /// Sum of signal weights; 1.0 and above is malicious.
    pub risk_score: f32,
    /// Whether the operator's allowlist names it.
    pub allowlisted: bool,
    /// Under an official domain of a protected brand (e.g. `www.amazon.co.uk`).
    pub official: bool,
    pub reasons: Vec<ScanReason>,
}

impl From<UrlVerdict> for ScannedUrl {
    fn from(u: UrlVerdict) -> Self {
        Self {
            url: u.url,
            host: u.host,
            verdict: u.verdict.into(),
            risk_score: u.risk_score,
            allowlisted: u.allowlisted,
            official: u.official,
            reasons: u.reasons.into_iter().map(Into::into).collect(),
        }
    }
}

/// One phone number found in the text or given as `phone`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScannedPhone {
    /// The number as written.
    pub raw: String,
    /// E.164 form when the number parsed.
    pub e164: Option<String>,
    /// Region of the number, e.g. `GB`.
    pub region: Option<String>,
    pub valid: bool,
    pub possible: bool,
    /// e.g. `mobile`, `premium_rate`, `shared_cost`, `short_code`.
    pub number_type: Option<String>,
    pub verdict: ItemRisk,
    pub risk_score: f32,
    pub reasons: Vec<ScanReason>,
}

impl From<PhoneVerdict> for ScannedPhone {
    fn from(p: PhoneVerdict) -> Self {
        Self {
            raw: p.raw,
            e164: p.e164,
            region: p.region,
            valid: p.valid,
            possible: p.possible,
            number_type: p.number_type,
            verdict: p.verdict.into(),
            risk_score: p.risk_score,
            reasons: p.reasons.into_iter().map(Into::into).collect(),
        }
    }
}

/// The shield's verdict on one message.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanVerdict {
    pub label: ScanLabel,
    /// Confidence, 0 to 1, that the message is unwanted (spam or smishing).
    pub score: f32,
    pub probabilities: ScanProbabilities,
    /// Why: every URL and number finding, and the text model's strongest cues when it decided.
    pub reasons: Vec<ScanReason>,
    pub urls: Vec<ScannedUrl>,
    pub phones: Vec<ScannedPhone>,
}

impl From<Verdict> for ScanVerdict {
    fn from(v: Verdict) -> Self {
        Self {
            label: v.label.into(),
            score: v.score,
            probabilities: ScanProbabilities {
                ham: v.probabilities.ham,
                spam: v.probabilities.spam,
                smishing: v.probabilities.smishing,
            },
            reasons: v.reasons.into_iter().map(Into::into).collect(),
            urls: v.urls.into_iter().map(Into::into).collect(),
            phones: v.phones.into_iter().map(Into::into).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use waypost_shield::{ScanInput, Shield};

    use super::*;

    #[test]
    fn the_view_serialises_exactly_as_the_engine_verdict() {
        let shield = Shield::embedded();
        for input in [
            ScanInput::text("are we still on for lunch tomorrow?"),
            ScanInput::text(
                "Your parcel is held, pay the fee at paypa1-login.com/x or call 09064019788",
            ),
            ScanInput {
                url: Some("https://bit.ly/3Gx7aQp".into()),
                phone: Some("+44 7700 900123".into()),
                recipient_region: Some("GB".into()),
                ..ScanInput::default()
            },
        ] {
            let verdict = shield.scan(&input);
            let engine = serde_json::to_value(&verdict).unwrap();
            let view = serde_json::to_value(ScanVerdict::from(verdict)).unwrap();
            assert_eq!(engine, view);
        }
    }
}
