//! Client configuration: where the Graph API is, which version, the token,
//! timeouts and size limits. Validated on construction so a bad setting fails
//! at start, naming itself.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::ClientError;

/// Where and how to reach the Graph API.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://graph.facebook.com/` or the sandbox's address.
    pub base_url: Url,
    /// `"v21.0"`; `None` omits the version segment (Meta treats it as optional).
    pub api_version: Option<String>,
    pub access_token: SecretString,
    /// Whole-request timeout, body included.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Limit for JSON response bodies.
    pub max_response_bytes: usize,
    /// Limit for media downloads (Meta's largest media is 100 MB).
    pub max_download_bytes: usize,
    /// Hosts besides the base URL's host that may receive the token on a media
    /// download. Media URLs come from Meta's response, so an unchecked URL
    /// would let whoever controls it collect our token.
    pub media_download_hosts: Vec<String>,
    /// Addresses the client may connect to; `None` allows any.
    pub address_guard: Option<AddressGuard>,
}

/// Keeps the client away from addresses its owner refuses (SSRF): `resolver`
/// drops refused addresses a host name resolves to, at connect time (so a name
/// re-pointed after it was checked is still caught); `allows` judges IP
/// literals, which never pass through a resolver (base URL, redirects, media URLs).
#[derive(Clone)]
pub struct AddressGuard {
    pub resolver: Arc<dyn reqwest::dns::Resolve>,
    pub allows: Arc<dyn Fn(IpAddr) -> bool + Send + Sync>,
}

impl AddressGuard {
    /// Whether a URL's host, when it is an IP literal, is allowed (names are
    /// judged by the resolver when the client connects).
    pub fn allows_url(&self, url: &Url) -> bool {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => (self.allows)(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => (self.allows)(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => true,
            None => false,
        }
    }
}

impl fmt::Debug for AddressGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AddressGuard")
    }
}

impl ClientConfig {
    /// Defaults: 30 s request timeout, 10 s connect, 1 MiB JSON, 100 MiB media,
    /// downloads from `lookaside.fbsbx.com`.
    pub fn new(
        base_url: &str,
        api_version: Option<&str>,
        access_token: SecretString,
    ) -> Result<Self, ClientError> {
        let base_url =
            Url::parse(base_url).map_err(|e| ClientError::Config(format!("base_url: {e}")))?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(ClientError::Config(
                "base_url must be an http(s) URL".into(),
            ));
        }
        if let Some(v) = api_version {
            let ok = v
                .strip_prefix('v')
                .and_then(|r| r.split_once('.'))
                .is_some_and(|(a, b)| {
                    !a.is_empty()
                        && !b.is_empty()
                        && a.chars().chain(b.chars()).all(|c| c.is_ascii_digit())
                });
            if !ok {
                return Err(ClientError::Config(format!(
                    "api_version must look like v21.0, got {v:?}"
                )));
            }
        }
        Ok(Self {
            base_url,
            api_version: api_version.map(str::to_owned),
            access_token,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
            max_download_bytes: 100 * 1024 * 1024,
            media_download_hosts: vec!["lookaside.fbsbx.com".into()],
            address_guard: None,
        })
    }
}
