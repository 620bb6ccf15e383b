//! Finding URLs in message text and normalising them. Extraction uses `linkify` (which also
//! finds scheme-less links such as `paypa1-login.com/x`); scheme-less hits are kept only when
//! their TLD is known, so chat text like `now.Call` is not taken for a link. Normalisation goes
//! through the WHATWG parser of the `url` crate (IDNA to punycode, lowercase host, default
//! ports dropped, decimal/hex IPv4 decoded) and keeps what the raw text revealed (userinfo,
//! the original IP notation) because those are signals the parser would erase.

use linkify::{LinkFinder, LinkKind};
use percent_encoding::percent_decode_str;

use crate::lists::Lists;

/// How an IP host was written in the raw URL. Non-dotted forms exist mainly to evade filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpForm {
    Dotted,
    Decimal,
    Hex,
    Octal,
    V6,
}

impl IpForm {
    pub fn as_str(self) -> &'static str {
        match self {
            IpForm::Dotted => "dotted-quad",
            IpForm::Decimal => "decimal",
            IpForm::Hex => "hexadecimal",
            IpForm::Octal => "octal",
            IpForm::V6 => "IPv6",
        }
    }
}

/// A URL after normalisation, with the facts the raw text revealed.
#[derive(Clone, Debug, PartialEq)]
pub struct NormalizedUrl {
    /// Byte span in the scanned text (0..len for a URL passed on its own).
    pub start: usize,
    pub end: usize,
    /// `scheme://host[:port]/path?query`, host lowercase ASCII, path percent-decoded.
    pub normalized: String,
    /// Lowercase ASCII host (punycode for IDNs; the canonical dotted form for IPv4).
    pub host: String,
    /// The host decoded to Unicode (equal to `host` for ASCII hosts).
    pub host_unicode: String,
    /// `Some` when the host is an IP address, with the notation used in the raw text.
    pub ip: Option<IpForm>,
    /// A port other than the scheme's default.
    pub port: Option<u16>,
    /// The raw `user:pass` part before `@`, if any.
    pub userinfo: Option<String>,
    /// Percent-decoded path and query.
    pub path: String,
    pub had_scheme: bool,
}

/// Splits `raw` (scheme optional) into (userinfo, host) as written, before any parsing.
fn raw_authority(raw: &str) -> (Option<&str>, &str) {
    let rest = match raw.find("://") {
        Some(i) => &raw[i + 3..],
        None => raw,
    };
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let host = if hostport.starts_with('[') {
        hostport.find(']').map_or(hostport, |i| &hostport[..=i])
    } else {
        hostport.split(':').next().unwrap_or(hostport)
    };
    (userinfo, host)
}

fn ip_form(raw_host: &str) -> IpForm {
    let h = raw_host.to_ascii_lowercase();
    if h.starts_with('[') {
        return IpForm::V6;
    }
    if !h.contains('.') {
        return if h.starts_with("0x") {
            IpForm::Hex
        } else {
            IpForm::Decimal
        };
    }
    let parts: Vec<&str> = h.split('.').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| p.starts_with("0x")) {
        IpForm::Hex
    } else if parts.iter().any(|p| p.len() > 1 && p.starts_with('0')) {
        IpForm::Octal
    } else if parts.len() == 4 {
        IpForm::Dotted
    } else {
        // e.g. 192.11010049: still a non-standard shorthand.
        IpForm::Decimal
    }
}

/// Normalises one URL (scheme optional). `None` when it cannot be a web URL with a host.
pub fn normalize(raw: &str) -> Option<NormalizedUrl> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 4096 {
        return None;
    }
    let had_scheme = raw.contains("://");
    if !had_scheme {
        // `mailto:x@y`, `javascript:...`: a scheme without `//` is not a web link.
        let head = &raw[..raw.find(['/', '?', '#']).unwrap_or(raw.len())];
        if let Some((before, after)) = head.split_once(':')
            && !before.contains('.')
            && !after.starts_with(|c: char| c.is_ascii_digit())
        {
            return None;
        }
    }
    let parsed = if had_scheme {
        ::url::Url::parse(raw).ok()?
    } else {
        ::url::Url::parse(&format!("http://{raw}")).ok()?
    };
    let scheme = parsed.scheme();
    if !matches!(scheme, "http" | "https" | "ftp" | "ws" | "wss") {
        return None;
    }
    let (userinfo, raw_host) = raw_authority(raw);
    let (host, ip) = match parsed.host()? {
        ::url::Host::Domain(d) => (d.trim_end_matches('.').to_string(), None),
        ::url::Host::Ipv4(a) => (a.to_string(), Some(ip_form(raw_host))),
        ::url::Host::Ipv6(a) => (a.to_string(), Some(IpForm::V6)),
    };
    if host.is_empty() {
        return None;
    }
    let host_unicode = if ip.is_none() && host.contains("xn--") {
        idna::domain_to_unicode(&host).0
    } else {
        host.clone()
    };
    let mut path = percent_decode_str(parsed.path())
        .decode_utf8_lossy()
        .into_owned();
    if let Some(q) = parsed.query() {
        path.push('?');
        path.push_str(&percent_decode_str(q).decode_utf8_lossy());
    }
    let port = parsed.port();
    let shown_host = if matches!(ip, Some(IpForm::V6)) {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let normalized = match port {
        Some(p) => format!("{scheme}://{shown_host}:{p}{path}"),
        None => format!("{scheme}://{shown_host}{path}"),
    };
    Some(NormalizedUrl {
        start: 0,
        end: raw.len(),
        normalized,
        host,
        host_unicode,
        ip,
        port,
        userinfo: userinfo.filter(|u| !u.is_empty()).map(str::to_string),
        path,
        had_scheme,
    })
}

/// Whether a scheme-less hit looks like a real link rather than two words joined by a dot.
fn plausible_bare(n: &NormalizedUrl, lists: &Lists) -> bool {
    if n.ip.is_some() {
        return n.ip == Some(IpForm::Dotted) || n.path.len() > 1;
    }
    let labels: Vec<&str> = n.host.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return false;
    }
    let tld = labels[labels.len() - 1];
    // "e.g" / "u.s": single-letter second-level labels are abbreviations, not hosts.
    if labels[labels.len() - 2].len() < 2 && !n.host.starts_with("www.") {
        return false;
    }
    lists.tlds.contains(tld) || (tld.starts_with("xn--") && tld.len() > 4)
}

/// All URLs in `text`, normalised, in order of appearance.
pub fn extract_urls(text: &str, lists: &Lists) -> Vec<NormalizedUrl> {
    let mut finder = LinkFinder::new();
    finder.url_must_have_scheme(false);
    finder.kinds(&[LinkKind::Url]);
    let mut out = Vec::new();
    for link in finder.links(text) {
        // linkify keeps a trailing dot or quote of the sentence in some cases.
        let s = link
            .as_str()
            .trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '"']);
        let Some(mut n) = normalize(s) else { continue };
        if !n.had_scheme && !plausible_bare(&n, lists) {
            continue;
        }
        n.start = link.start();
        n.end = link.start() + s.len();
        out.push(n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> Lists {
        Lists::embedded()
    }

    fn hosts(text: &str) -> Vec<String> {
        extract_urls(text, &lists())
            .into_iter()
            .map(|u| u.host)
            .collect()
    }

    #[test]
    fn finds_scheme_and_bare_links() {
        assert_eq!(
            hosts("go to paypa1-login.com/x now"),
            vec!["paypa1-login.com"]
        );
        assert_eq!(
            hosts("see https://Example.COM/a and www.Ldew.com."),
            vec!["example.com", "www.ldew.com"]
        );
        assert_eq!(hosts("visit bit.ly/3xYz"), vec!["bit.ly"]);
    }

    #[test]
    fn ignores_words_joined_by_dots() {
        assert!(hosts("ok now.Call me later. e.g. this, u.s. and 1.50 per msg").is_empty());
        assert!(hosts("Hi.How are you? I'm at home.Going out").is_empty());
    }

    #[test]
    fn normalises_case_ports_idna_and_percent() {
        let n = normalize("HTTPS://WWW.Example.com:443/a%20b?q=%41").unwrap();
        assert_eq!(n.normalized, "https://www.example.com/a b?q=A");
        assert_eq!(n.port, None);
        let n = normalize("http://bücher.example:8080/").unwrap();
        assert_eq!(n.host, "xn--bcher-kva.example");
        assert_eq!(n.host_unicode, "bücher.example");
        assert_eq!(n.port, Some(8080));
        let n = normalize("http://pay%70al.com/").unwrap();
        assert_eq!(n.host, "paypal.com");
    }

    #[test]
    fn ip_forms_are_recognised() {
        let n = normalize("http://3232235777/login").unwrap();
        assert_eq!(
            (n.host.as_str(), n.ip),
            ("192.168.1.1", Some(IpForm::Decimal))
        );
        let n = normalize("http://0xC0A80101/").unwrap();
        assert_eq!((n.host.as_str(), n.ip), ("192.168.1.1", Some(IpForm::Hex)));
        let n = normalize("http://0300.0250.01.01/").unwrap();
        assert_eq!(n.ip, Some(IpForm::Octal));
        let n = normalize("http://[::1]:8443/").unwrap();
        assert_eq!(n.ip, Some(IpForm::V6));
        assert_eq!(n.normalized, "http://[::1]:8443/");
    }

    #[test]
    fn userinfo_is_kept() {
        let n = normalize("http://paypal.com@evil.example/x").unwrap();
        assert_eq!(n.host, "evil.example");
        assert_eq!(n.userinfo.as_deref(), Some("paypal.com"));
    }

    #[test]
    fn rejects_non_web() {
        assert!(normalize("").is_none());
        assert!(normalize("mailto:a@b.c").is_none());
        assert!(normalize("javascript:alert(1)").is_none());
    }
}
