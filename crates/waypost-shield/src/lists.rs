//! Reference lists the URL analyser relies on (protected brands with their official domains,
//! URL shorteners, suspicious TLDs, free hosting, dynamic DNS, two-label public suffixes and
//! the TLDs accepted for scheme-less links). Defaults are embedded from `data/` at compile
//! time; an operator can override any of them with files of the same name in a directory.
//! Everything is parsed once into hash sets so lookups in the scan path do no I/O.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::error::ShieldError;

/// A protected brand: the label attackers imitate, plus the domains that really belong to it.
/// Fields are private so the cached confusable skeleton cannot go stale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Brand {
    name: String,
    domains: Vec<String>,
    canonical: String,
}

impl Brand {
    /// `name` is lowercased; `domains` are the official registrable domains (lowercase ASCII).
    pub fn new(name: &str, domains: Vec<String>) -> Brand {
        let name = name.trim().to_lowercase();
        Brand {
            canonical: crate::urls::canon(&name),
            name,
            domains,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// Confusable skeleton of the name (see `urls::canon`).
    pub(crate) fn canonical(&self) -> &str {
        &self.canonical
    }
}

/// All reference lists, parsed.
#[derive(Clone, Debug)]
pub struct Lists {
    pub brands: Vec<Brand>,
    pub shorteners: HashSet<String>,
    pub suspicious_tlds: HashSet<String>,
    pub free_hosting: HashSet<String>,
    pub dyndns: HashSet<String>,
    pub multi_suffixes: HashSet<String>,
    pub tlds: HashSet<String>,
}

/// File names, shared by the embedded defaults and the operator override directory.
pub const BRANDS_FILE: &str = "brands.tsv";
pub const SHORTENERS_FILE: &str = "shorteners.txt";
pub const SUSPICIOUS_TLDS_FILE: &str = "suspicious_tlds.txt";
pub const FREE_HOSTING_FILE: &str = "free_hosting.txt";
pub const DYNDNS_FILE: &str = "dyndns.txt";
pub const MULTI_SUFFIXES_FILE: &str = "multi_suffixes.txt";
pub const TLDS_FILE: &str = "tlds.txt";

const EMBEDDED: [(&str, &str); 7] = [
    (BRANDS_FILE, include_str!("../data/brands.tsv")),
    (SHORTENERS_FILE, include_str!("../data/shorteners.txt")),
    (
        SUSPICIOUS_TLDS_FILE,
        include_str!("../data/suspicious_tlds.txt"),
    ),
    (FREE_HOSTING_FILE, include_str!("../data/free_hosting.txt")),
    (DYNDNS_FILE, include_str!("../data/dyndns.txt")),
    (
        MULTI_SUFFIXES_FILE,
        include_str!("../data/multi_suffixes.txt"),
    ),
    (TLDS_FILE, include_str!("../data/tlds.txt")),
];

/// Non-empty, non-comment lines, trimmed and lowercased.
fn entries(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.to_lowercase())
}

fn set(text: &str) -> HashSet<String> {
    entries(text)
        .map(|e| e.trim_start_matches('.').to_string())
        .collect()
}

fn parse_brands(text: &str, file: &str) -> Result<Vec<Brand>, ShieldError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (name, domains) = line.split_once('\t').ok_or_else(|| ShieldError::List {
            file: file.to_string(),
            line: i + 1,
            message: "expected `brand<TAB>domain,domain`".into(),
        })?;
        let name = name.trim().to_lowercase();
        let domains: Vec<String> = domains
            .split(',')
            .map(|d| d.trim().to_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        if name.is_empty() || domains.is_empty() {
            return Err(ShieldError::List {
                file: file.to_string(),
                line: i + 1,
                message: "brand name and at least one domain are required".into(),
            });
        }
        out.push(Brand::new(&name, domains));
    }
    Ok(out)
}

impl Lists {
    /// The lists compiled into the crate.
    pub fn embedded() -> Lists {
        let texts: HashMap<&str, String> = EMBEDDED
            .iter()
            .map(|(n, t)| (*n, (*t).to_string()))
            .collect();
        // The embedded files are checked by the test suite, so a parse failure is a build bug.
        Lists::from_texts(&texts).expect("embedded lists are valid")
    }

    /// Embedded defaults, with every known file present in `dir` replacing its default.
    /// Missing files keep the default; unknown files are ignored.
    pub fn load_dir(dir: &Path) -> Result<Lists, ShieldError> {
        let mut texts: HashMap<&str, String> = EMBEDDED
            .iter()
            .map(|(n, t)| (*n, (*t).to_string()))
            .collect();
        for (name, _) in EMBEDDED {
            let path = dir.join(name);
            if path.is_file() {
                let text = std::fs::read_to_string(&path).map_err(|e| ShieldError::Io {
                    path: path.display().to_string(),
                    source: e,
                })?;
                texts.insert(name, text);
            }
        }
        Lists::from_texts(&texts)
    }

    /// Replaces one list (named by its file name, e.g. `shorteners.txt`) from a file.
    pub fn override_file(&mut self, name: &str, path: &Path) -> Result<(), ShieldError> {
        let text = std::fs::read_to_string(path).map_err(|e| ShieldError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        self.override_text(name, &text)
    }

    /// Replaces one list from text in the file format.
    pub fn override_text(&mut self, name: &str, text: &str) -> Result<(), ShieldError> {
        match name {
            BRANDS_FILE => self.brands = parse_brands(text, name)?,
            SHORTENERS_FILE => self.shorteners = set(text),
            SUSPICIOUS_TLDS_FILE => self.suspicious_tlds = set(text),
            FREE_HOSTING_FILE => self.free_hosting = set(text),
            DYNDNS_FILE => self.dyndns = set(text),
            MULTI_SUFFIXES_FILE => self.multi_suffixes = set(text),
            TLDS_FILE => self.tlds = set(text),
            other => {
                return Err(ShieldError::List {
                    file: other.to_string(),
                    line: 0,
                    message: "unknown list name".into(),
                });
            }
        }
        Ok(())
    }

    fn from_texts(texts: &HashMap<&str, String>) -> Result<Lists, ShieldError> {
        let get = |n: &str| texts.get(n).map(String::as_str).unwrap_or("");
        Ok(Lists {
            brands: parse_brands(get(BRANDS_FILE), BRANDS_FILE)?,
            shorteners: set(get(SHORTENERS_FILE)),
            suspicious_tlds: set(get(SUSPICIOUS_TLDS_FILE)),
            free_hosting: set(get(FREE_HOSTING_FILE)),
            dyndns: set(get(DYNDNS_FILE)),
            multi_suffixes: set(get(MULTI_SUFFIXES_FILE)),
            tlds: set(get(TLDS_FILE)),
        })
    }

    /// Registrable domain ("eTLD+1") using the two-label suffix list: `a.b.example.co.uk` ->
    /// `example.co.uk`. Hosts with one label are returned unchanged.
    pub fn registrable<'a>(&self, host: &'a str) -> &'a str {
        let labels: Vec<usize> = host.match_indices('.').map(|(i, _)| i).collect();
        let n = labels.len();
        if n < 1 {
            return host;
        }
        // Start of the last two labels and of the last three labels.
        let last_two = if n >= 2 { labels[n - 2] + 1 } else { 0 };
        if self.multi_suffixes.contains(&host[last_two..]) {
            if n >= 3 {
                return &host[labels[n - 3] + 1..];
            }
            return host;
        }
        &host[last_two..]
    }

    /// True when `host` equals `suffix` or is a subdomain of it.
    pub fn host_under(host: &str, suffix: &str) -> bool {
        host == suffix
            || (host.len() > suffix.len()
                && host.ends_with(suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.')
    }

    /// The entry of `set` that `host` is under, if any (checks every parent domain).
    pub fn find_suffix<'s>(set: &'s HashSet<String>, host: &str) -> Option<&'s str> {
        let mut rest = host;
        loop {
            if let Some(hit) = set.get(rest) {
                return Some(hit.as_str());
            }
            match rest.find('.') {
                Some(i) => rest = &rest[i + 1..],
                None => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_lists_parse_and_are_non_empty() {
        let l = Lists::embedded();
        assert!(l.brands.len() >= 30);
        assert!(l.shorteners.contains("bit.ly"));
        assert!(l.suspicious_tlds.contains("xyz"));
        assert!(l.free_hosting.contains("000webhostapp.com"));
        assert!(l.dyndns.contains("duckdns.org"));
        assert!(l.tlds.contains("uk") && l.tlds.contains("com"));
        assert!(!l.tlds.contains("call"));
    }

    #[test]
    fn registrable_domain() {
        let l = Lists::embedded();
        assert_eq!(l.registrable("www.amazon.co.uk"), "amazon.co.uk");
        assert_eq!(
            l.registrable("paypal.com.secure-login.xyz"),
            "secure-login.xyz"
        );
        assert_eq!(l.registrable("example.com"), "example.com");
        assert_eq!(l.registrable("co.uk"), "co.uk");
        assert_eq!(l.registrable("localhost"), "localhost");
        assert_eq!(l.registrable("evil.github.io"), "evil.github.io");
    }

    #[test]
    fn suffix_matching() {
        assert!(Lists::host_under("a.bit.ly", "bit.ly"));
        assert!(Lists::host_under("bit.ly", "bit.ly"));
        assert!(!Lists::host_under("rabbit.ly", "bit.ly"));
        let l = Lists::embedded();
        assert_eq!(
            Lists::find_suffix(&l.dyndns, "x.y.duckdns.org"),
            Some("duckdns.org")
        );
        assert_eq!(Lists::find_suffix(&l.dyndns, "duckdns.org.evil.com"), None);
    }

    #[test]
    fn override_from_dir_replaces_only_present_files() {
        let dir = std::env::temp_dir().join(format!("shield-lists-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(SHORTENERS_FILE), "# mine\nshort.example\n").unwrap();
        let l = Lists::load_dir(&dir).unwrap();
        assert!(l.shorteners.contains("short.example"));
        assert!(!l.shorteners.contains("bit.ly"));
        assert!(l.suspicious_tlds.contains("xyz"));
        std::fs::write(dir.join(BRANDS_FILE), "acme\n").unwrap();
        let err = Lists::load_dir(&dir).unwrap_err().to_string();
        assert!(
            err.contains("brands.tsv") && err.contains("line 1"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
