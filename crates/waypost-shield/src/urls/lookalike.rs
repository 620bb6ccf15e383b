//! Brand impersonation checks on a host: homoglyph look-alikes (Unicode confusables via the
//! UTS #39 skeleton, plus digit-for-letter swaps like `paypa1`/`amaz0n` that the skeleton does
//! not cover), typo look-alikes by edit distance, the brand embedded in another registrable
//! domain (`paypal-login.com`), the brand as a subdomain of someone else's domain
//! (`paypal.com.secure-login.xyz`), and the exact brand name under an unofficial TLD.
//! Hosts under any brand's official domains are exempt from all of these.

use unicode_security::MixedScript;

use crate::lists::Lists;
use crate::reason::Signal;

/// Canonical form for confusable comparison: lowercase, common digit/letter-pair swaps, then
/// the UTS #39 skeleton, lowercased again (the skeleton maps some letters to upper case).
pub(crate) fn canon(s: &str) -> String {
    let lowered: String = s
        .to_lowercase()
        .chars()
        .map(|c| match c {
            '0' => 'o',
            '1' | '|' => 'l',
            '3' => 'e',
            '4' | '@' => 'a',
            '5' | '$' => 's',
            '7' => 't',
            '8' => 'b',
            '9' => 'g',
            other => other,
        })
        .collect();
    let lowered = lowered.replace("vv", "w");
    let skel: String = unicode_security::skeleton(&lowered).collect();
    skel.to_lowercase()
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent transposition), on chars.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

/// The label and its hyphen-separated parts, e.g. `secure-paypa1-login` yields the whole label
/// and `secure`, `paypa1`, `login`.
fn parts(label: &str) -> Vec<&str> {
    let mut v = vec![label];
    if label.contains('-') {
        v.extend(label.split('-').filter(|p| !p.is_empty()));
    }
    v
}

/// Brand and homograph signals for a (non-IP) host.
pub(crate) fn brand_signals(host: &str, host_unicode: &str, lists: &Lists) -> Vec<Signal> {
    let mut out = Vec::new();
    if host_unicode != host {
        for label in host_unicode.split('.') {
            if !label.is_ascii() && !label.is_single_script() {
                out.push(Signal::new(
                    "mixed_script",
                    0.7,
                    format!("host label '{label}' mixes writing systems (homograph trick)"),
                ));
                break;
            }
        }
    }
    let official = lists
        .brands
        .iter()
        .any(|b| b.domains().iter().any(|d| Lists::host_under(host, d)));
    if official {
        return out;
    }
    let registrable = lists.registrable(host_unicode);
    let (sld, tld) = registrable.split_once('.').unwrap_or((registrable, ""));
    let sub = &host_unicode[..host_unicode.len() - registrable.len()];
    let sub_labels: Vec<&str> = sub.split('.').filter(|l| !l.is_empty()).collect();
    let tld_suspicious = lists
        .suspicious_tlds
        .contains(tld.rsplit('.').next().unwrap_or(tld));
    let sld_parts = parts(sld);
    let sld_canon: Vec<String> = sld_parts.iter().map(|p| canon(p)).collect();
    // Computed once per host, not once per brand: skeletons are the costly part.
    let sub_parts: Vec<(&str, String)> = sub_labels
        .iter()
        .flat_map(|l| parts(l))
        .map(|p| (p, canon(p)))
        .collect();

    for brand in &lists.brands {
        let name = brand.name();
        let cname = brand.canonical();
        let official = brand.domains().first().map_or("", String::as_str);
        if sld == name {
            let weight = if tld_suspicious { 1.0 } else { 0.6 };
            out.push(Signal::new(
                "brand_unofficial_domain",
                weight,
                format!("'{registrable}' uses the {name} name but is not an official {name} domain ({official})"),
            ));
        } else if sld_parts.contains(&name) {
            out.push(Signal::new(
                "brand_in_domain",
                1.0,
                format!("'{registrable}' embeds the brand '{name}' in an unrelated domain"),
            ));
        } else if sld_canon.iter().any(|c| c == cname) {
            out.push(Signal::new(
                "brand_lookalike",
                1.0,
                format!("'{registrable}' imitates '{name}' with look-alike characters (official: {official})"),
            ));
        } else if name.len() >= 6
            && sld_parts.iter().any(|p| {
                let max = if name.len() >= 9 { 2 } else { 1 };
                p.chars().count() + 2 >= name.len() && edit_distance(p, name) <= max
            })
        {
            out.push(Signal::new(
                "brand_lookalike",
                1.0,
                format!("'{registrable}' is a misspelling of '{name}' (official: {official})"),
            ));
        } else if name.len() >= 6 && (sld.contains(name) || sld_canon[0].contains(cname)) {
            out.push(Signal::new(
                "brand_in_domain",
                1.0,
                format!("'{registrable}' embeds the brand '{name}' in an unrelated domain"),
            ));
        }
        if sub_parts.iter().any(|(p, c)| *p == name || c == cname) {
            out.push(Signal::new(
                "brand_in_subdomain",
                1.0,
                format!("'{name}' appears as a subdomain of the unrelated domain '{registrable}'"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(host: &str) -> Vec<&'static str> {
        let lists = Lists::embedded();
        let uni = idna::domain_to_unicode(host).0;
        let ascii = idna::domain_to_ascii(host).unwrap();
        brand_signals(&ascii, &uni, &lists)
            .into_iter()
            .map(|s| s.reason.code)
            .collect()
    }

    #[test]
    fn canon_maps_digits_and_confusables() {
        assert_eq!(canon("paypa1"), canon("paypal"));
        assert_eq!(canon("amaz0n"), canon("amazon"));
        assert_eq!(canon("аpple"), canon("apple")); // Cyrillic а
        assert_eq!(canon("rnicrosoft"), canon("microsoft"));
        assert_ne!(canon("paypal"), canon("paypai"));
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("paypal", "paypal"), 0);
        assert_eq!(edit_distance("paypal", "paypall"), 1);
        assert_eq!(edit_distance("paypal", "papyal"), 1);
        assert_eq!(edit_distance("netflix", "netfilx"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn hostile_brand_hosts_fire() {
        assert!(codes("paypa1-login.com").contains(&"brand_lookalike"));
        assert!(codes("amaz0n.com").contains(&"brand_lookalike"));
        assert!(codes("www.g00gle.com").contains(&"brand_lookalike"));
        assert!(codes("netfilx-billing.net").contains(&"brand_lookalike"));
        assert!(codes("paypal.com.secure-login.xyz").contains(&"brand_in_subdomain"));
        assert!(codes("paypal-verify.info").contains(&"brand_in_domain"));
        assert!(codes("amazonsupport-help.com").contains(&"brand_in_domain"));
        assert!(codes("dhl-parcel-fee.com").contains(&"brand_in_domain"));
        assert!(codes("royalmail.delivery-reschedule.top").contains(&"brand_in_subdomain"));
        assert!(codes("paypal.xyz").contains(&"brand_unofficial_domain"));
        let cyr = codes("аpple.com"); // Cyrillic а
        assert!(cyr.contains(&"brand_lookalike"), "{cyr:?}");
        assert!(codes("аpplе.com").contains(&"brand_lookalike"));
        assert!(codes("xn--pple-43d.com").contains(&"brand_lookalike"));
        assert!(codes("mаil.google.com.evil.ru").contains(&"brand_in_subdomain"));
        assert!(codes("pаypal.com").contains(&"mixed_script"));
        assert!(codes("sbi-kyc-update.top").contains(&"brand_in_domain"));
        assert!(codes("paytm-kyc.co.in").contains(&"brand_in_domain"));
    }

    #[test]
    fn benign_hosts_do_not_fire() {
        for h in [
            "paypal.com",
            "www.paypal.com",
            "www.amazon.co.uk",
            "accounts.google.com",
            "mail.google.com",
            "aws.amazon.com",
            "pineapple.com",
            "groups.example.com",
            "support.apple.com",
            "example.org",
            "bücher.de",
            "steamcommunity.com",
            "applied-science.org",
            "cloud-backup.com",
            "www.airtel.in",
            "onlinesbi.sbi",
            "www.hdfcbank.com",
        ] {
            assert!(codes(h).is_empty(), "{h}: {:?}", codes(h));
        }
    }
}
