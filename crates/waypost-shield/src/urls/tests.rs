//! Table-driven checks of every URL signal against hostile examples, and of benign look-alikes
//! that must stay quiet.

use super::*;

fn analyze(raw: &str) -> UrlVerdict {
    analyze_with(raw, &DomainList::default(), &DomainList::default())
}

fn analyze_with(raw: &str, allow: &DomainList, block: &DomainList) -> UrlVerdict {
    let lists = Lists::embedded();
    let n = normalize(raw).unwrap_or_else(|| panic!("{raw} should normalise"));
    analyze_url(&n, &lists, allow, block)
}

fn codes(v: &UrlVerdict) -> Vec<&'static str> {
    v.reasons.iter().map(|r| r.code).collect()
}

/// (url, signal that must fire, must the URL be malicious on its own)
const HOSTILE: &[(&str, &str, bool)] = &[
    ("paypa1-login.com/x", "brand_lookalike", true),
    ("http://amaz0n-security.com/verify", "brand_lookalike", true),
    (
        "https://www.micros0ft-support.com/",
        "brand_lookalike",
        true,
    ),
    ("https://app1e-id.info/unlock", "brand_lookalike", true),
    ("netflx-billing.com/update", "brand_lookalike", true),
    ("https://xn--pple-43d.com/", "brand_lookalike", true),
    (
        "https://paypal.com.secure-login.xyz/signin",
        "brand_in_subdomain",
        true,
    ),
    (
        "http://www.amazon.co.uk.account-check.top/",
        "brand_in_subdomain",
        true,
    ),
    (
        "https://hmrc.tax-refund-claim.com/",
        "brand_in_subdomain",
        true,
    ),
    (
        "http://paypal-resolution-center.net/",
        "brand_in_domain",
        true,
    ),
    (
        "https://royalmail-redelivery-fee.com/pay",
        "brand_in_domain",
        true,
    ),
    ("evri-parcel-update.info/track", "brand_in_domain", true),
    (
        "https://wellsfargoonline-secure.com/",
        "brand_in_domain",
        true,
    ),
    ("https://paypal.top/login", "brand_unofficial_domain", true),
    (
        "http://paypal.com@198.51.100.7/login",
        "userinfo_trick",
        true,
    ),
    (
        "https://www.google.com@phish.example/",
        "userinfo_trick",
        true,
    ),
    ("http://203.0.113.5/bank/login.php", "ip_host", false),
    ("http://3232235777/login", "ip_host", true),
    ("http://0xC0A80101/verify", "ip_host", true),
    ("http://0300.0250.0001.0001/", "ip_host", true),
    ("http://[2001:db8::1]/", "ip_host", false),
    ("https://bit.ly/3Gx7aQp", "url_shortener", false),
    ("tinyurl.com/yc8r3k2z", "url_shortener", false),
    ("https://cutt.ly/wXyZ12", "url_shortener", false),
    (
        "https://login.secure.verify.account.example-bank.com/",
        "many_subdomains",
        false,
    ),
    ("http://parcel-redelivery.xyz/", "suspicious_tld", false),
    ("https://claim-your-prize.tk/", "suspicious_tld", false),
    (
        "http://delivery-update.com:8443/pay",
        "non_standard_port",
        false,
    ),
    ("https://x7k2p9qz4m1b.com/a", "random_label", false),
    ("https://kq3hz8wd5t.net/login", "random_label", false),
    (
        "https://secure-update-account.000webhostapp.com/",
        "free_hosting",
        false,
    ),
    ("https://bank-verify.web.app/", "free_hosting", false),
    ("https://parcel-fee.netlify.app/", "free_hosting", false),
    ("http://mybank-login.duckdns.org/", "dynamic_dns", false),
    ("https://abc123.ngrok-free.app/otp", "dynamic_dns", false),
    ("http://verify-account.ddns.net:8080/", "dynamic_dns", false),
    ("https://xn--80ak6aa92e.com/", "punycode_host", false),
    (
        "http://198.51.100.23/secure/login.php",
        "credential_path",
        true,
    ),
    (
        "https://parcel-fee.netlify.app/verify-account",
        "credential_path",
        false,
    ),
];

#[test]
fn hostile_urls_fire_their_signal() {
    assert!(HOSTILE.len() >= 35);
    for (raw, code, malicious) in HOSTILE {
        let v = analyze(raw);
        assert!(
            codes(&v).contains(code),
            "{raw}: expected {code}, got {:?}",
            codes(&v)
        );
        if *malicious {
            assert_eq!(v.verdict, Risk::Malicious, "{raw}: {:?}", codes(&v));
        } else {
            assert!(v.verdict >= Risk::Suspicious, "{raw}: {:?}", codes(&v));
        }
    }
}

#[test]
fn benign_urls_stay_clean() {
    for raw in [
        "https://paypal.com",
        "https://www.paypal.com/signin",
        "https://www.amazon.co.uk/gp/css/order-history",
        "https://accounts.google.com/ServiceLogin",
        "https://support.apple.com/en-gb/HT201220",
        "https://www.royalmail.com/track-your-item",
        "https://www.bbc.co.uk/news",
        "https://github.com/rust-lang/rust",
        "https://docs.rs/url",
        "http://example.com:80/",
        "https://en.wikipedia.org/wiki/Phishing",
        "https://www.pineapple-recipes.com/",
        "https://my.vodafone.co.uk/",
        "https://www.netflix.com/browse",
    ] {
        let v = analyze(raw);
        assert_eq!(v.verdict, Risk::Clean, "{raw}: {:?}", codes(&v));
        assert!(v.reasons.is_empty(), "{raw}: {:?}", codes(&v));
    }
}

#[test]
fn credential_words_alone_do_not_fire() {
    let v = analyze("https://github.com/login");
    assert!(v.reasons.is_empty(), "{:?}", codes(&v));
}

#[test]
fn brand_mentioned_in_message_but_link_elsewhere() {
    let lists = Lists::embedded();
    let netflix: Vec<&Brand> = lists
        .brands
        .iter()
        .filter(|b| b.name() == "netflix")
        .collect();
    let empty = DomainList::default();
    let n = normalize("https://bit.ly/3nFxq2").unwrap();
    let v = analyze_url_in(&n, &lists, &empty, &empty, &netflix);
    assert!(
        codes(&v).contains(&"brand_mention_mismatch"),
        "{:?}",
        codes(&v)
    );
    assert_eq!(v.verdict, Risk::Suspicious);
    // Linking to the brand's own (or any protected brand's official) domain is fine.
    let n = normalize("https://www.netflix.com/account").unwrap();
    let v = analyze_url_in(&n, &lists, &empty, &empty, &netflix);
    assert!(v.reasons.is_empty(), "{:?}", codes(&v));
}

#[test]
fn shortener_alone_is_only_suspicious() {
    let v = analyze("bit.ly/x");
    assert_eq!(codes(&v), vec!["url_shortener"]);
    assert_eq!(v.verdict, Risk::Suspicious);
}

#[test]
fn blocklist_and_allowlist() {
    let block = DomainList::parse("harmless-looking.example\n", "b").unwrap();
    let allow = DomainList::parse("paypal-login.com\nbit.ly\n", "a").unwrap();
    let v = analyze_with(
        "https://shop.harmless-looking.example/",
        &DomainList::default(),
        &block,
    );
    assert_eq!(v.verdict, Risk::Malicious);
    assert_eq!(codes(&v), vec!["blocklisted"]);
    // Allowlisted domains never fire, even when they look like a brand.
    let v = analyze_with("https://paypal-login.com/", &allow, &block);
    assert!(v.allowlisted && v.reasons.is_empty() && v.verdict == Risk::Clean);
    let v = analyze_with("https://bit.ly/abc", &allow, &block);
    assert!(v.reasons.is_empty());
}

#[test]
fn random_label_heuristic() {
    assert!(looks_random("x7k2p9qz4m1b"));
    assert!(looks_random("qwrtzpkxvb"));
    for ok in [
        "verification",
        "accounts",
        "secure-login",
        "bbc",
        "royalmail",
        "2024sale",
    ] {
        assert!(!looks_random(ok), "{ok}");
    }
}

#[test]
fn entropy_is_sane() {
    assert_eq!(entropy(""), 0.0);
    assert_eq!(entropy("aaaa"), 0.0);
    assert!((entropy("abcd") - 2.0).abs() < 1e-6);
}
