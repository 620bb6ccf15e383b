//! The sandbox's configuration: business numbers, users, templates, limits,
//! webhook timing and faults. Read from TOML; every field has a default, and
//! an empty file gives one ready-to-use number.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The whole sandbox configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Seeds every random choice (ids, faults, review outcomes).
    pub seed: u64,
    /// Bearer token of the `/_sandbox/` control API.
    pub control_token: String,
    pub numbers: Vec<NumberConfig>,
    pub templates: Vec<TemplateConfig>,
    /// Per-user setup, keyed by wa_id (digits).
    pub users: BTreeMap<String, UserConfig>,
    pub limits: LimitsConfig,
    pub webhooks: WebhookConfig,
    pub faults: FaultConfig,
    /// Which generation of the Cloud API to imitate.
    pub api: ApiConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 1,
            control_token: "sandbox-control-token".into(),
            numbers: vec![NumberConfig::default()],
            templates: default_templates(),
            users: default_users(),
            limits: LimitsConfig::default(),
            webhooks: WebhookConfig::default(),
            faults: FaultConfig::default(),
            api: ApiConfig::default(),
        }
    }
}

impl SandboxConfig {
    /// Reads a TOML file; missing fields take their defaults.
    pub fn from_toml_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("sandbox config {}: {e}", path.display()))?;
        Self::from_toml(&text)
            .map_err(|e| anyhow::anyhow!("sandbox config {}: {e}", path.display()))
    }

    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Fails fast on settings that would make the sandbox misbehave.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.numbers.is_empty(), "numbers: at least one is needed");
        anyhow::ensure!(
            !self.control_token.is_empty(),
            "control_token: must not be empty"
        );
        let mut ids = std::collections::HashSet::new();
        for n in &self.numbers {
            anyhow::ensure!(ids.insert(&n.id), "numbers.id: {} appears twice", n.id);
            anyhow::ensure!(n.throughput > 0, "numbers.throughput: must be positive");
            anyhow::ensure!(
                !n.access_token.is_empty(),
                "numbers.access_token: must not be empty"
            );
        }
        self.faults.validate()
    }
}

/// One business phone number.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NumberConfig {
    pub id: String,
    pub waba_id: String,
    /// Digits only, as in webhook metadata.
    pub display_number: String,
    pub verified_name: String,
    pub access_token: String,
    pub app_secret: String,
    /// Where webhooks go; none means webhooks are not sent.
    pub webhook_url: Option<String>,
    pub verify_token: String,
    /// Messages per second (sliding 1 s window).
    pub throughput: u32,
    /// Unique users outside a service window per rolling 24 h.
    pub messaging_tier: u32,
}

impl Default for NumberConfig {
    fn default() -> Self {
        Self {
            id: "106540352242922".into(),
            waba_id: "102290129340398".into(),
            display_number: "15550783881".into(),
            verified_name: "Waypost Sandbox".into(),
            access_token: "EAAsandbox0token".into(),
            app_secret: "sandbox-app-secret".into(),
            webhook_url: None,
            verify_token: "sandbox-verify-token".into(),
            throughput: 80,
            messaging_tier: 250,
        }
    }
}

/// A template present at start, on every WABA.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    pub name: String,
    #[serde(default = "default_language")]
    pub language: String,
    #[serde(default = "default_category")]
    pub category: String,
    /// APPROVED, PENDING, REJECTED, PAUSED or DISABLED.
    #[serde(default = "default_status")]
    pub status: String,
    /// Body text with `{{1}}` (positional) or `{{name}}` (named) variables.
    #[serde(default)]
    pub body: String,
    /// Example values for the variables, in order; made up when missing.
    #[serde(default)]
    pub examples: Vec<String>,
}

fn default_language() -> String {
    "en_US".into()
}
fn default_category() -> String {
    "UTILITY".into()
}
fn default_status() -> String {
    "APPROVED".into()
}

fn default_templates() -> Vec<TemplateConfig> {
    let t = |name: &str, category: &str, status: &str, body: &str| TemplateConfig {
        name: name.into(),
        language: default_language(),
        category: category.into(),
        status: status.into(),
        body: body.into(),
        examples: ["Ana", "A-1042"]
            .into_iter()
            .take(crate::state::count_variables(body))
            .map(String::from)
            .collect(),
    };
    vec![
        t("hello_world", "UTILITY", "APPROVED", "Hello World"),
        t(
            "order_update",
            "UTILITY",
            "APPROVED",
            "Hi {{1}}, order {{2}} has shipped.",
        ),
        t(
            "summer_sale",
            "MARKETING",
            "APPROVED",
            "Hi {{1}}, our sale is on!",
        ),
        t("paused_promo", "MARKETING", "PAUSED", "Deal of the day"),
        t(
            "disabled_promo",
            "MARKETING",
            "DISABLED",
            "Deal of the year",
        ),
        t(
            "appointment_reminder",
            "UTILITY",
            "APPROVED",
            "Hi {{first_name}}, see you on {{day}}.",
        ),
        t(
            "login_code",
            "AUTHENTICATION",
            "APPROVED",
            "{{1}} is your verification code.",
        ),
    ]
}

/// Two seeded username users: one whose phone is withheld from webhooks,
/// one whose phone is still shared.
fn default_users() -> BTreeMap<String, UserConfig> {
    let user = |name: &str, username: &str, phone_withheld: bool| UserConfig {
        name: Some(name.into()),
        username: Some(username.into()),
        phone_withheld,
        ..UserConfig::default()
    };
    BTreeMap::from([
        ("15550199001".into(), user("Ana Lima", "ana.lima", true)),
        ("15550199002".into(), user("Ben Ito", "benito", false)),
    ])
}

/// The shape of the API the sandbox speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiShape {
    /// 2026: BSUIDs on every contact and status, usernames, withheld phones,
    /// per-message pricing with `type`, no `conversation` (v24+).
    #[default]
    Current,
    /// Before BSUIDs and per-message pricing: phones only, CBP pricing and a
    /// conversation on every status.
    Legacy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub shape: ApiShape,
    /// The Graph version the app's webhooks are set to (current shape):
    /// below 24, statuses that carry pricing also carry a per-message `conversation`.
    pub webhook_version: u32,
    /// Answer 131026, 131047, 131049, 131050 and 131053 synchronously with
    /// HTTP 400, as the sandbox used to, instead of a `failed` status webhook.
    pub sync_errors: bool,
    /// The business is enrolled in parent BSUIDs (`CC.ENT.…`).
    pub parent_user_ids: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            shape: ApiShape::Current,
            webhook_version: 26,
            sync_errors: false,
            parent_user_ids: false,
        }
    }
}

/// How a simulated user reacts to messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// sent → delivered → read.
    #[default]
    Reads,
    /// sent → delivered.
    DeliversOnly,
    /// sent → failed (131026).
    Unreachable,
    /// sent → delivered → read, then a text reply (opening the window).
    Replies,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserConfig {
    pub behaviour: Behaviour,
    /// Sends to this user fail with 131026.
    pub not_on_whatsapp: bool,
    /// Marketing templates to this user fail with 131050.
    pub stopped_marketing: bool,
    /// Marketing templates to this user fail with 131049 (ecosystem limit).
    pub marketing_limited: bool,
    pub name: Option<String>,
    /// A WhatsApp username (3–35 of `a-z0-9._`), shown in `profile.username`.
    pub username: Option<String>,
    /// The user adopted a username and is not in the contact book: webhooks
    /// omit the phone unless this number sent to it in the last 30 days.
    pub phone_withheld: bool,
    /// A fixed BSUID; by default one is derived from the seed and the phone.
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Pair rate: one message per this many milliseconds per recipient.
    pub pair_interval_ms: u64,
    /// Pair rate burst (token bucket capacity).
    pub pair_burst: u32,
    /// HTTP status for 130429 (Meta's table says 400; some say 429).
    pub throttle_status: u16,
    /// Largest number of stored media files.
    pub max_media: usize,
    /// Sends kept in the log (counters keep counting past it).
    pub max_log: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            pair_interval_ms: 6_000,
            pair_burst: 45,
            throttle_status: 400,
            max_media: 1_000,
            max_log: 100_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Send no webhooks at all (benchmarks).
    pub enabled: bool,
    /// Delay between sent, delivered and read.
    pub status_step_ms: u64,
    /// Delay before a created template is approved or rejected.
    pub template_review_ms: u64,
    /// Share of created templates that get rejected (seeded).
    pub template_reject_rate: f64,
    /// Delivery attempts per webhook before it is given up.
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt.
    pub retry_base_ms: u64,
    /// The longest delay between two attempts.
    pub retry_max_ms: u64,
    /// Pending webhooks; more are counted as dropped.
    pub queue_capacity: usize,
    pub timeout_ms: u64,
    /// A PEM certificate trusted for HTTPS webhook URLs besides the public
    /// roots (a demo server's self-signed certificate).
    pub trusted_certificate_pem: Option<String>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            status_step_ms: 20,
            template_review_ms: 200,
            template_reject_rate: 0.0,
            max_attempts: 5,
            retry_base_ms: 100,
            retry_max_ms: 3_600_000,
            queue_capacity: 10_000,
            timeout_ms: 5_000,
            trusted_certificate_pem: None,
        }
    }
}

/// Fault rates, each 0–1, decided with the seeded RNG.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Answer 500 with code 131000 (nothing recorded as sent).
    pub error_5xx: f64,
    /// Accept the connection, then never answer.
    pub timeout: f64,
    /// Add up to `latency_ms` before answering.
    pub latency: f64,
    pub latency_ms: u64,
    /// Start a burst of `burst_len` 429/130429 answers.
    pub burst_429: f64,
    pub burst_len: u32,
    /// Record the message as sent, then break the response.
    pub response_lost: f64,
    /// Webhook faults.
    pub webhook_drop: f64,
    pub webhook_duplicate: f64,
    pub webhook_delay: f64,
    pub webhook_delay_ms: u64,
    pub webhook_reorder: f64,
    /// Media downloads answer as for a download URL past its 5 minutes.
    pub media_url_expired: f64,
    /// Media retrieval answers as for an id past its lifetime (unknown object).
    pub media_gone: f64,
    /// Downloads return bytes whose sha256 differs from what retrieval reported.
    pub media_hash_mismatch: f64,
}

impl FaultConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, v) in [
            ("error_5xx", self.error_5xx),
            ("timeout", self.timeout),
            ("latency", self.latency),
            ("burst_429", self.burst_429),
            ("response_lost", self.response_lost),
            ("webhook_drop", self.webhook_drop),
            ("webhook_duplicate", self.webhook_duplicate),
            ("webhook_delay", self.webhook_delay),
            ("webhook_reorder", self.webhook_reorder),
            ("media_url_expired", self.media_url_expired),
            ("media_gone", self.media_gone),
            ("media_hash_mismatch", self.media_hash_mismatch),
        ] {
            anyhow::ensure!(
                (0.0..=1.0).contains(&v),
                "faults.{name}: must be within 0..=1"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_toml_gives_one_number() {
        let c = SandboxConfig::from_toml("").unwrap();
        assert_eq!(c.numbers.len(), 1);
        assert_eq!(c.numbers[0].throughput, 80);
        assert_eq!(c.numbers[0].messaging_tier, 250);
    }

    #[test]
    fn readme_example_parses() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("A `sandbox.toml`")
            .expect("README has the example");
        let block = &readme[start..];
        let block = &block[block.find("```toml").unwrap() + 7..];
        let block = &block[..block.find("```").unwrap()];
        let c = SandboxConfig::from_toml(block).unwrap();
        assert_eq!(c.seed, 42);
        assert_eq!(c.users["15551234567"].behaviour, Behaviour::Replies);
        assert_eq!(c.api.shape, ApiShape::Current);
        assert!(c.api.parent_user_ids);
        assert_eq!(c.users["15551234567"].username.as_deref(), Some("ana.lima"));
        assert_eq!(c.templates.len(), 1);
    }

    #[test]
    fn rejects_duplicate_number_ids() {
        let e = SandboxConfig::from_toml("[[numbers]]\n[[numbers]]\n").unwrap_err();
        assert!(e.to_string().contains("numbers.id"), "{e}");
    }

    #[test]
    fn rejects_bad_fault_rate() {
        let e = SandboxConfig::from_toml("[faults]\nerror_5xx = 1.5").unwrap_err();
        assert!(e.to_string().contains("error_5xx"));
    }
}
