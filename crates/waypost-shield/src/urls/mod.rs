//! URL analysis: turns one normalised URL into named signals and a risk level. Owns the
//! non-brand signals (operator lists, shorteners, IP hosts, userinfo tricks, subdomain depth,
//! suspicious TLDs, ports, random-looking labels, free hosting, dynamic DNS, punycode);
//! brand impersonation lives in `lookalike`, extraction and normalisation in `extract`.

mod extract;
mod lookalike;

pub use extract::{IpForm, NormalizedUrl, extract_urls, normalize};
pub(crate) use lookalike::canon;

use serde::Serialize;

use crate::lists::{Brand, Lists};
use crate::operator::DomainList;
use crate::reason::{Reason, Risk, Signal, risk_of};

/// The analysis of one URL.
#[derive(Clone, Debug, Serialize)]
pub struct UrlVerdict {
    /// Normalised URL.
    pub url: String,
    /// Host as a human sees it (Unicode for IDNs).
    pub host: String,
    pub verdict: Risk,
    /// Sum of signal weights (1.0 and above is malicious).
    pub risk_score: f32,
    pub allowlisted: bool,
    /// Under an official domain of a protected brand (e.g. `www.amazon.co.uk`).
    pub official: bool,
    pub reasons: Vec<Reason>,
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f32 {
    let mut counts = [0u32; 128];
    let mut n = 0u32;
    for b in s.bytes().filter(u8::is_ascii) {
        counts[b as usize] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / n as f32;
            -p * p.log2()
        })
        .sum()
}

/// A label that looks machine-generated: long, high entropy, and either vowel-starved or with
/// digits scattered among letters. Dictionary-ish labels (`verification`) stay below this.
pub(crate) fn looks_random(label: &str) -> bool {
    let alnum: String = label.chars().filter(char::is_ascii_alphanumeric).collect();
    if alnum.len() < 8 {
        return false;
    }
    let letters = alnum.chars().filter(char::is_ascii_alphabetic).count();
    let digits = alnum.len() - letters;
    let vowels = alnum.chars().filter(|c| "aeiouy".contains(*c)).count();
    let vowel_ratio = if letters == 0 {
        0.0
    } else {
        vowels as f32 / letters as f32
    };
    entropy(&alnum) >= 3.0 && ((letters > 0 && vowel_ratio < 0.2) || (digits >= 3 && letters >= 3))
}

/// Path words typical of credential-harvesting pages. Only counted on top of another signal:
/// `/login` on an otherwise clean site is ordinary.
const CREDENTIAL_WORDS: [&str; 18] = [
    "login",
    "log-in",
    "signin",
    "sign-in",
    "verify",
    "verification",
    "secure",
    "account",
    "update",
    "confirm",
    "unlock",
    "password",
    "banking",
    "wallet",
    "auth",
    "billing",
    "redeliver",
    "refund",
];

/// Analyses one URL. Allowlisted URLs return no reasons; blocklisted ones are malicious.
pub fn analyze_url(
    n: &NormalizedUrl,
    lists: &Lists,
    allow: &DomainList,
    block: &DomainList,
) -> UrlVerdict {
    analyze_url_in(n, lists, allow, block, &[])
}

/// As `analyze_url`, knowing which protected brands the surrounding message names: a message
/// that says "Netflix" but links elsewhere is a classic lure.
pub(crate) fn analyze_url_in(
    n: &NormalizedUrl,
    lists: &Lists,
    allow: &DomainList,
    block: &DomainList,
    mentioned: &[&Brand],
) -> UrlVerdict {
    let official = n.ip.is_none()
        && lists
            .brands
            .iter()
            .any(|b| b.domains().iter().any(|d| Lists::host_under(&n.host, d)));
    let verdict = |signals: Vec<Signal>, allowlisted: bool| {
        let (score, risk) = risk_of(&signals);
        UrlVerdict {
            url: n.normalized.clone(),
            host: n.host_unicode.clone(),
            verdict: risk,
            risk_score: score,
            allowlisted,
            official,
            reasons: signals.into_iter().map(|s| s.reason).collect(),
        }
    };
    if allow.matches(&n.host, &n.normalized).is_some() {
        return verdict(Vec::new(), true);
    }
    let mut s = Vec::new();
    if let Some(entry) = block.matches(&n.host, &n.normalized) {
        s.push(Signal::new(
            "blocklisted",
            2.0,
            format!("matches operator blocklist entry '{entry}'"),
        ));
    }
    if let Some(ui) = &n.userinfo {
        // `https://paypal.com@evil.example/` shows a trusted name before the real host.
        let deceptive = ui.contains('.');
        s.push(Signal::new(
            "userinfo_trick",
            if deceptive { 1.0 } else { 0.6 },
            if deceptive {
                format!(
                    "'{ui}@' before the real host '{}' disguises the destination",
                    n.host
                )
            } else {
                "URL carries credentials before '@', hiding the real host".to_string()
            },
        ));
    }
    if n.port.is_some_and(|p| p != 80 && p != 443) {
        s.push(Signal::new(
            "non_standard_port",
            0.4,
            format!("uses non-standard port {}", n.port.unwrap_or_default()),
        ));
    }
    if let Some(form) = n.ip {
        let weight = if form == IpForm::Dotted || form == IpForm::V6 {
            0.8
        } else {
            1.0
        };
        s.push(Signal::new(
            "ip_host",
            weight,
            format!(
                "host is a raw IP address ({}) written in {} form",
                n.host,
                form.as_str()
            ),
        ));
        credential_path(n, &mut s);
        return verdict(s, false);
    }

    if let Some(hit) = Lists::find_suffix(&lists.shorteners, &n.host) {
        s.push(Signal::new(
            "url_shortener",
            0.3,
            format!("'{hit}' is a URL shortener that hides the destination"),
        ));
    }
    s.extend(lookalike::brand_signals(&n.host, &n.host_unicode, lists));
    if n.host.split('.').any(|l| l.starts_with("xn--")) {
        s.push(Signal::new(
            "punycode_host",
            0.2,
            format!("internationalised host shown as '{}'", n.host_unicode),
        ));
    }
    let registrable = lists.registrable(&n.host);
    let sub = &n.host[..n.host.len() - registrable.len()];
    let sub_labels: Vec<&str> = sub
        .split('.')
        .filter(|l| !l.is_empty() && *l != "www")
        .collect();
    if sub_labels.len() >= 3 {
        s.push(Signal::new(
            "many_subdomains",
            0.3,
            format!(
                "{} subdomain levels before '{registrable}'",
                sub_labels.len()
            ),
        ));
    }
    let tld = n.host.rsplit('.').next().unwrap_or("");
    if lists.suspicious_tlds.contains(tld) {
        s.push(Signal::new(
            "suspicious_tld",
            0.4,
            format!("'.{tld}' is a TLD commonly used for throw-away phishing domains"),
        ));
    }
    if let Some(label) = n
        .host
        .split('.')
        .take(n.host.split('.').count().saturating_sub(1))
        .find(|l| looks_random(l))
    {
        s.push(Signal::new(
            "random_label",
            0.4,
            format!("host label '{label}' looks randomly generated"),
        ));
    }
    if let Some(hit) = Lists::find_suffix(&lists.free_hosting, &n.host).filter(|h| *h != n.host) {
        s.push(Signal::new(
            "free_hosting",
            0.4,
            format!("hosted on the free hosting platform '{hit}'"),
        ));
    }
    if let Some(hit) = Lists::find_suffix(&lists.dyndns, &n.host).filter(|h| *h != n.host) {
        s.push(Signal::new(
            "dynamic_dns",
            0.5,
            format!("uses the dynamic DNS / tunnel service '{hit}'"),
        ));
    }
    if !official {
        host_words(registrable, &mut s);
    }
    if !official && let Some(b) = mentioned.first() {
        s.push(Signal::new(
            "brand_mention_mismatch",
            0.5,
            format!(
                "message names {} but links to '{}', not an official {} domain",
                b.name(),
                n.host_unicode,
                b.name()
            ),
        ));
    }
    credential_path(n, &mut s);
    verdict(s, false)
}

/// Words that campaigns put in throw-away domain names to look like a service desk.
const HOST_LURE_WORDS: [&str; 24] = [
    "secure",
    "security",
    "verify",
    "verification",
    "login",
    "signin",
    "update",
    "account",
    "support",
    "helpdesk",
    "care",
    "refund",
    "kyc",
    "billing",
    "redeliver",
    "redelivery",
    "alert",
    "reward",
    "rewards",
    "claim",
    "prize",
    "bonus",
    "unlock",
    "renew",
];

/// A registrable domain made of lure words (`secure-update-alert.com`), or of many hyphenated
/// parts: official sites rarely look like that, throw-away phishing domains usually do.
fn host_words(registrable: &str, s: &mut Vec<Signal>) {
    let sld = registrable.split('.').next().unwrap_or("");
    let parts: Vec<&str> = sld.split('-').filter(|p| !p.is_empty()).collect();
    let hit = parts
        .iter()
        .find(|p| HOST_LURE_WORDS.contains(p))
        .or_else(|| {
            HOST_LURE_WORDS
                .iter()
                .find(|w| w.len() >= 5 && sld.len() > w.len() + 2 && sld.contains(*w))
        });
    if let Some(w) = hit {
        s.push(Signal::new(
            "lure_words_in_domain",
            0.4,
            format!("domain '{registrable}' is built around the word '{w}'"),
        ));
    } else if parts.len() >= 3 {
        s.push(Signal::new(
            "hyphenated_domain",
            0.3,
            format!(
                "domain '{registrable}' strings {} words together",
                parts.len()
            ),
        ));
    }
}

fn credential_path(n: &NormalizedUrl, s: &mut Vec<Signal>) {
    if s.is_empty() {
        return;
    }
    let path = n.path.to_lowercase();
    if let Some(w) = CREDENTIAL_WORDS.iter().find(|w| path.contains(*w)) {
        s.push(Signal::new(
            "credential_path",
            0.3,
            format!("path mentions '{w}' on an already suspicious host"),
        ));
    }
}

#[cfg(test)]
mod tests;
