//! Operator allow- and blocklists: plain text, one domain or URL a line, `#` comments. A domain
//! entry matches that domain and its subdomains; a URL entry matches URLs that start with it
//! (after normalisation). `SharedList` holds a parsed list behind `RwLock<Arc<_>>` so the scan
//! path only clones an `Arc`, and `reload_if_changed` swaps in a new list when the file's
//! modification time changes; a bad file leaves the previous list in force.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use crate::error::{Result, ShieldError};
use crate::lists::Lists;
use crate::urls::normalize;

/// A parsed allow- or blocklist.
#[derive(Clone, Debug, Default)]
pub struct DomainList {
    domains: HashSet<String>,
    url_prefixes: Vec<String>,
}

impl DomainList {
    /// Parses the text format. Lines that are neither a host nor a URL are reported with their
    /// line number rather than silently dropped, so a typo cannot disable an entry unnoticed.
    pub fn parse(text: &str, file: &str) -> Result<DomainList> {
        let mut list = DomainList::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |m: &str| ShieldError::List {
                file: file.to_string(),
                line: i + 1,
                message: m.to_string(),
            };
            let is_url = line.contains("://") || line.contains('/');
            if is_url {
                let n = normalize(line).ok_or_else(|| bad("not a valid URL"))?;
                list.url_prefixes.push(n.normalized);
            } else {
                let d = line.trim_start_matches("*.").trim_start_matches('.');
                let ascii = idna::domain_to_ascii(d).map_err(|_| bad("not a valid domain"))?;
                if ascii.is_empty() || ascii.contains(char::is_whitespace) {
                    return Err(bad("not a valid domain"));
                }
                list.domains.insert(ascii);
            }
        }
        Ok(list)
    }

    pub fn load(path: &Path) -> Result<DomainList> {
        let text = std::fs::read_to_string(path).map_err(|e| ShieldError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        DomainList::parse(&text, &path.display().to_string())
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.url_prefixes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.domains.len() + self.url_prefixes.len()
    }

    /// The entry matching an (ASCII, lowercase) host or normalised URL, if any.
    pub fn matches(&self, host: &str, normalized_url: &str) -> Option<&str> {
        if !self.domains.is_empty()
            && let Some(hit) = Lists::find_suffix(&self.domains, host)
        {
            return Some(hit);
        }
        self.url_prefixes
            .iter()
            .find(|p| normalized_url.starts_with(p.as_str()))
            .map(String::as_str)
    }
}

/// A list that can be swapped at run time without blocking scans for longer than an `Arc` clone.
#[derive(Debug, Default)]
pub struct SharedList {
    current: RwLock<Arc<DomainList>>,
    loaded_mtime: Mutex<Option<SystemTime>>,
}

impl SharedList {
    pub fn new(list: DomainList) -> SharedList {
        SharedList {
            current: RwLock::new(Arc::new(list)),
            loaded_mtime: Mutex::new(None),
        }
    }

    /// Loads `path` now and remembers its modification time.
    pub fn from_file(path: &Path) -> Result<SharedList> {
        let shared = SharedList::default();
        shared.reload_if_changed(path)?;
        Ok(shared)
    }

    /// The list in force. Cheap: one read lock and an `Arc` clone.
    pub fn snapshot(&self) -> Arc<DomainList> {
        // A poisoned lock only means a writer panicked mid-swap; the Arc inside is still whole.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the list in force.
    pub fn replace(&self, list: DomainList) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(list);
    }

    /// Reloads `path` if its modification time differs from the last successful load.
    /// Returns `Ok(true)` when a new list was swapped in. On a parse error the old list stays.
    pub fn reload_if_changed(&self, path: &Path) -> Result<bool> {
        let io = |e| ShieldError::Io {
            path: path.display().to_string(),
            source: e,
        };
        let mtime = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(io)?;
        let mut last = self.loaded_mtime.lock().unwrap_or_else(|e| e.into_inner());
        if *last == Some(mtime) {
            return Ok(false);
        }
        let list = DomainList::load(path)?;
        self.replace(list);
        *last = Some(mtime);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_domains_urls_and_comments() {
        let l = DomainList::parse(
            "# blocked\nevil.example  # trailing comment\n*.tracker.test\nhttps://Bad.Example.org/Login\n\n",
            "t",
        )
        .unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(
            l.matches("evil.example", "http://evil.example/"),
            Some("evil.example")
        );
        assert_eq!(l.matches("a.b.evil.example", ""), Some("evil.example"));
        assert_eq!(
            l.matches("notevil.example", "http://notevil.example/"),
            None
        );
        assert_eq!(l.matches("x.tracker.test", ""), Some("tracker.test"));
        assert!(
            l.matches("bad.example.org", "https://bad.example.org/Login/step2")
                .is_some()
        );
        assert!(
            l.matches("bad.example.org", "https://bad.example.org/other")
                .is_none()
        );
    }

    #[test]
    fn bad_line_is_reported_with_line_number() {
        let err = DomainList::parse("ok.example\nbad domain\n", "block.txt")
            .unwrap_err()
            .to_string();
        assert!(err.contains("block.txt") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn reload_only_when_mtime_changes_and_keeps_old_list_on_error() {
        let dir = std::env::temp_dir().join(format!("shield-op-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("block.txt");
        std::fs::write(&path, "one.example\n").unwrap();
        let shared = SharedList::from_file(&path).unwrap();
        assert!(shared.snapshot().matches("one.example", "").is_some());
        assert!(!shared.reload_if_changed(&path).unwrap());

        std::fs::write(&path, "two.example\n").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(shared.reload_if_changed(&path).unwrap());
        let snap = shared.snapshot();
        assert!(snap.matches("two.example", "").is_some());
        assert!(snap.matches("one.example", "").is_none());

        std::fs::write(&path, "not a domain\n").unwrap();
        let later = later + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(shared.reload_if_changed(&path).is_err());
        assert!(shared.snapshot().matches("two.example", "").is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
