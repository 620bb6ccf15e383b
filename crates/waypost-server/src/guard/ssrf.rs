//! Keeping customer webhooks away from the operator's own network (SSRF).
//!
//! A target URL is checked when an endpoint is saved ([`check_target`]: scheme,
//! host name, every address the name resolves to) and again at each delivery,
//! on the addresses the HTTP client actually connects to: [`GuardedResolver`]
//! is the client's DNS resolver and drops refused addresses, so a name that is
//! re-pointed at `10.0.0.1` after it was saved (DNS rebinding) cannot be
//! reached. IP literals never pass through a resolver, so deliveries check them
//! with [`check_ip`] before connecting. IPv4 written in decimal, octal or hex
//! (`2130706433`, `0177.1`, `0x7f000001`, `127.1`) is normalised by the WHATWG
//! URL parser before any check.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use futures_util::future::BoxFuture;

/// What the operator allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Plain `http://` targets (default: `https` only).
    pub allow_http: bool,
    /// Loopback, private, link-local and other internal addresses, for
    /// self-hosted setups and tests. Cloud metadata addresses stay refused.
    pub allow_private: bool,
}

/// Why a target was refused; safe to show to the endpoint's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The resolver found no address (a DNS failure, not a refusal).
#[derive(Debug)]
pub struct DnsFailed(pub String);

impl fmt::Display for DnsFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DNS lookup failed: {}", self.0)
    }
}

impl std::error::Error for DnsFailed {}

/// Looks a host name up; swapped in tests.
pub type Lookup =
    Arc<dyn Fn(String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> + Send + Sync>;

/// The system resolver.
pub fn system_lookup() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    })
}

const MAX_URL_LEN: usize = 2048;

/// Names of cloud metadata services: refused whatever the policy.
const METADATA_NAMES: &[&str] = &[
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
];
/// Names of the local machine: refused unless private targets are allowed.
const LOCAL_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "ip6-localhost",
    "ip6-loopback",
];

fn refused(detail: impl Into<String>) -> Refused {
    Refused(detail.into())
}

/// Checks a URL as the endpoint's target: syntax, scheme, host name and every
/// address it resolves to. Returns the normalised URL.
pub async fn check_target(
    raw: &str,
    policy: TargetPolicy,
    lookup: &Lookup,
) -> Result<url::Url, Refused> {
    let url = check_url_syntax(raw, policy)?;
    match url.host() {
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), policy)?,
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), policy)?,
        Some(url::Host::Domain(name)) => {
            check_name(name, policy)?;
            let addrs = lookup(name.trim_end_matches('.').to_owned())
                .await
                .map_err(|_| refused(format!("the host `{name}` does not resolve")))?;
            if addrs.is_empty() {
                return Err(refused(format!("the host `{name}` does not resolve")));
            }
            for ip in addrs {
                check_ip(ip, policy).map_err(|r| {
                    refused(format!(
                        "the host `{name}` resolves to a refused address: {r}"
                    ))
                })?;
            }
        }
        None => return Err(refused("the URL has no host")),
    }
    Ok(url)
}

/// The checks that need no DNS: length, scheme, credentials, literal addresses.
pub fn check_url_syntax(raw: &str, policy: TargetPolicy) -> Result<url::Url, Refused> {
    if raw.len() > MAX_URL_LEN {
        return Err(refused(format!(
            "the URL is longer than {MAX_URL_LEN} bytes"
        )));
    }
    let url = url::Url::parse(raw.trim()).map_err(|e| refused(format!("not a valid URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        "http" => {
            return Err(refused(
                "the URL must use https (the operator has not allowed plain http)",
            ));
        }
        other => return Err(refused(format!("the scheme `{other}` is not allowed"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused("the URL must not carry credentials"));
    }
    Ok(url)
}

fn check_name(name: &str, policy: TargetPolicy) -> Result<(), Refused> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if METADATA_NAMES.contains(&name.as_str()) {
        return Err(refused(format!(
            "the host `{name}` is a cloud metadata service"
        )));
    }
    let local = LOCAL_NAMES.contains(&name.as_str())
        || [".localhost", ".local", ".internal"]
            .iter()
            .any(|suffix| name.ends_with(suffix));
    if local && !policy.allow_private {
        return Err(refused(format!(
            "the host `{name}` names an internal service"
        )));
    }
    Ok(())
}

/// Refuses an address the policy does not allow, saying what kind it is.
pub fn check_ip(ip: IpAddr, policy: TargetPolicy) -> Result<(), Refused> {
    if is_metadata(ip) {
        return Err(refused(format!("{ip} is a cloud metadata address")));
    }
    match internal_kind(ip) {
        Some(kind) if !policy.allow_private => Err(refused(format!("{ip} is a {kind} address"))),
        _ => Ok(()),
    }
}

fn is_metadata(ip: IpAddr) -> bool {
    let ip = canonical(ip);
    matches!(
        ip,
        IpAddr::V4(v4) if [
            Ipv4Addr::new(169, 254, 169, 254),
            Ipv4Addr::new(169, 254, 170, 2),
            Ipv4Addr::new(100, 100, 100, 200),
        ].contains(&v4)
    ) || ip == IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254))
}

/// IPv4 carried inside IPv6 (mapped, compatible, NAT64, 6to4) as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    let s = v6.segments();
    let embedded = |a: u16, b: u16| Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    // IPv4-compatible (::a.b.c.d, deprecated), but not :: and ::1 themselves.
    if s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1) {
        return IpAddr::V4(embedded(s[6], s[7]));
    }
    // NAT64 well-known prefix 64:ff9b::/96.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(embedded(s[6], s[7]));
    }
    // 6to4 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
    if s[0] == 0x2002 {
        return IpAddr::V4(embedded(s[1], s[2]));
    }
    ip
}

/// The kind of a non-public address, or `None` for a public one.
pub fn internal_kind(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            match o {
                [0, ..] => Some("unspecified (0.0.0.0/8)"),
                [127, ..] => Some("loopback"),
                [10, ..] => Some("private"),
                [172, b, ..] if (16..32).contains(&b) => Some("private"),
                [192, 168, ..] => Some("private"),
                [100, b, ..] if (64..128).contains(&b) => Some("shared (carrier-grade NAT)"),
                [169, 254, ..] => Some("link-local"),
                [192, 0, 0, _] => Some("IETF protocol assignment"),
                [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => Some("documentation"),
                [192, 88, 99, _] => Some("6to4 relay"),
                [198, b, ..] if b == 18 || b == 19 => Some("benchmarking"),
                [a, ..] if (224..240).contains(&a) => Some("multicast"),
                [a, ..] if a >= 240 => Some("reserved or broadcast"),
                _ => None,
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_loopback() {
                Some("loopback")
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some("unique-local")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if s[0] & 0xffc0 == 0xfec0 {
                Some("site-local")
            } else if s[0] & 0xff00 == 0xff00 {
                Some("multicast")
            } else if s[0] == 0x2001 && s[1] == 0 {
                Some("Teredo")
            } else if s[0] == 0x2001 && s[1] == 0xdb8 {
                Some("documentation")
            } else if s[..4] == [0x100, 0, 0, 0] {
                Some("discard-only")
            } else if s[..6] == [0; 6] || s[..6] == [0, 0, 0, 0, 0, 0xffff] {
                // IPv4-compatible or mapped forms that `canonical` left alone.
                Some("IPv4-embedded")
            } else {
                None
            }
        }
    }
}

/// The delivery client's DNS resolver: resolves, then keeps only the
/// addresses the policy allows. With none left the connection fails with
/// [`Refused`] and no packet is sent to the target.
pub struct GuardedResolver {
    pub policy: TargetPolicy,
    pub lookup: Lookup,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (policy, lookup) = (self.policy, self.lookup.clone());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            check_name(&host, policy).map_err(|e| Box::new(e) as BoxError)?;
            let addrs = lookup(host.clone())
                .await
                .map_err(|e| Box::new(DnsFailed(e.to_string())) as BoxError)?;
            if addrs.is_empty() {
                return Err(Box::new(DnsFailed("no addresses".into())) as BoxError);
            }
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .filter(|ip| check_ip(**ip, policy).is_ok())
                .map(|ip| SocketAddr::new(*ip, 0))
                .collect();
            if allowed.is_empty() {
                let first = check_ip(addrs[0], policy)
                    .err()
                    .unwrap_or_else(|| refused("refused"));
                return Err(Box::new(refused(format!("`{host}` resolves to {first}"))) as BoxError);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    /// `internal.example` resolves to 10.0.0.1, `mixed.example` to a public and a
    /// private address, `public.example` to a public one; other names fail.
    fn fake_lookup() -> Lookup {
        Arc::new(|host: String| {
            Box::pin(async move {
                let ips: Vec<IpAddr> = match host.as_str() {
                    "internal.example" => vec!["10.0.0.1".parse().unwrap()],
                    "rebind.example" => vec!["127.0.0.1".parse().unwrap()],
                    "metadata-alias.example" => vec!["169.254.169.254".parse().unwrap()],
                    "v6-internal.example" => vec!["fd12::1".parse().unwrap()],
                    "mixed.example" => vec![
                        "93.184.215.14".parse().unwrap(),
                        "192.168.1.5".parse().unwrap(),
                    ],
                    "public.example" => vec!["93.184.215.14".parse().unwrap()],
                    _ => return Err(std::io::Error::other("NXDOMAIN")),
                };
                Ok(ips)
            })
        })
    }

    const STRICT: TargetPolicy = TargetPolicy {
        allow_http: false,
        allow_private: false,
    };

    #[tokio::test]
    async fn hostile_targets_are_refused() {
        let hostile = [
            "https://127.0.0.1/",
            "https://127.1/",
            "https://0x7f000001/",
            "https://0x7f.0.0.1/",
            "https://2130706433/",
            "https://0177.0.0.1/",
            "https://017700000001/",
            "https://127.000.000.001/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::a00:1]/",
            "https://[2002:7f00:1::]/",
            "https://[::]/",
            "https://0.0.0.0/",
            "https://0/",
            "https://10.0.0.1/",
            "https://172.16.0.1/",
            "https://172.31.255.254/",
            "https://192.168.0.1/",
            "https://100.64.0.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://169.254.1.1/",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
            "https://[fc00::1]/",
            "https://[fd00:ec2::254]/",
            "https://224.0.0.1/",
            "https://[ff02::1]/",
            "https://255.255.255.255/",
            "https://240.0.0.1/",
            "https://100.100.100.200/",
            "https://internal.example/",
            "https://rebind.example/",
            "https://metadata-alias.example/",
            "https://v6-internal.example/",
            "https://mixed.example/",
            "https://localhost/",
            "https://LOCALHOST./",
            "https://api.localhost/",
            "https://metadata.google.internal/computeMetadata/v1/",
            "https://does-not-resolve.example/",
            "http://public.example/",
            "ftp://public.example/",
            "file:///etc/passwd",
            "gopher://public.example/",
            "https://user:pass@public.example/",
            "not a url",
        ];
        assert!(hostile.len() >= 25);
        let lookup = fake_lookup();
        for url in hostile {
            let result = check_target(url, STRICT, &lookup).await;
            assert!(result.is_err(), "{url} was accepted");
        }
    }

    #[tokio::test]
    async fn public_targets_pass_and_operators_can_allow_private_ones() {
        let lookup = fake_lookup();
        for url in [
            "https://public.example/hook",
            "https://93.184.215.14:8443/x",
            "https://[2606:2800:220:1::1]/",
        ] {
            assert!(check_target(url, STRICT, &lookup).await.is_ok(), "{url}");
        }
        let open = TargetPolicy {
            allow_http: true,
            allow_private: true,
        };
        for url in [
            "http://127.0.0.1:8080/",
            "http://internal.example/",
            "http://rebind.example/",
        ] {
            assert!(check_target(url, open, &lookup).await.is_ok(), "{url}");
        }
        // Metadata services stay out of reach even then.
        for url in [
            "http://169.254.169.254/",
            "http://[::ffff:169.254.169.254]/",
            "http://metadata-alias.example/",
            "http://metadata.google.internal/",
        ] {
            assert!(check_target(url, open, &lookup).await.is_err(), "{url}");
        }
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses_at_connect_time() {
        use reqwest::dns::Resolve;
        let resolver = GuardedResolver {
            policy: STRICT,
            lookup: fake_lookup(),
        };
        let name = |s: &str| s.parse::<reqwest::dns::Name>().unwrap();
        let err = match resolver.resolve(name("rebind.example")).await {
            Err(e) => e,
            Ok(_) => panic!("a name pointing at loopback resolved"),
        };
        assert!(err.downcast_ref::<Refused>().is_some(), "{err}");
        let addrs: Vec<_> = resolver
            .resolve(name("mixed.example"))
            .await
            .map_err(|e| e.to_string())
            .unwrap()
            .collect();
        assert_eq!(
            addrs,
            vec!["93.184.215.14:0".parse::<SocketAddr>().unwrap()]
        );
        let err = match resolver.resolve(name("nowhere.example")).await {
            Err(e) => e,
            Ok(_) => panic!("resolved"),
        };
        assert!(err.downcast_ref::<DnsFailed>().is_some());
    }
}
