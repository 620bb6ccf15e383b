//! End-to-end checks of the decision rule with the embedded model.

use super::*;

fn shield() -> Shield {
    Shield::embedded()
}

fn codes(v: &Verdict) -> Vec<&'static str> {
    v.reasons.iter().map(|r| r.code).collect()
}

#[test]
fn obvious_smishing_is_positive_with_reasons() {
    let v = shield().scan(&ScanInput::text(
        "URGENT! Your account has been suspended. Verify your details at paypa1-login.com/x now",
    ));
    assert_eq!(v.label, Label::Smishing);
    assert!(v.score >= 0.9, "{}", v.score);
    assert!(codes(&v).contains(&"brand_lookalike"), "{:?}", codes(&v));
    assert_eq!(v.urls.len(), 1);
    assert_eq!(v.urls[0].verdict, Risk::Malicious);
}

#[test]
fn obvious_prize_spam_is_positive_with_classifier_reason() {
    let v = shield().scan(&ScanInput::text(
        "WINNER!! You have been selected to receive a £900 prize reward! To claim call 09061701461. Claim code KL341. Valid 12 hours only.",
    ));
    assert!(v.label.is_positive(), "{v:?}");
    assert!(
        codes(&v).contains(&"premium_rate_number"),
        "{:?}",
        codes(&v)
    );
    assert!(codes(&v).contains(&"text_classifier"), "{:?}", codes(&v));
    let detail = &v
        .reasons
        .iter()
        .find(|r| r.code == "text_classifier")
        .unwrap()
        .detail;
    assert!(detail.contains("strongest cues: '"), "{detail}");
}

#[test]
fn obvious_ham_is_ham() {
    for t in [
        "Hey, are we still on for lunch tomorrow? I can pick you up at 12",
        "Thanks for dinner last night, the kids loved it",
        "Running 10 minutes late, sorry! See you at the station",
        "Your table for 4 at 7.30pm tonight is confirmed, see you then",
    ] {
        let v = shield().scan(&ScanInput::text(t));
        assert_eq!(v.label, Label::Ham, "{t}: {v:?}");
        assert!(v.score < 0.5);
        assert!(!codes(&v).contains(&"text_classifier"));
    }
}

#[test]
fn benign_brand_links_are_not_flagged() {
    for t in [
        "Your order has shipped, details at https://www.amazon.co.uk/gp/css/order-history",
        "Sign in at https://accounts.google.com to see the shared doc",
        "I sent you the money on https://paypal.com, let me know",
    ] {
        let v = shield().scan(&ScanInput::text(t));
        assert!(v.urls.iter().all(|u| u.reasons.is_empty()), "{t}: {v:?}");
        assert_ne!(v.label, Label::Smishing, "{t}");
    }
}

#[test]
fn shortener_alone_is_a_reason_not_a_smishing_verdict() {
    for t in [
        "bit.ly/x",
        "look at this bit.ly/x",
        "https://bit.ly/3Gx7aQp",
    ] {
        let v = shield().scan(&ScanInput::text(t));
        assert!(codes(&v).contains(&"url_shortener"), "{t}: {:?}", codes(&v));
        assert_ne!(v.label, Label::Smishing, "{t}: {v:?}");
    }
}

#[test]
fn every_positive_verdict_has_a_reason() {
    for t in [
        "Free entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005. Text FA to 87121",
        "SIX chances to win CASH! From 100 to 20,000 pounds txt> CSH11 and send to 87575",
        "Click https://x7k2p9qz4m1b.com/a to unlock your reward",
        "Your parcel could not be delivered http://203.0.113.5/redeliver",
        "hello",
        "call me",
    ] {
        let v = shield().scan(&ScanInput::text(t));
        if v.label.is_positive() {
            assert!(!v.reasons.is_empty(), "{t}");
        }
    }
}

#[test]
fn blocklist_forces_smishing_and_allowlist_silences() {
    let s = shield();
    s.blocklist()
        .replace(DomainList::parse("friendly-bakery.com\n", "b").unwrap());
    let v = s.scan(&ScanInput::text(
        "Fresh bread today at friendly-bakery.com/menu",
    ));
    assert_eq!(v.label, Label::Smishing);
    assert_eq!(v.score, 1.0);
    assert!(codes(&v).contains(&"blocklisted"));

    s.allowlist()
        .replace(DomainList::parse("paypa1-login.com\n", "a").unwrap());
    let v = s.scan(&ScanInput::text("see paypa1-login.com/x"));
    assert!(v.urls[0].allowlisted && v.urls[0].reasons.is_empty());
    assert!(!codes(&v).contains(&"brand_lookalike"));
}

#[test]
fn extra_url_phone_and_region_are_used() {
    let v = shield().scan(&ScanInput {
        text: "Please see the button below".into(),
        url: Some("https://paypal.com.secure-login.xyz/signin".into()),
        phone: Some("+234 803 123 4567".into()),
        recipient_region: Some("GB".into()),
    });
    assert_eq!(v.label, Label::Smishing);
    assert!(codes(&v).contains(&"brand_in_subdomain"));
    assert!(codes(&v).contains(&"foreign_number"), "{:?}", codes(&v));
}

#[test]
fn verdict_serialises_to_json() {
    let v = shield().scan(&ScanInput::text("see paypa1-login.com/x"));
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["label"], "smishing");
    assert_eq!(json["urls"][0]["verdict"], "malicious");
    assert!(json["reasons"][0]["code"].is_string());
    let input: ScanInput = serde_json::from_str(r#"{"text":"hi"}"#).unwrap();
    assert_eq!(input.text, "hi");
}

#[test]
fn urls_and_numbers_are_cut_and_become_signals() {
    let lists = Lists::embedded();
    let empty = DomainList::default();
    let a = analyze(
        &ScanInput::text("call 0800 542 0825 or see bit.ly/x"),
        &lists,
        &empty,
        &empty,
    );
    assert_eq!(a.cleaned, "call   or see  ");
    assert!(a.signals.contains(&"url:url_shortener".to_string()));
    assert!(a.signals.contains(&"phone:callback_lure".to_string()));
}

#[test]
fn brand_mentions_need_case_for_short_or_ambiguous_names() {
    let lists = Lists::embedded();
    let names = |t: &str| -> Vec<String> {
        mentioned_brands(t, &lists)
            .iter()
            .map(|b| b.name().to_string())
            .collect()
    };
    assert_eq!(names("Your Netflix plan"), vec!["netflix"]);
    assert_eq!(names("your royal mail parcel"), vec!["royalmail"]);
    assert_eq!(names("DHL: parcel waiting"), vec!["dhl"]);
    assert!(names("ups and downs, an apple a day, chase the dog").is_empty());
    assert_eq!(names("Apple ID locked"), vec!["apple"]);
}

#[test]
fn brand_lure_with_shortener_is_flagged_with_reasons() {
    let v = shield().scan(&ScanInput::text(
        "Your Netflix subscription has expired. Renew now to avoid suspension: https://bit.ly/3nFxq2",
    ));
    assert!(
        codes(&v).contains(&"brand_mention_mismatch"),
        "{:?}",
        codes(&v)
    );
    assert!(codes(&v).contains(&"url_shortener"));
    assert!(v.score > 0.4, "{}", v.score);
}
