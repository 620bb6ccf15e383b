//! The Stripe settings' checks: a usable API base URL, a grace period and a
//! poll interval in range, and both secrets or neither.

use super::{Config, ConfigError};

impl Config {
    pub(super) fn validate_billing(&self) -> Result<(), ConfigError> {
        let base = url::Url::parse(&self.stripe_api_base)
            .map_err(|e| ConfigError(format!("WAYPOST_STRIPE_API_BASE: not a URL ({e})")))?;
        if !matches!(base.scheme(), "https" | "http") {
            return Err(ConfigError(
                "WAYPOST_STRIPE_API_BASE: must be an http(s) URL".into(),
            ));
        }
        if !(1..=90).contains(&self.stripe_grace_days) {
            return Err(ConfigError(
                "WAYPOST_STRIPE_GRACE_DAYS: must be 1 to 90".into(),
            ));
        }
        if self.stripe_poll_secs == 0 || self.stripe_timeout_ms == 0 {
            return Err(ConfigError(
                "WAYPOST_STRIPE_POLL_SECS / WAYPOST_STRIPE_TIMEOUT_MS: must be greater than 0"
                    .into(),
            ));
        }
        let prefix_ok = !self.stripe_meter_prefix.is_empty()
            && self.stripe_meter_prefix.len() <= 40
            && self
                .stripe_meter_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !prefix_ok {
            return Err(ConfigError(
                "WAYPOST_STRIPE_METER_PREFIX: 1 to 40 letters, digits or `_`".into(),
            ));
        }
        if self.stripe_secret_key.is_some() != self.stripe_webhook_secret.is_some() {
            return Err(ConfigError(
                "WAYPOST_STRIPE_SECRET_KEY and WAYPOST_STRIPE_WEBHOOK_SECRET: set both or neither"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Whether Stripe billing is configured.
    pub fn stripe_enabled(&self) -> bool {
        self.stripe_secret_key.is_some() && self.stripe_webhook_secret.is_some()
    }
}
