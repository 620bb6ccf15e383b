//! Configuration: defaults → `waypost.toml` (or the file named by `--config` /
//! `WAYPOST_CONFIG`) → `WAYPOST_*` environment variables → command-line flags,
//! extracted into one typed struct. Secrets stay in `SecretString`s and print
//! as `[redacted]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

mod billing;
mod mail;

/// Every setting, with its default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// A separate address serving only `/metrics`, without a token (keep it
    /// private); on `listen`, `/metrics` needs an operator token.
    pub metrics_listen: Option<SocketAddr>,
    /// Trust and safety signal counting and detectors (`WAYPOST_DETECTION`).
    /// Suspensions are enforced either way.
    pub detection: bool,
    /// Directory for the default SQLite database and master key file.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://…`; defaults to `sqlite://<data_dir>/waypost.db`.
    pub database_url: Option<SecretString>,
    /// Largest connection pool (PostgreSQL; SQLite read pool).
    pub database_max_connections: u32,
    /// Base64 of 32 bytes; when unset the key file is used (created on first start).
    pub master_key: Option<SecretString>,
    /// Defaults to `<data_dir>/master.key`.
    pub master_key_file: Option<PathBuf>,
    /// Largest accepted request body in bytes.
    pub body_limit_bytes: usize,
    /// Longest a request may run before it is answered with 503.
    pub request_timeout_secs: u64,
    /// The same for media uploads and downloads (files up to 100 MB).
    pub media_timeout_secs: u64,
    /// How long SIGTERM waits for in-flight requests and worker steps.
    pub shutdown_grace_secs: u64,
    /// A client must send a complete request head within this long, counted from
    /// when the server starts waiting for it: a new connection, or the end of the
    /// previous response on a kept-alive one (so it is also the idle keep-alive timeout).
    pub header_read_timeout_secs: u64,
    /// Open connections this node serves at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Open connections one client address may hold; more are answered 503 and
    /// closed. Not applied with `trust_proxy_headers` (every peer is the proxy).
    pub max_connections_per_ip: usize,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The lowest TLS version served: `1.2` (default) or `1.3`.
    #[serde(deserialize_with = "version_text")]
    pub tls_min_version: String,
    /// Trust `X-Forwarded-For` / `X-Forwarded-Proto` from a reverse proxy.
    pub trust_proxy_headers: bool,
    /// `json` (default) or `pretty`.
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `waypost=debug,info`.
    pub log_level: String,
    /// How often workers look for a newer data key and re-encrypt old rows.
    pub key_rotation_interval_secs: u64,
    /// Rows re-encrypted per batch.
    pub reencryption_batch_size: u32,
    /// Public base URL for links Waypost prints (setup, invitations); defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// Sessions end after this long without a request.
    pub session_idle_timeout_secs: u64,
    /// Sessions end this long after login, however active.
    pub session_absolute_timeout_secs: u64,
    /// Sensitive actions need a login or re-authentication this recent.
    pub step_up_window_secs: u64,
    /// Consecutive failed logins that lock an account.
    pub lockout_threshold: u32,
    /// First lock length; doubles with each further lockout.
    pub lockout_base_secs: u64,
    pub lockout_max_secs: u64,
    /// Argon2id memory cost in KiB (OWASP: 19456 with 2 iterations, 1 lane).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub rate_limit_api_key_per_minute: u32,
    pub rate_limit_user_per_minute: u32,
    pub rate_limit_ip_per_minute: u32,
    pub rate_limit_login_per_ip_per_minute: u32,
    /// How often the head of every grown audit chain is signed.
    pub audit_checkpoint_interval_secs: u64,
    /// The age public key (`age1…`) backups are encrypted to.
    pub backup_recipient: Option<String>,
    /// Directory scheduled backups are written to; unset: no scheduled backups.
    pub backup_dir: Option<PathBuf>,
    /// How often `serve` writes a backup to `backup_dir`.
    pub backup_interval_secs: u64,
    /// Days the daily backups in `backup_dir` are kept.
    pub backup_retention_days: u32,
    /// WebAuthn relying-party id: the host of the origin or a parent domain of it.
    /// Defaults to the public URL's host (`localhost` when that is an IP address).
    pub webauthn_rp_id: Option<String>,
    /// The origin browsers report for passkey ceremonies; defaults to the public
    /// URL (with `localhost` in place of an IP address).
    pub webauthn_origin: Option<String>,
    /// Directory whose shield list files (`brands.tsv`, `shorteners.txt`, …) replace the
    /// embedded ones; read once at start.
    pub shield_lists_dir: Option<PathBuf>,
    /// Operator allowlist (one domain or URL a line); reloaded when it changes.
    pub shield_allowlist_file: Option<PathBuf>,
    /// Operator blocklist (one domain or URL a line); reloaded when it changes.
    pub shield_blocklist_file: Option<PathBuf>,
    /// Days scan usage records are kept.
    pub shield_usage_retention_days: u32,
    /// Whether this node runs the dispatcher (sends queued messages).
    pub dispatch_enabled: bool,
    /// Whether this node feeds running campaigns to the outbox.
    pub campaigns_enabled: bool,
    /// Most of one campaign's messages waiting in the outbox at once: the
    /// sender stays this far ahead of the dispatcher, no further, so a pause
    /// or an opt-out reaches recipients not yet queued.
    pub campaign_window: u32,
    /// How often the campaign sender looks for work.
    pub campaign_poll_ms: u64,
    /// Lease on a campaign being fed (a dead node's campaigns move after it).
    pub campaign_lease_secs: u64,
    /// A campaign pauses itself when this share of its sent recipients opted
    /// out or blocked marketing messages (once `campaign_opt_out_min_sent` were sent).
    pub campaign_opt_out_threshold: f64,
    pub campaign_opt_out_min_sent: u32,
    /// First retry delay; doubles per attempt, with jitter, up to `dispatch_retry_max_secs`.
    pub dispatch_retry_base_ms: u64,
    pub dispatch_retry_max_secs: u64,
    /// Outbox rows claimed per batch (also capped by half a second of the channel's throughput).
    pub dispatch_batch_size: u32,
    /// How often an idle dispatcher looks for due rows.
    pub dispatch_poll_ms: u64,
    /// Lease on claimed outbox rows and on channel rate limiters, renewed every
    /// third of it: a node that dies without a successor holds them this long.
    pub dispatch_lease_secs: u64,
    /// A stable name for this node (PostgreSQL): restarted under the same name,
    /// it takes its dead predecessor's leases at once. Unique among live nodes
    /// (a second process with a name in use waits until the first is gone).
    pub node_id: Option<String>,
    /// How long an in-doubt send (timeout, lost response, crash) waits for a
    /// status webhook naming it before it is sent again.
    pub dispatch_reconcile_secs: u64,
    /// Timeout of one provider call.
    pub dispatch_request_timeout_secs: u64,
    /// Sends in flight per channel.
    pub dispatch_max_in_flight: u32,
    /// Consecutive transient failures that open a channel's circuit breaker,
    /// and how long it stays open before a probe.
    pub dispatch_breaker_failures: u32,
    pub dispatch_breaker_cooldown_secs: u64,
    /// Per-recipient pair limit: burst and one more per interval.
    pub dispatch_pair_burst: u32,
    pub dispatch_pair_interval_ms: u64,
    /// Added to the 1 s throughput window. Sends hold their place until a window
    /// after they finish, so network jitter is covered; this covers clocks that round.
    pub dispatch_rate_margin_ms: u64,
    /// Inbound texts (case-insensitive, whole message) that opt a contact out
    /// of every category, and back in.
    pub opt_out_keywords: Vec<String>,
    pub opt_in_keywords: Vec<String>,
    /// Largest provider webhook body.
    pub inbound_body_limit_bytes: usize,
    /// How long the dispatcher keeps retrying a message before it fails (seconds).
    pub message_deadline_secs: u64,
    /// Built-in prohibited-content categories checked on new templates
    /// (`weapons`, `drugs`, `gambling`, `adult`, `tobacco`, `counterfeit`, `hate`,
    /// `violence`, `illegal`, `misinformation`, and `spam` by the shield's verdict); empty: none.
    pub template_prohibited_categories: Vec<String>,
    /// Operator terms per category, added to the built-in lists (a new category name adds a category).
    pub template_prohibited_terms: std::collections::BTreeMap<String, Vec<String>>,
    /// How often template statuses are synced from the provider.
    pub template_sync_interval_secs: u64,
    /// Allow customer webhook endpoints with plain `http://` URLs.
    pub webhook_allow_http: bool,
    /// Allow webhook targets on loopback, private, link-local and other internal
    /// addresses (self-hosted setups, tests). Cloud metadata addresses stay refused.
    pub webhook_allow_private_targets: bool,
    /// Allow channel `base_url`s (the provider a channel's token is sent to) on
    /// loopback, private and other internal addresses: the sandbox in a demo or
    /// tests. Cloud metadata addresses stay refused.
    pub channel_allow_private_targets: bool,
    /// A delivery attempt that has no 2xx answer within this long has failed.
    pub webhook_timeout_secs: u64,
    /// Delays before each retry of a failed delivery, in seconds.
    pub webhook_retry_schedule_secs: Vec<u64>,
    /// Up to this percentage is added at random to each retry delay.
    pub webhook_retry_jitter_percent: u32,
    /// An endpoint whose attempts all fail for this long is disabled.
    pub webhook_disable_after_secs: u64,
    /// Deliveries in flight to one endpoint at a time (across nodes).
    pub webhook_endpoint_concurrency: u32,
    /// Deliveries one node has in flight at most, across endpoints.
    pub webhook_batch_size: u32,
    /// How often an idle deliverer looks for new events and due retries.
    pub webhook_poll_interval_ms: u64,
    /// Least time between two replays of one endpoint.
    pub webhook_replay_interval_secs: u64,
    /// Seconds inbound content stays on its event after every endpoint has it,
    /// so a live stream that reconnects within this time still gets it.
    pub event_content_hold_secs: u64,
    /// Days delivery attempts are kept.
    pub webhook_history_retention_days: u32,
    /// Seconds between retention purges.
    pub retention_interval_secs: u64,
    /// Days message metadata (and status history) is kept.
    pub message_metadata_retention_days: u32,
    /// Days inbound status records for unknown messages are kept.
    pub inbound_record_retention_days: u32,
    /// Days operational records (delivered customer events, old sessions) are kept.
    pub operational_retention_days: u32,
    /// Days audit events are kept (at least 365).
    pub audit_retention_days: u32,
    /// Open live event streams (`GET /v1/events/stream`) per workspace and node.
    pub event_stream_max_per_workspace: u32,
    /// Comment lines sent on an idle stream so proxies keep it open.
    pub event_stream_heartbeat_ms: u64,
    /// How often the stream tail reads new events (every node, all workspaces, one query).
    pub event_stream_poll_ms: u64,
    /// How often an open stream checks that its key or session is still valid.
    pub event_stream_recheck_ms: u64,
    /// How long newer events wait for an older one still being committed by another transaction.
    pub event_stream_gap_grace_ms: u64,
    /// `smtps://user:pass@host:465` (implicit TLS), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS), or `smtp://host:25` (unencrypted: a relay on this machine
    /// only); unset: no mail is sent.
    pub smtp_url: Option<SecretString>,
    /// The sender, `Waypost <noreply@example.com>`; required with `smtp_url`.
    pub mail_from: Option<String>,
    /// First retry delay of a mail the SMTP server did not take (doubling, capped at an hour).
    pub mail_retry_base_ms: u64,
    /// How often the mail worker looks for due mail.
    pub mail_poll_ms: u64,
    /// Days the delivery record of a sent or abandoned mail (no content) is kept.
    pub mail_retention_days: u32,
    /// How often the automation worker looks for inbound messages to handle.
    pub automation_poll_ms: u64,
    /// Seconds after an automated reply during which no other rule answers in
    /// the same conversation (no loops, no repeats).
    pub automation_cooldown_secs: u64,
    /// Lets workspaces point the assistant at internal addresses (a local
    /// Ollama or llama.cpp server); off, only public HTTPS endpoints.
    pub assistant_allow_private_targets: bool,
    /// Stripe secret API key (`sk_…`); unset: Stripe billing is off.
    pub stripe_secret_key: Option<SecretString>,
    /// The signing secret (`whsec_…`) of the endpoint `POST /stripe/webhook`.
    pub stripe_webhook_secret: Option<SecretString>,
    /// Stripe's API base URL (tests point it at a fake).
    pub stripe_api_base: String,
    /// Days a workspace whose payment failed keeps working before it becomes read-only.
    pub stripe_grace_days: u32,
    /// Usage is reported as meter events named `<prefix>_<category>` (billable messages).
    pub stripe_meter_prefix: String,
    /// How often usage reports and ended grace periods are looked for.
    pub stripe_poll_secs: u64,
    /// How long a request to Stripe may take.
    pub stripe_timeout_ms: u64,
    /// Password reset requests per address per hour.
    pub password_reset_per_address_per_hour: u32,
    /// Password reset requests per client network per hour.
    pub password_reset_per_ip_per_hour: u32,
    /// Days between an account holder's deletion request and the deletion.
    pub account_deletion_grace_days: u32,
    /// Days between an owner's request to delete a workspace and its purge.
    pub workspace_deletion_grace_days: u32,
    /// Days a new owner or admin may work without a second factor before the
    /// workspace refuses them (unless the workspace relaxes the rule).
    pub admin_mfa_grace_days: u32,
}

/// Default opt-out keywords: Meta's and carriers' usual English set and common translations.
pub const DEFAULT_OPT_OUT_KEYWORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "OPT OUT",
    "ALTO",
    "BAJA",
    "PARAR",
    "PARE",
    "SAIR",
    "CANCELAR",
    "ARRET",
    "ARRÊT",
    "DESABONNER",
    "STOPP",
    "ABMELDEN",
    "ANNULLA",
    "FERMA",
    "DISISCRIVITI",
    "STOPPEN",
    "AFMELDEN",
];
/// Default opt-in keywords.
pub const DEFAULT_OPT_IN_KEYWORDS: &[&str] = &["START", "UNSTOP", "SUBSCRIBE"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_listen: None,
            detection: true,
            data_dir: PathBuf::from("waypost-data"),
            database_url: None,
            database_max_connections: 10,
            master_key: None,
            master_key_file: None,
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            media_timeout_secs: 600,
            shutdown_grace_secs: 30,
            header_read_timeout_secs: 10,
            max_connections: 1024,
            max_connections_per_ip: 128,
            tls_cert: None,
            tls_key: None,
            tls_min_version: "1.2".into(),
            trust_proxy_headers: false,
            log_format: LogFormat::Json,
            log_level: "info".into(),
            key_rotation_interval_secs: 30,
            reencryption_batch_size: 500,
            public_url: None,
            session_idle_timeout_secs: 30 * 60,
            session_absolute_timeout_secs: 12 * 3600,
            step_up_window_secs: 5 * 60,
            lockout_threshold: 5,
            lockout_base_secs: 15 * 60,
            lockout_max_secs: 24 * 3600,
            argon2_memory_kib: 19456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            rate_limit_api_key_per_minute: 600,
            rate_limit_user_per_minute: 600,
            rate_limit_ip_per_minute: 1200,
            rate_limit_login_per_ip_per_minute: 20,
            audit_checkpoint_interval_secs: 300,
            backup_recipient: None,
            backup_dir: None,
            backup_interval_secs: 3600,
            backup_retention_days: 90,
            webauthn_rp_id: None,
            webauthn_origin: None,
            shield_lists_dir: None,
            shield_allowlist_file: None,
            shield_blocklist_file: None,
            shield_usage_retention_days: 90,
            dispatch_enabled: true,
            campaigns_enabled: true,
            campaign_window: 2000,
            campaign_poll_ms: 200,
            campaign_lease_secs: 15,
            campaign_opt_out_threshold: 0.05,
            campaign_opt_out_min_sent: 200,
            dispatch_retry_base_ms: 1000,
            dispatch_retry_max_secs: 600,
            dispatch_batch_size: 200,
            dispatch_poll_ms: 100,
            dispatch_lease_secs: 10,
            node_id: None,
            dispatch_reconcile_secs: 300,
            dispatch_request_timeout_secs: 30,
            dispatch_max_in_flight: 128,
            dispatch_breaker_failures: 10,
            dispatch_breaker_cooldown_secs: 30,
            dispatch_pair_burst: 45,
            dispatch_pair_interval_ms: 6000,
            dispatch_rate_margin_ms: 25,
            opt_out_keywords: DEFAULT_OPT_OUT_KEYWORDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            opt_in_keywords: DEFAULT_OPT_IN_KEYWORDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            inbound_body_limit_bytes: 1024 * 1024,
            message_deadline_secs: 24 * 3600,
            template_prohibited_categories: waypost_core::template::BUILTIN_PROHIBITED
                .iter()
                .map(|(name, _)| (*name).to_owned())
                .chain([waypost_core::template::SPAM_CATEGORY.to_owned()])
                .collect(),
            template_prohibited_terms: Default::default(),
            template_sync_interval_secs: 600,
            webhook_allow_http: false,
            webhook_allow_private_targets: false,
            channel_allow_private_targets: false,
            webhook_timeout_secs: 15,
            webhook_retry_schedule_secs: vec![5, 300, 1800, 7200, 18000, 36000, 36000],
            webhook_retry_jitter_percent: 10,
            webhook_disable_after_secs: 5 * 86400,
            webhook_endpoint_concurrency: 64,
            webhook_batch_size: 256,
            webhook_poll_interval_ms: 250,
            webhook_replay_interval_secs: 60,
            event_content_hold_secs: 60,
            webhook_history_retention_days: 90,
            retention_interval_secs: 3600,
            message_metadata_retention_days: 90,
            inbound_record_retention_days: 90,
            operational_retention_days: 90,
            audit_retention_days: 365,
            event_stream_max_per_workspace: 50,
            event_stream_heartbeat_ms: 15_000,
            event_stream_poll_ms: 25,
            event_stream_recheck_ms: 5_000,
            event_stream_gap_grace_ms: 500,
            smtp_url: None,
            mail_from: None,
            mail_retry_base_ms: 10_000,
            mail_poll_ms: 1000,
            mail_retention_days: 30,
            automation_poll_ms: 500,
            automation_cooldown_secs: 300,
            assistant_allow_private_targets: false,
            stripe_secret_key: None,
            stripe_webhook_secret: None,
            stripe_api_base: "https://api.stripe.com".into(),
            stripe_grace_days: 7,
            stripe_meter_prefix: "waypost".into(),
            stripe_poll_secs: 60,
            stripe_timeout_ms: 10_000,
            password_reset_per_address_per_hour: 3,
            password_reset_per_ip_per_hour: 20,
            account_deletion_grace_days: 14,
            workspace_deletion_grace_days: 14,
            admin_mfa_grace_days: 7,
        }
    }
}

/// A configuration problem, naming the setting.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Command-line values that override every other source.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Config {
    /// Loads all sources; the file named by `--config` or `WAYPOST_CONFIG` must exist,
    /// `./waypost.toml` is read only when present.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        let named = overrides
            .config_file
            .clone()
            .or_else(|| std::env::var_os("WAYPOST_CONFIG").map(PathBuf::from));
        let file = match named {
            Some(path) if !path.is_file() => {
                return Err(ConfigError(format!(
                    "WAYPOST_CONFIG / --config: configuration file {} not found",
                    path.display()
                )));
            }
            Some(path) => Some(path),
            None => Some(PathBuf::from("waypost.toml")).filter(|p| p.is_file()),
        };
        let mut figment = Figment::new();
        if let Some(path) = &file {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed("WAYPOST_").ignore(&[
            "config",
            "test_postgres_url",
            "test_smtp_python",
        ]));
        if let Some(listen) = overrides.listen {
            figment = figment.merge(Serialized::default("listen", listen));
        }
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(Serialized::default("data_dir", dir));
        }
        if let Some(cert) = &overrides.tls_cert {
            figment = figment.merge(Serialized::default("tls_cert", cert));
        }
        if let Some(key) = &overrides.tls_key {
            figment = figment.merge(Serialized::default("tls_key", key));
        }
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError(describe_figment_error(e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |s: &str| Err(ConfigError(s.to_owned()));
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return fail("WAYPOST_TLS_CERT / WAYPOST_TLS_KEY: set both or neither");
        }
        if !["1.2", "1.3"].contains(&self.tls_min_version.as_str()) {
            return fail("WAYPOST_TLS_MIN_VERSION: must be 1.2 or 1.3");
        }
        if self.body_limit_bytes == 0 {
            return fail("WAYPOST_BODY_LIMIT_BYTES: must be greater than 0");
        }
        if !(1..=3600).contains(&self.header_read_timeout_secs) {
            return fail("WAYPOST_HEADER_READ_TIMEOUT_SECS: must be 1 to 3600");
        }
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            return fail(
                "WAYPOST_MAX_CONNECTIONS / WAYPOST_MAX_CONNECTIONS_PER_IP: must be greater than 0",
            );
        }
        if self.database_max_connections == 0 {
            return fail("WAYPOST_DATABASE_MAX_CONNECTIONS: must be greater than 0");
        }
        for (value, name) in [
            (
                self.rate_limit_api_key_per_minute,
                "WAYPOST_RATE_LIMIT_API_KEY_PER_MINUTE",
            ),
            (
                self.rate_limit_user_per_minute,
                "WAYPOST_RATE_LIMIT_USER_PER_MINUTE",
            ),
            (
                self.rate_limit_ip_per_minute,
                "WAYPOST_RATE_LIMIT_IP_PER_MINUTE",
            ),
            (
                self.rate_limit_login_per_ip_per_minute,
                "WAYPOST_RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE",
            ),
            (self.lockout_threshold, "WAYPOST_LOCKOUT_THRESHOLD"),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{name}: must be greater than 0")));
            }
        }
        if let Some(url) = &self.public_url
            && url::Url::parse(url).is_err()
        {
            return fail("WAYPOST_PUBLIC_URL: not a valid URL");
        }
        if let Some(id) = &self.node_id
            && (id.is_empty()
                || id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return fail("WAYPOST_NODE_ID: 1 to 64 letters, digits, '-', '_' or '.'");
        }
        if !(1..=3650).contains(&self.shield_usage_retention_days) {
            return fail("WAYPOST_SHIELD_USAGE_RETENTION_DAYS: must be 1 to 3650");
        }
        self.validate_backups()?;
        if self.dispatch_batch_size == 0
            || self.dispatch_max_in_flight == 0
            || self.dispatch_pair_burst == 0
            || self.dispatch_lease_secs == 0
        {
            return fail(
                "WAYPOST_DISPATCH_BATCH_SIZE / _MAX_IN_FLIGHT / _PAIR_BURST / _LEASE_SECS: must be greater than 0",
            );
        }
        if self.campaign_window == 0 || self.campaign_lease_secs == 0 || self.campaign_poll_ms == 0
        {
            return fail(
                "WAYPOST_CAMPAIGN_WINDOW / _LEASE_SECS / _POLL_MS: must be greater than 0",
            );
        }
        if !(0.0..=1.0).contains(&self.campaign_opt_out_threshold) {
            return fail("WAYPOST_CAMPAIGN_OPT_OUT_THRESHOLD: must be 0 to 1");
        }
        if self.inbound_body_limit_bytes == 0 {
            return fail("WAYPOST_INBOUND_BODY_LIMIT_BYTES: must be greater than 0");
        }
        self.validate_templates()?;
        self.validate_webhooks()?;
        if self.reencryption_batch_size == 0 {
            return fail("WAYPOST_REENCRYPTION_BATCH_SIZE: must be greater than 0");
        }
        waypost_store::Backend::from_url(self.database_url().expose_secret())
            .map_err(|e| ConfigError(format!("WAYPOST_DATABASE_URL: {e}")))?;
        self.webauthn()?;
        self.validate_mail()?;
        self.validate_billing()?;
        Ok(())
    }

    fn validate_templates(&self) -> Result<(), ConfigError> {
        for name in &self.template_prohibited_categories {
            if name != waypost_core::template::SPAM_CATEGORY
                && !waypost_core::template::BUILTIN_PROHIBITED
                    .iter()
                    .any(|(builtin, _)| builtin == name)
            {
                return Err(ConfigError(format!(
                    "WAYPOST_TEMPLATE_PROHIBITED_CATEGORIES: unknown category `{name}` (add its terms in template_prohibited_terms instead)"
                )));
            }
        }
        if self.template_sync_interval_secs == 0 {
            return Err(ConfigError(
                "WAYPOST_TEMPLATE_SYNC_INTERVAL_SECS: must be greater than 0".into(),
            ));
        }
        Ok(())
    }

    fn validate_webhooks(&self) -> Result<(), ConfigError> {
        let fail = |s: &str| Err(ConfigError(s.to_owned()));
        if !(1..=10_000).contains(&self.event_stream_max_per_workspace) {
            return fail("WAYPOST_EVENT_STREAM_MAX_PER_WORKSPACE: must be 1 to 10000");
        }
        if !(10..=3_600_000).contains(&self.event_stream_heartbeat_ms) {
            return fail("WAYPOST_EVENT_STREAM_HEARTBEAT_MS: must be 10 to 3600000");
        }
        if !(5..=10_000).contains(&self.event_stream_poll_ms) {
            return fail("WAYPOST_EVENT_STREAM_POLL_MS: must be 5 to 10000");
        }
        if !(10..=600_000).contains(&self.event_stream_recheck_ms) {
            return fail("WAYPOST_EVENT_STREAM_RECHECK_MS: must be 10 to 600000");
        }
        if self.event_stream_gap_grace_ms > 60_000 {
            return fail("WAYPOST_EVENT_STREAM_GAP_GRACE_MS: must be at most 60000");
        }
        if !(1..=300).contains(&self.webhook_timeout_secs) {
            return fail("WAYPOST_WEBHOOK_TIMEOUT_SECS: must be 1 to 300");
        }
        if self.webhook_retry_schedule_secs.len() > 20 {
            return fail("WAYPOST_WEBHOOK_RETRY_SCHEDULE_SECS: at most 20 retries");
        }
        if self
            .webhook_retry_schedule_secs
            .iter()
            .any(|s| *s > 7 * 86400)
        {
            return fail("WAYPOST_WEBHOOK_RETRY_SCHEDULE_SECS: each delay must be at most 7 days");
        }
        if self.webhook_retry_jitter_percent > 100 {
            return fail("WAYPOST_WEBHOOK_RETRY_JITTER_PERCENT: must be 0 to 100");
        }
        if self.webhook_disable_after_secs == 0 {
            return fail("WAYPOST_WEBHOOK_DISABLE_AFTER_SECS: must be greater than 0");
        }
        if !(1..=1000).contains(&self.webhook_endpoint_concurrency) {
            return fail("WAYPOST_WEBHOOK_ENDPOINT_CONCURRENCY: must be 1 to 1000");
        }
        if !(1..=5000).contains(&self.webhook_batch_size) {
            return fail("WAYPOST_WEBHOOK_BATCH_SIZE: must be 1 to 5000");
        }
        if !(1..=3650).contains(&self.webhook_history_retention_days) {
            return fail("WAYPOST_WEBHOOK_HISTORY_RETENTION_DAYS: must be 1 to 3650");
        }
        self.validate_retention()?;
        Ok(())
    }

    /// The prohibited-content lists new templates are checked against.
    /// Whether new templates the shield reads as spam are refused.
    pub fn template_spam_check(&self) -> bool {
        self.template_prohibited_categories
            .iter()
            .any(|c| c == waypost_core::template::SPAM_CATEGORY)
    }

    pub fn template_prohibited(&self) -> waypost_core::template::ProhibitedContent {
        let builtin = waypost_core::template::BUILTIN_PROHIBITED
            .iter()
            .filter(|(name, _)| {
                self.template_prohibited_categories
                    .iter()
                    .any(|c| c == name)
            })
            .map(|(name, terms)| {
                (
                    (*name).to_owned(),
                    terms.iter().map(|t| (*t).to_owned()).collect(),
                )
            });
        let operator = self
            .template_prohibited_terms
            .iter()
            .map(|(name, terms)| (name.clone(), terms.clone()));
        waypost_core::template::ProhibitedContent::new(builtin.chain(operator))
    }

    fn validate_retention(&self) -> Result<(), ConfigError> {
        let fail = |s: &str| Err(ConfigError(s.to_owned()));
        if !(1..=86_400).contains(&self.retention_interval_secs) {
            return fail("WAYPOST_RETENTION_INTERVAL_SECS: must be 1 to 86400");
        }
        for (days, name) in [
            (
                self.message_metadata_retention_days,
                "WAYPOST_MESSAGE_METADATA_RETENTION_DAYS",
            ),
            (
                self.inbound_record_retention_days,
                "WAYPOST_INBOUND_RECORD_RETENTION_DAYS",
            ),
            (
                self.operational_retention_days,
                "WAYPOST_OPERATIONAL_RETENTION_DAYS",
            ),
        ] {
            if !(1..=3650).contains(&days) {
                return Err(ConfigError(format!("{name}: must be 1 to 3650")));
            }
        }
        // The audit log is a promise of one year; it may be kept longer, not shorter.
        if !(365..=3650).contains(&self.audit_retention_days) {
            return fail("WAYPOST_AUDIT_RETENTION_DAYS: must be 365 to 3650");
        }
        Ok(())
    }

    fn validate_backups(&self) -> Result<(), ConfigError> {
        let fail = |s: &str| Err(ConfigError(s.to_owned()));
        if let Some(recipient) = &self.backup_recipient
            && recipient.trim().parse::<age::x25519::Recipient>().is_err()
        {
            return fail("WAYPOST_BACKUP_RECIPIENT: not an age public key (age1…)");
        }
        if self.backup_dir.is_some() && self.backup_recipient.is_none() {
            return fail(
                "WAYPOST_BACKUP_RECIPIENT: required when WAYPOST_BACKUP_DIR is set (backups are always encrypted)",
            );
        }
        if self.backup_interval_secs == 0 {
            return fail("WAYPOST_BACKUP_INTERVAL_SECS: must be greater than 0");
        }
        if !(1..=3650).contains(&self.backup_retention_days) {
            return fail("WAYPOST_BACKUP_RETENTION_DAYS: must be 1 to 3650");
        }
        Ok(())
    }

    /// The WebAuthn relying party, checked: the origin parses and the RP id is
    /// its host or a parent domain of it (WebAuthn allows no IP addresses).
    pub fn webauthn(&self) -> Result<(String, url::Url), ConfigError> {
        let origin = match &self.webauthn_origin {
            Some(raw) => url::Url::parse(raw).map_err(|e| {
                ConfigError(format!("WAYPOST_WEBAUTHN_ORIGIN: not a valid URL: {e}"))
            })?,
            None => {
                let mut url = url::Url::parse(&self.public_url())
                    .map_err(|_| ConfigError("WAYPOST_PUBLIC_URL: not a valid URL".into()))?;
                if url.domain().is_none() {
                    url.set_host(Some("localhost")).map_err(|e| {
                        ConfigError(format!("WAYPOST_WEBAUTHN_ORIGIN: {e}; set it explicitly"))
                    })?;
                }
                url
            }
        };
        let Some(host) = origin.domain().map(str::to_owned) else {
            return Err(ConfigError(
                "WAYPOST_WEBAUTHN_ORIGIN: must name a domain (WebAuthn does not work with IP addresses)"
                    .into(),
            ));
        };
        let rp_id = self.webauthn_rp_id.clone().unwrap_or_else(|| host.clone());
        if !(host == rp_id || host.ends_with(&format!(".{rp_id}"))) || rp_id.is_empty() {
            return Err(ConfigError(format!(
                "WAYPOST_WEBAUTHN_RP_ID: `{rp_id}` must be the host of WAYPOST_WEBAUTHN_ORIGIN ({host}) or a parent domain of it"
            )));
        }
        Ok((rp_id, origin))
    }

    /// The database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> SecretString {
        match &self.database_url {
            Some(url) => url.clone(),
            None => {
                SecretString::from(format!("sqlite://{}", self.default_sqlite_path().display()))
            }
        }
    }

    /// Whether the database is the default SQLite file in the data directory.
    pub fn uses_default_database(&self) -> bool {
        self.database_url.is_none()
    }

    fn default_sqlite_path(&self) -> PathBuf {
        absolute(&self.data_dir).join("waypost.db")
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| absolute(&self.data_dir).join("master.key"))
    }

    /// The base URL for printed links, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!(
                "{}://{}",
                if self.tls_enabled() { "https" } else { "http" },
                self.listen
            ),
        }
    }

    pub fn lockout_policy(&self) -> waypost_store::LockoutPolicy {
        waypost_store::LockoutPolicy {
            max_failures: self.lockout_threshold.max(1) as i64,
            base: chrono::Duration::seconds(self.lockout_base_secs as i64),
            max: chrono::Duration::seconds(self.lockout_max_secs as i64),
        }
    }

    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some()
    }

    /// Whether TLS 1.2 is refused.
    pub fn tls13_only(&self) -> bool {
        self.tls_min_version == "1.3"
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// `key = value` lines, secrets replaced by `[redacted]`.
    pub fn redacted_lines(&self) -> Vec<String> {
        let opt_path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or("(unset)".to_owned(), |p| p.display().to_string())
        };
        let secret = |s: &Option<SecretString>| {
            if s.is_some() { "[redacted]" } else { "(unset)" }.to_owned()
        };
        let webauthn = match self.webauthn() {
            Ok((rp_id, origin)) => (rp_id, origin.as_str().trim_end_matches('/').to_owned()),
            Err(e) => ("(invalid)".to_owned(), e.0),
        };
        vec![
            format!("listen = {}", self.listen),
            format!(
                "metrics_listen = {}",
                self.metrics_listen
                    .map_or("(unset)".to_owned(), |a| a.to_string())
            ),
            format!("detection = {}", self.detection),
            format!("data_dir = {}", self.data_dir.display()),
            format!(
                "database_url = {}",
                redact_url(self.database_url().expose_secret())
            ),
            format!(
                "database_max_connections = {}",
                self.database_max_connections
            ),
            format!("master_key = {}", secret(&self.master_key)),
            format!("master_key_file = {}", self.master_key_path().display()),
            format!("body_limit_bytes = {}", self.body_limit_bytes),
            format!("request_timeout_secs = {}", self.request_timeout_secs),
            format!("media_timeout_secs = {}", self.media_timeout_secs),
            format!("shutdown_grace_secs = {}", self.shutdown_grace_secs),
            format!(
                "header_read_timeout_secs = {}",
                self.header_read_timeout_secs
            ),
            format!("max_connections = {}", self.max_connections),
            format!("max_connections_per_ip = {}", self.max_connections_per_ip),
            format!("tls_cert = {}", opt_path(&self.tls_cert)),
            format!("tls_key = {}", opt_path(&self.tls_key)),
            format!("tls_min_version = {}", self.tls_min_version),
            format!("trust_proxy_headers = {}", self.trust_proxy_headers),
            format!(
                "log_format = {}",
                if self.log_format == LogFormat::Json {
                    "json"
                } else {
                    "pretty"
                }
            ),
            format!("log_level = {}", self.log_level),
            format!(
                "key_rotation_interval_secs = {}",
                self.key_rotation_interval_secs
            ),
            format!("reencryption_batch_size = {}", self.reencryption_batch_size),
            format!("public_url = {}", self.public_url()),
            format!(
                "session_idle_timeout_secs = {}",
                self.session_idle_timeout_secs
            ),
            format!(
                "session_absolute_timeout_secs = {}",
                self.session_absolute_timeout_secs
            ),
            format!("step_up_window_secs = {}", self.step_up_window_secs),
            format!("lockout_threshold = {}", self.lockout_threshold),
            format!("lockout_base_secs = {}", self.lockout_base_secs),
            format!("lockout_max_secs = {}", self.lockout_max_secs),
            format!("argon2_memory_kib = {}", self.argon2_memory_kib),
            format!("argon2_iterations = {}", self.argon2_iterations),
            format!("argon2_parallelism = {}", self.argon2_parallelism),
            format!(
                "rate_limit_api_key_per_minute = {}",
                self.rate_limit_api_key_per_minute
            ),
            format!(
                "rate_limit_user_per_minute = {}",
                self.rate_limit_user_per_minute
            ),
            format!(
                "rate_limit_ip_per_minute = {}",
                self.rate_limit_ip_per_minute
            ),
            format!(
                "rate_limit_login_per_ip_per_minute = {}",
                self.rate_limit_login_per_ip_per_minute
            ),
            format!(
                "audit_checkpoint_interval_secs = {}",
                self.audit_checkpoint_interval_secs
            ),
            format!(
                "backup_recipient = {}",
                self.backup_recipient.as_deref().unwrap_or("(unset)")
            ),
            format!("backup_dir = {}", opt_path(&self.backup_dir)),
            format!("backup_interval_secs = {}", self.backup_interval_secs),
            format!("backup_retention_days = {}", self.backup_retention_days),
            format!(
                "smtp_url = {}",
                self.smtp_url
                    .as_ref()
                    .map_or("(unset)".to_owned(), |u| redact_url(u.expose_secret()))
            ),
            format!(
                "mail_from = {}",
                self.mail_from.as_deref().unwrap_or("(unset)")
            ),
            format!("mail_retry_base_ms = {}", self.mail_retry_base_ms),
            format!("mail_poll_ms = {}", self.mail_poll_ms),
            format!("mail_retention_days = {}", self.mail_retention_days),
            format!("automation_poll_ms = {}", self.automation_poll_ms),
            format!(
                "automation_cooldown_secs = {}",
                self.automation_cooldown_secs
            ),
            format!(
                "assistant_allow_private_targets = {}",
                self.assistant_allow_private_targets
            ),
            format!("stripe_secret_key = {}", secret(&self.stripe_secret_key)),
            format!(
                "stripe_webhook_secret = {}",
                secret(&self.stripe_webhook_secret)
            ),
            format!("stripe_api_base = {}", self.stripe_api_base),
            format!("stripe_grace_days = {}", self.stripe_grace_days),
            format!("stripe_meter_prefix = {}", self.stripe_meter_prefix),
            format!("stripe_poll_secs = {}", self.stripe_poll_secs),
            format!("stripe_timeout_ms = {}", self.stripe_timeout_ms),
            format!(
                "password_reset_per_address_per_hour = {}",
                self.password_reset_per_address_per_hour
            ),
            format!(
                "password_reset_per_ip_per_hour = {}",
                self.password_reset_per_ip_per_hour
            ),
            format!(
                "account_deletion_grace_days = {}",
                self.account_deletion_grace_days
            ),
            format!(
                "workspace_deletion_grace_days = {}",
                self.workspace_deletion_grace_days
            ),
            format!("admin_mfa_grace_days = {}", self.admin_mfa_grace_days),
            format!("webauthn_rp_id = {}", webauthn.0),
            format!("webauthn_origin = {}", webauthn.1),
            format!("shield_lists_dir = {}", opt_path(&self.shield_lists_dir)),
            format!(
                "shield_allowlist_file = {}",
                opt_path(&self.shield_allowlist_file)
            ),
            format!(
                "shield_blocklist_file = {}",
                opt_path(&self.shield_blocklist_file)
            ),
            format!(
                "shield_usage_retention_days = {}",
                self.shield_usage_retention_days
            ),
            format!("dispatch_enabled = {}", self.dispatch_enabled),
            format!("campaigns_enabled = {}", self.campaigns_enabled),
            format!("campaign_window = {}", self.campaign_window),
            format!("campaign_poll_ms = {}", self.campaign_poll_ms),
            format!("campaign_lease_secs = {}", self.campaign_lease_secs),
            format!(
                "campaign_opt_out_threshold = {}",
                self.campaign_opt_out_threshold
            ),
            format!(
                "campaign_opt_out_min_sent = {}",
                self.campaign_opt_out_min_sent
            ),
            format!("dispatch_retry_base_ms = {}", self.dispatch_retry_base_ms),
            format!("dispatch_retry_max_secs = {}", self.dispatch_retry_max_secs),
            format!("dispatch_batch_size = {}", self.dispatch_batch_size),
            format!("dispatch_poll_ms = {}", self.dispatch_poll_ms),
            format!("dispatch_lease_secs = {}", self.dispatch_lease_secs),
            format!("node_id = {}", self.node_id.as_deref().unwrap_or("(none)")),
            format!("dispatch_reconcile_secs = {}", self.dispatch_reconcile_secs),
            format!(
                "dispatch_request_timeout_secs = {}",
                self.dispatch_request_timeout_secs
            ),
            format!("dispatch_max_in_flight = {}", self.dispatch_max_in_flight),
            format!(
                "dispatch_breaker_failures = {}",
                self.dispatch_breaker_failures
            ),
            format!(
                "dispatch_breaker_cooldown_secs = {}",
                self.dispatch_breaker_cooldown_secs
            ),
            format!("dispatch_pair_burst = {}", self.dispatch_pair_burst),
            format!(
                "dispatch_pair_interval_ms = {}",
                self.dispatch_pair_interval_ms
            ),
            format!("dispatch_rate_margin_ms = {}", self.dispatch_rate_margin_ms),
            format!("opt_out_keywords = {}", self.opt_out_keywords.join(",")),
            format!("opt_in_keywords = {}", self.opt_in_keywords.join(",")),
            format!(
                "inbound_body_limit_bytes = {}",
                self.inbound_body_limit_bytes
            ),
            format!(
                "template_prohibited_categories = {}",
                self.template_prohibited_categories.join(",")
            ),
            format!(
                "template_prohibited_terms = {} categor(ies) with operator terms",
                self.template_prohibited_terms.len()
            ),
            format!(
                "template_sync_interval_secs = {}",
                self.template_sync_interval_secs
            ),
            format!("webhook_allow_http = {}", self.webhook_allow_http),
            format!(
                "webhook_allow_private_targets = {}",
                self.webhook_allow_private_targets
            ),
            format!(
                "channel_allow_private_targets = {}",
                self.channel_allow_private_targets
            ),
            format!("webhook_timeout_secs = {}", self.webhook_timeout_secs),
            format!(
                "webhook_retry_schedule_secs = {:?}",
                self.webhook_retry_schedule_secs
            ),
            format!(
                "webhook_retry_jitter_percent = {}",
                self.webhook_retry_jitter_percent
            ),
            format!(
                "webhook_disable_after_secs = {}",
                self.webhook_disable_after_secs
            ),
            format!(
                "webhook_endpoint_concurrency = {}",
                self.webhook_endpoint_concurrency
            ),
            format!("webhook_batch_size = {}", self.webhook_batch_size),
            format!(
                "webhook_poll_interval_ms = {}",
                self.webhook_poll_interval_ms
            ),
            format!(
                "webhook_replay_interval_secs = {}",
                self.webhook_replay_interval_secs
            ),
            format!("event_content_hold_secs = {}", self.event_content_hold_secs),
            format!(
                "webhook_history_retention_days = {}",
                self.webhook_history_retention_days
            ),
            format!("retention_interval_secs = {}", self.retention_interval_secs),
            format!(
                "message_metadata_retention_days = {}",
                self.message_metadata_retention_days
            ),
            format!(
                "inbound_record_retention_days = {}",
                self.inbound_record_retention_days
            ),
            format!(
                "operational_retention_days = {}",
                self.operational_retention_days
            ),
            format!("audit_retention_days = {}", self.audit_retention_days),
            format!(
                "event_stream_max_per_workspace = {}",
                self.event_stream_max_per_workspace
            ),
            format!(
                "event_stream_heartbeat_ms = {}",
                self.event_stream_heartbeat_ms
            ),
            format!("event_stream_poll_ms = {}", self.event_stream_poll_ms),
            format!("event_stream_recheck_ms = {}", self.event_stream_recheck_ms),
            format!(
                "event_stream_gap_grace_ms = {}",
                self.event_stream_gap_grace_ms
            ),
        ]
    }
}

/// Replaces the password in a database URL with `[redacted]`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("[redacted]"));
            url.to_string().replace("%5Bredacted%5D", "[redacted]")
        }
        Ok(url) => url.to_string(),
        Err(_) => "[unparseable URL redacted]".into(),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// One line naming the setting: `WAYPOST_LISTEN (listen): invalid socket address …`.
fn describe_figment_error(e: figment::Error) -> String {
    let key = e.path.join(".");
    let setting = if key.is_empty() {
        String::new()
    } else {
        format!("WAYPOST_{} ({key}): ", key.to_uppercase())
    };
    let source = e
        .metadata
        .as_ref()
        .map(|m| format!(" [from {}]", m.name))
        .unwrap_or_default();
    format!("{setting}{}{source}", e.kind)
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
mod tests;

/// A version written as text or read as a number (`1.3` from the environment).
fn version_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Version {
        Text(String),
        Number(f64),
    }
    Ok(match Version::deserialize(d)? {
        Version::Text(t) => t,
        Version::Number(n) => format!("{n:.1}"),
    })
}
