//! Phone-number analysis: finds numbers in text, parses them with the `phonenumber` crate
//! (libphonenumber metadata) and reports premium-rate and shared-cost types, numbers from a
//! region other than the recipient's, numbers that fail validation, call-back lures ("call
//! now", "ring this number" next to a number) and premium SMS short codes ("text WIN to
//! 87066"). National-format numbers are parsed in the recipient's region, or, when that is
//! unknown, in the first of a few common regions where they are valid.

use std::str::FromStr;

use phonenumber::country::Id;
use phonenumber::{PhoneNumber, Type};
use serde::Serialize;

use crate::reason::{Reason, Risk, Signal, risk_of};

/// Regions tried for numbers without a country code when the recipient's region is unknown.
const FALLBACK_REGIONS: [Id; 3] = [Id::GB, Id::US, Id::IN];

/// The analysis of one phone number (or SMS short code).
#[derive(Clone, Debug, Serialize)]
pub struct PhoneVerdict {
    /// The number as written.
    pub raw: String,
    /// E.164 form when the number parsed.
    pub e164: Option<String>,
    /// CLDR region of the number, e.g. "GB".
    pub region: Option<String>,
    pub valid: bool,
    pub possible: bool,
    /// libphonenumber type in snake_case (`premium_rate`, `mobile`, ...) or `short_code`.
    pub number_type: Option<String>,
    pub verdict: Risk,
    pub risk_score: f32,
    pub reasons: Vec<Reason>,
}

/// Parses a recipient region code such as "gb" or "GB".
pub fn parse_region(code: &str) -> Option<Id> {
    Id::from_str(&code.trim().to_ascii_uppercase()).ok()
}

fn type_name(t: Type) -> &'static str {
    match t {
        Type::FixedLine => "fixed_line",
        Type::Mobile => "mobile",
        Type::FixedLineOrMobile => "fixed_line_or_mobile",
        Type::TollFree => "toll_free",
        Type::PremiumRate => "premium_rate",
        Type::SharedCost => "shared_cost",
        Type::PersonalNumber => "personal_number",
        Type::Voip => "voip",
        Type::Pager => "pager",
        Type::Uan => "uan",
        Type::Emergency => "emergency",
        Type::Voicemail => "voicemail",
        Type::ShortCode => "short_code",
        Type::StandardRate => "standard_rate",
        Type::Carrier => "carrier",
        Type::NoInternational => "no_international",
        Type::Unknown => "unknown",
    }
}

/// Byte spans of phone-number-like runs: an optional `+`, digits and short separator runs,
/// 7 to 15 digits, not glued to letters (so `BOX42WR29C` or `RP176781` are not numbers).
pub(crate) fn find_candidates(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let starts = b.is_ascii_digit()
            || ((b == b'+' || b == b'(') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
        let glued = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'+');
        if !starts || glued {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i + 1;
        let mut digits = usize::from(b.is_ascii_digit());
        let mut last_digit_end = if b.is_ascii_digit() { end } else { start };
        // Separator runs of up to two (`) `, ` (`) are allowed; longer gaps end the number.
        let mut seps = 0;
        while end < bytes.len() {
            let c = bytes[end];
            if c.is_ascii_digit() {
                digits += 1;
                seps = 0;
                last_digit_end = end + 1;
            } else if matches!(c, b' ' | b'-' | b'.' | b'(' | b')') && seps < 2 {
                seps += 1;
            } else {
                break;
            }
            end += 1;
        }
        let glued_after = bytes
            .get(last_digit_end)
            .is_some_and(|c| c.is_ascii_alphabetic());
        if (7..=15).contains(&digits)
            && !glued_after
            && !looks_like_date(&text[start..last_digit_end])
        {
            out.push((start, last_digit_end));
        }
        i = end.max(i + 1);
    }
    out
}

/// `2024-05-12`, `12.05.2024`, `5-9-03`: three digit groups shaped like a date, not a number.
fn looks_like_date(s: &str) -> bool {
    let groups: Vec<&str> = s.split(['-', '.']).collect();
    if groups.len() != 3
        || groups
            .iter()
            .any(|g| g.is_empty() || !g.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    (lens[0] == 4 && lens[1] <= 2 && lens[2] <= 2)
        || (lens[0] <= 2 && lens[1] <= 2 && (lens[2] == 2 || lens[2] == 4))
}

/// Words that turn a number into a call-to-action.
const CALL_VERBS: [&str; 7] = [
    "call", "ring", "dial", "phone", "callback", "contact", "tel",
];

/// A call-to-action verb shortly before the number (within ~40 bytes).
fn callback_verb(text: &str, start: usize) -> Option<&'static str> {
    let mut from = start.saturating_sub(40);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let window = text[from..start].to_lowercase();
    window
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .find_map(|w| CALL_VERBS.iter().find(|v| **v == w).copied())
}

fn parse_any(raw: &str, recipient: Option<Id>) -> Option<(PhoneNumber, bool)> {
    let international = raw.starts_with('+') || raw.starts_with("00");
    let mut first_possible = None;
    // A number in national format is dialled in the recipient's country: guessing other
    // regions would turn an invalid local number into a "foreign" one.
    let regions: &[Id] = match &recipient {
        Some(r) => std::slice::from_ref(r),
        None => &FALLBACK_REGIONS,
    };
    for &region in regions {
        // British numbers are written with their trunk `0`; without it a guessed GB parse
        // turns Indian mobiles (98xxxxxxxx) into "premium rate" 098 numbers.
        if recipient.is_none()
            && region == Id::GB
            && !international
            && !raw.trim_start_matches('(').starts_with('0')
        {
            continue;
        }
        let Ok(n) = phonenumber::parse(Some(region), raw) else {
            continue;
        };
        if phonenumber::is_valid(&n) {
            return Some((n, true));
        }
        if first_possible.is_none() {
            first_possible = Some(n);
        }
        if international {
            // The country code is in the number; other regions cannot change the result.
            break;
        }
    }
    first_possible.map(|n| (n, false))
}

/// Analyses a number found at `span` of `text` (or passed alone, with `text == raw`).
pub fn analyze_phone(
    raw: &str,
    text: &str,
    start: usize,
    recipient: Option<Id>,
) -> Option<PhoneVerdict> {
    let (number, valid) = parse_any(raw, recipient)?;
    let db = &*phonenumber::metadata::DATABASE;
    let kind = number.number_type(db);
    let region = number.country().id();
    let mut s = Vec::new();
    match kind {
        Type::PremiumRate => s.push(Signal::new(
            "premium_rate_number",
            0.7,
            "premium-rate number: calling it costs the recipient money",
        )),
        Type::SharedCost => s.push(Signal::new(
            "shared_cost_number",
            0.4,
            "shared-cost number: the caller pays a surcharge",
        )),
        _ => {}
    }
    if !valid {
        s.push(Signal::new(
            "invalid_number",
            0.1,
            "the number is not valid for its country",
        ));
    }
    if let (Some(r), Some(got)) = (recipient, region)
        && r != got
    {
        s.push(Signal::new(
            "foreign_number",
            0.3,
            format!(
                "number is from {} but the recipient is in {}",
                got.as_ref(),
                r.as_ref()
            ),
        ));
    }
    if let Some(verb) = callback_verb(text, start) {
        // "Call me on 07…" is everyday chat: on an ordinary number the verb alone stays below
        // the suspicious level and only reaches the model as a feature.
        let ordinary = matches!(
            kind,
            Type::Mobile | Type::FixedLine | Type::FixedLineOrMobile
        );
        s.push(Signal::new(
            "callback_lure",
            if ordinary { 0.25 } else { 0.4 },
            format!("asks the recipient to '{verb}' the number"),
        ));
    }
    let (score, risk) = risk_of(&s);
    Some(PhoneVerdict {
        raw: raw.to_string(),
        e164: Some(number.format().mode(phonenumber::Mode::E164).to_string()),
        region: region.map(|r| r.as_ref().to_string()),
        valid,
        possible: true,
        number_type: Some(type_name(kind).to_string()),
        verdict: risk,
        risk_score: score,
        reasons: s.into_iter().map(|x| x.reason).collect(),
    })
}

/// Premium SMS short codes: "text/txt/send/reply <WORD> to 87066".
fn short_codes(text: &str) -> Vec<PhoneVerdict> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let is_code = (4..=6).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_digit());
        if !is_code || i == 0 || words[i - 1] != "to" {
            continue;
        }
        let lo = i.saturating_sub(6);
        if words[lo..i]
            .iter()
            .any(|v| matches!(*v, "text" | "txt" | "send" | "reply" | "sms" | "msg"))
        {
            let s = [Signal::new(
                "sms_short_code",
                0.5,
                format!("asks for a text to short code {w}, often billed at premium rates"),
            )];
            let (score, risk) = risk_of(&s);
            out.push(PhoneVerdict {
                raw: (*w).to_string(),
                e164: None,
                region: None,
                valid: false,
                possible: false,
                number_type: Some("short_code".to_string()),
                verdict: risk,
                risk_score: score,
                reasons: s.into_iter().map(|x| x.reason).collect(),
            });
        }
    }
    out
}

/// All numbers in `text` (except inside `skip` spans, e.g. URLs) plus SMS short codes.
pub fn extract_phones(
    text: &str,
    skip: &[(usize, usize)],
    recipient: Option<Id>,
) -> Vec<PhoneVerdict> {
    let mut out: Vec<PhoneVerdict> = find_candidates(text)
        .into_iter()
        .filter(|(a, b)| !skip.iter().any(|(s, e)| a < e && b > s))
        .filter_map(|(a, b)| analyze_phone(&text[a..b], text, a, recipient))
        .collect();
    out.extend(short_codes(text));
    out
}

#[cfg(test)]
mod tests;
