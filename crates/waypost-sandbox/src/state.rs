//! Everything the sandbox remembers, in memory behind one mutex: numbers,
//! templates, media, users and their windows, rate-limit buckets, the send
//! log, and the seeded RNG that makes every random choice reproducible.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use waypost_cloudapi::manage::{
    NamedExample, ParameterFormat, TemplateDefComponent, TemplateExample,
};

use crate::config::{FaultConfig, NumberConfig, SandboxConfig, TemplateConfig, UserConfig};

pub const DAY: Duration = Duration::from_secs(24 * 3600);

/// A stored template.
#[derive(Debug, Clone)]
pub struct Template {
    pub id: u64,
    pub waba_id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub body_params: usize,
    pub header_params: usize,
    pub parameter_format: ParameterFormat,
    pub components: Vec<TemplateDefComponent>,
}

impl Template {
    pub fn from_config(waba_id: &str, id: u64, t: &TemplateConfig) -> Self {
        let names = variable_names(&t.body);
        let parameter_format = parameter_format_of(&names);
        // Meta wants an example per variable; use the configured ones, else made-up values.
        let sample = |i: usize| {
            t.examples
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("example {}", i + 1))
        };
        let example = (!names.is_empty()).then(|| TemplateExample {
            header_text: vec![],
            body_text: match parameter_format {
                ParameterFormat::Named => vec![],
                _ => vec![(0..names.len()).map(sample).collect()],
            },
            header_handle: vec![],
            header_text_named_params: vec![],
            body_text_named_params: match parameter_format {
                ParameterFormat::Named => names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| NamedExample {
                        param_name: n.clone(),
                        example: sample(i),
                    })
                    .collect(),
                _ => vec![],
            },
        });
        Self {
            id,
            waba_id: waba_id.into(),
            name: t.name.clone(),
            language: t.language.clone(),
            category: t.category.to_ascii_uppercase(),
            status: t.status.to_ascii_uppercase(),
            body_params: names.len(),
            header_params: 0,
            parameter_format,
            components: vec![TemplateDefComponent {
                kind: "BODY".into(),
                format: None,
                text: Some(t.body.clone()),
                example,
                buttons: vec![],
            }],
        }
    }
}

/// `NAMED` when any variable is a name, else `POSITIONAL` (Meta's default).
pub fn parameter_format_of(names: &[String]) -> ParameterFormat {
    if names.iter().any(|n| !n.bytes().all(|b| b.is_ascii_digit())) {
        ParameterFormat::Named
    } else {
        ParameterFormat::Positional
    }
}

/// The distinct `{{…}}` variables of a template text, in order of first use.
pub fn variable_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim().to_owned();
        if !names.contains(&name) {
            names.push(name);
        }
        rest = &after[end + 2..];
    }
    names
}

/// Number of distinct `{{…}}` variables in a template text.
pub fn count_variables(text: &str) -> usize {
    variable_names(text).len()
}

#[derive(Debug, Clone)]
pub struct Media {
    pub phone_number_id: String,
    pub mime_type: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// What the sandbox knows about one user (see `users`).
#[derive(Debug, Clone)]
pub struct UserState {
    pub config: UserConfig,
    /// The business-scoped user id webhooks carry.
    pub user_id: String,
    pub parent_user_id: Option<String>,
    /// BSUID changes so far (each regenerates the ids).
    pub generation: u32,
    /// Last inbound message, per business number id.
    pub last_inbound: HashMap<String, Instant>,
    /// Last send addressed to the phone, per business number id.
    pub sent_to_phone: HashMap<String, Instant>,
}

/// One send as recorded in the log.
#[derive(Debug, Clone, Serialize)]
pub struct SendRecord {
    pub seq: u64,
    pub phone_number_id: String,
    /// The recipient's phone, however the send addressed them.
    pub to: String,
    /// The BSUID the send was addressed to, when it had no `to`.
    pub recipient: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    /// `accepted`, `response_lost`, or the fault/error that answered it.
    pub outcome: String,
    pub code: Option<i64>,
    pub wamid: Option<String>,
    pub biz_opaque_callback_data: Option<String>,
    /// The uploaded media id a media message named.
    pub media_id: Option<String>,
    /// The code the accepted send will fail with in a `failed` webhook.
    pub fails_with: Option<i64>,
    /// When the request arrived, in Unix milliseconds (for checking rates from the outside).
    pub received_at_ms: u64,
}

/// Per-number sliding window of accepted sends in the last second.
#[derive(Debug, Default)]
pub struct RateWindow {
    pub recent: VecDeque<Instant>,
    pub max_per_second: usize,
}

impl RateWindow {
    fn prune(&mut self, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            self.recent.pop_front();
        }
    }

    /// Whether one more send fits under `limit` per second.
    pub fn has_room(&mut self, now: Instant, limit: u32) -> bool {
        self.prune(now);
        self.recent.len() < limit as usize
    }

    pub fn record(&mut self, now: Instant) {
        self.prune(now);
        self.recent.push_back(now);
        self.max_per_second = self.max_per_second.max(self.recent.len());
    }
}

/// Users first reached outside a window in the last 24 h, oldest first.
#[derive(Debug, Default)]
pub struct TierWindow {
    pub order: VecDeque<(Instant, String)>,
    pub users: HashSet<String>,
}

/// Token bucket for the (number, user) pair rate limit.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    pub tokens: f64,
    pub at: Instant,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    pub requests: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub fault_5xx: u64,
    pub fault_timeout: u64,
    pub fault_latency: u64,
    pub fault_429: u64,
    pub fault_response_lost: u64,
    pub webhooks_delivered: u64,
    pub webhooks_failed_attempts: u64,
    pub webhooks_given_up: u64,
    pub webhooks_dropped: u64,
    pub webhooks_duplicated: u64,
    pub webhooks_delayed: u64,
    pub webhooks_reordered: u64,
    pub webhooks_queue_full: u64,
    pub inbound_injected: u64,
}

/// The mutable world.
pub struct Inner {
    pub rng: ChaCha8Rng,
    pub numbers: Vec<NumberConfig>,
    pub templates: Vec<Template>,
    pub media: HashMap<String, Media>,
    /// Users by phone (digits).
    pub users: HashMap<String, UserState>,
    /// Phone by BSUID and parent BSUID.
    pub by_user_id: HashMap<String, String>,
    pub seed: u64,
    pub parent_user_ids: bool,
    pub buckets: HashMap<(String, String), Bucket>,
    pub rates: HashMap<String, RateWindow>,
    /// Unique users reached outside a window, per number.
    pub tier_users: HashMap<String, TierWindow>,
    pub log: VecDeque<SendRecord>,
    pub per_recipient: BTreeMap<String, u64>,
    pub counters: Counters,
    pub faults: FaultConfig,
    pub burst_left: u32,
    pub seq: u64,
    /// Webhook URLs that passed the verify handshake.
    pub verified_urls: HashSet<String>,
    /// Conversation id per (number, user).
    pub conversations: HashMap<(String, String), String>,
    /// Inbound wamids per number, for mark-as-read.
    pub inbound_ids: HashSet<(String, String)>,
    /// Read receipts received, oldest first: (number id, wamid, typing indicator).
    pub reads: Vec<(String, String, bool)>,
    /// Quality ratings set through the control API, by number id (default green).
    pub quality: HashMap<String, waypost_cloudapi::manage::QualityRating>,
}

impl Inner {
    pub fn new(config: &SandboxConfig) -> Self {
        let mut inner = Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            numbers: config.numbers.clone(),
            templates: Vec::new(),
            media: HashMap::new(),
            users: HashMap::new(),
            by_user_id: HashMap::new(),
            seed: config.seed,
            parent_user_ids: config.api.parent_user_ids,
            buckets: HashMap::new(),
            rates: HashMap::new(),
            tier_users: HashMap::new(),
            log: VecDeque::new(),
            per_recipient: BTreeMap::new(),
            counters: Counters::default(),
            faults: config.faults.clone(),
            burst_left: 0,
            seq: 0,
            verified_urls: HashSet::new(),
            conversations: HashMap::new(),
            inbound_ids: HashSet::new(),
            reads: Vec::new(),
            quality: HashMap::new(),
        };
        let wabas: Vec<String> = {
            let mut w: Vec<String> = config.numbers.iter().map(|n| n.waba_id.clone()).collect();
            w.dedup();
            w
        };
        for waba in &wabas {
            for t in &config.templates {
                let id = inner.numeric_id();
                inner.templates.push(Template::from_config(waba, id, t));
            }
        }
        for (wa_id, u) in &config.users {
            inner.configure_user(wa_id, u.clone());
        }
        inner
    }

    /// A 15-digit Graph-style numeric id.
    pub fn numeric_id(&mut self) -> u64 {
        self.rng
            .random_range(100_000_000_000_000..1_000_000_000_000_000)
    }

    /// A wamid shaped like Meta's: base64 of the user's digits and a random
    /// 20-hex-char id.
    pub fn wamid(&mut self, wa_id: &str) -> String {
        use base64::Engine as _;
        let hex_id: String = (0..10)
            .map(|_| format!("{:02X}", self.rng.random::<u8>()))
            .collect();
        let mut bytes = vec![0x1c, 0x18, wa_id.len() as u8];
        bytes.extend_from_slice(wa_id.as_bytes());
        bytes.extend_from_slice(&[0x15, 0x02, 0x00, 0x11, 0x18, hex_id.len() as u8]);
        bytes.extend_from_slice(hex_id.as_bytes());
        bytes.push(0);
        format!(
            "wamid.{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    /// Roll a fault with probability `rate`. Always draws, so the sequence
    /// of draws (and thus every outcome) depends only on the seed and the
    /// order of requests.
    pub fn roll(&mut self, rate: f64) -> bool {
        let x: f64 = self.rng.random();
        x < rate
    }

    pub fn number(&self, id: &str) -> Option<&NumberConfig> {
        self.numbers.iter().find(|n| n.id == id)
    }

    pub fn window_open(&self, number_id: &str, wa_id: &str, now: Instant) -> bool {
        self.users
            .get(wa_id)
            .and_then(|u| u.last_inbound.get(number_id))
            .is_some_and(|t| now.duration_since(*t) < DAY)
    }

    /// Takes one pair-rate token; false when the bucket is empty.
    pub fn take_pair_token(
        &mut self,
        number_id: &str,
        wa_id: &str,
        now: Instant,
        interval_ms: u64,
        burst: u32,
    ) -> bool {
        let cap = f64::from(burst.max(1));
        let b = self
            .buckets
            .entry((number_id.to_owned(), wa_id.to_owned()))
            .or_insert(Bucket {
                tokens: cap,
                at: now,
            });
        let refill = now.duration_since(b.at).as_millis() as f64 / interval_ms.max(1) as f64;
        b.tokens = (b.tokens + refill).min(cap);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Counts a user against the number's messaging tier; false when the
    /// user is new and the tier is full.
    pub fn admit_tier(&mut self, number_id: &str, wa_id: &str, now: Instant, tier: u32) -> bool {
        let w = self.tier_users.entry(number_id.to_owned()).or_default();
        // Expire in insertion order: O(1) amortised per send.
        while let Some((t, _)) = w.order.front() {
            if now.duration_since(*t) < DAY {
                break;
            }
            if let Some((_, user)) = w.order.pop_front() {
                w.users.remove(&user);
            }
        }
        if w.users.contains(wa_id) {
            return true;
        }
        if w.users.len() >= tier as usize {
            return false;
        }
        w.users.insert(wa_id.to_owned());
        w.order.push_back((now, wa_id.to_owned()));
        true
    }

    pub fn record(&mut self, mut rec: SendRecord, max_log: usize) {
        self.seq += 1;
        rec.seq = self.seq;
        if rec.outcome == "accepted" || rec.outcome == "response_lost" {
            *self.per_recipient.entry(rec.to.clone()).or_default() += 1;
        }
        if self.log.len() >= max_log {
            self.log.pop_front();
        }
        self.log.push_back(rec);
    }

    pub fn conversation_id(&mut self, number_id: &str, wa_id: &str) -> String {
        let key = (number_id.to_owned(), wa_id.to_owned());
        if let Some(id) = self.conversations.get(&key) {
            return id.clone();
        }
        let id: String = (0..16)
            .map(|_| format!("{:02x}", self.rng.random::<u8>()))
            .collect();
        self.conversations.insert(key, id.clone());
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_variables() {
        assert_eq!(count_variables("Hi {{1}}, order {{2}} for {{1}}"), 2);
        assert_eq!(count_variables("Hi {{name}}"), 1);
        assert_eq!(count_variables("none"), 0);
        assert_eq!(variable_names("{{b}} {{a}} {{b}}"), ["b", "a"]);
        assert_eq!(
            parameter_format_of(&variable_names("Hi {{name}}")),
            ParameterFormat::Named
        );
        assert_eq!(
            parameter_format_of(&variable_names("Hi {{1}}")),
            ParameterFormat::Positional
        );
    }

    #[test]
    fn pair_bucket_allows_burst_then_blocks() {
        let mut s = Inner::new(&SandboxConfig::default());
        let now = Instant::now();
        for _ in 0..3 {
            assert!(s.take_pair_token("n", "u", now, 6000, 3));
        }
        assert!(!s.take_pair_token("n", "u", now, 6000, 3));
        assert!(s.take_pair_token("n", "u", now + Duration::from_secs(6), 6000, 3));
    }

    #[test]
    fn same_seed_same_ids() {
        let mut a = Inner::new(&SandboxConfig::default());
        let mut b = Inner::new(&SandboxConfig::default());
        assert_eq!(a.wamid("16505551234"), b.wamid("16505551234"));
        assert_eq!(a.numeric_id(), b.numeric_id());
    }
}
