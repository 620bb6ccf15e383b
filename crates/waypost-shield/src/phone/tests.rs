//! Hostile and benign phone examples for every phone signal.

use super::*;

fn codes_of(text: &str, region: Option<&str>) -> Vec<&'static str> {
    extract_phones(text, &[], region.and_then(parse_region))
        .iter()
        .flat_map(|p| p.reasons.iter().map(|r| r.code))
        .collect()
}

/// (text, recipient region, signal that must fire)
const HOSTILE: &[(&str, Option<&str>, &str)] = &[
    (
        "URGENT! Call 09061743386 now to claim your prize",
        None,
        "premium_rate_number",
    ),
    (
        "Please CALL 08712402779 immediately",
        Some("GB"),
        "premium_rate_number",
    ),
    (
        "To claim call +44 906 174 3386",
        None,
        "premium_rate_number",
    ),
    (
        "Dial 1-900-226-7742 to hear your message",
        Some("US"),
        "premium_rate_number",
    ),
    (
        "Votre colis: appelez le +33 8 99 12 34 56",
        Some("FR"),
        "premium_rate_number",
    ),
    (
        "Rufen Sie +49 900 1234567 an",
        Some("DE"),
        "premium_rate_number",
    ),
    (
        "Llame al +34 901 123 456 para su paquete",
        Some("ES"),
        "shared_cost_number",
    ),
    (
        "Call 1300 123 456 to unlock your account",
        Some("AU"),
        "shared_cost_number",
    ),
    (
        "Your bank: call +33 8 84 01 23 45 today",
        Some("FR"),
        "shared_cost_number",
    ),
    (
        "WhatsApp me on +234 803 123 4567 for the payout",
        Some("US"),
        "foreign_number",
    ),
    (
        "Your parcel is held, ring +91 98765 43210",
        Some("GB"),
        "foreign_number",
    ),
    (
        "Ring this number 0207 946 0999 urgently",
        Some("GB"),
        "callback_lure",
    ),
    (
        "Your account is locked. Call now 0800 542 0825",
        Some("GB"),
        "callback_lure",
    ),
    ("Verify at +44 7700 900123", None, "invalid_number"),
    (
        "Text WIN to 87066 to enter our weekly draw",
        None,
        "sms_short_code",
    ),
    ("txt MUSIC to 87066 now", None, "sms_short_code"),
];

#[test]
fn hostile_numbers_fire_their_signal() {
    for (text, region, code) in HOSTILE {
        let got = codes_of(text, *region);
        assert!(got.contains(code), "{text}: expected {code}, got {got:?}");
    }
}

#[test]
fn premium_number_with_lure_is_malicious() {
    let v = extract_phones("Call 09061743386 now", &[], None);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].verdict, Risk::Malicious);
    assert_eq!(v[0].e164.as_deref(), Some("+449061743386"));
    assert_eq!(v[0].region.as_deref(), Some("GB"));
    assert_eq!(v[0].number_type.as_deref(), Some("premium_rate"));
    assert!(v[0].valid && v[0].possible);
}

#[test]
fn benign_numbers_stay_quiet() {
    for (text, region) in [
        ("See you at 7, my number is 07821 230901", Some("GB")),
        ("Office: +44 20 7946 0999", Some("GB")),
        ("My cell is (212) 736-5000", Some("US")),
        ("Meeting moved to 2024-05-12 at 10:30", None),
        ("Order RP176781 shipped, BOX42WR29C", None),
        ("I owe you 150 quid, back at 12.30", None),
    ] {
        let got = codes_of(text, region);
        assert!(got.is_empty(), "{text}: {got:?}");
    }
}

#[test]
fn candidates_respect_token_boundaries() {
    let t = "ref ABC1234567 call 0800 542 0825.";
    let c = find_candidates(t);
    assert_eq!(c.len(), 1);
    assert_eq!(&t[c[0].0..c[0].1], "0800 542 0825");
    assert!(find_candidates("12345 and 1.50").is_empty());
    assert!(find_candidates("on 2024-05-12 or 12.05.2024").is_empty());
}

#[test]
fn skip_spans_exclude_numbers_inside_urls() {
    let t = "see http://x.example/09061743386";
    let start = t.find("http").unwrap();
    assert!(extract_phones(t, &[(start, t.len())], None).is_empty());
}

#[test]
fn regions_parse_case_insensitively() {
    assert_eq!(parse_region("gb"), Some(Id::GB));
    assert_eq!(parse_region("zz"), None);
}

#[test]
fn indian_mobile_without_country_code_is_not_british_premium_rate() {
    let v = extract_phones("Pls call me on 9823412345 when free", &[], None);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].region.as_deref(), Some("IN"));
    assert_eq!(v[0].number_type.as_deref(), Some("mobile"));
    assert!(v[0].verdict < Risk::Malicious);
}
