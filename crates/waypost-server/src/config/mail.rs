//! The mail settings' checks: an SMTP URL lettre accepts and a sender address.

use secrecy::ExposeSecret;

use super::{Config, ConfigError};

impl Config {
    pub(super) fn validate_mail(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.smtp_url {
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url.expose_secret())
                .map_err(|e| {
                    ConfigError(format!(
                        "WAYPOST_SMTP_URL: not a usable SMTP URL ({e}); use smtps://host:465, smtp://host:587?tls=required (STARTTLS) or smtp://localhost:25"
                    ))
                })?;
            let parsed = url::Url::parse(url.expose_secret()).ok();
            let unencrypted = parsed
                .as_ref()
                .is_some_and(|u| u.scheme() == "smtp" && !u.query_pairs().any(|(k, _)| k == "tls"));
            let local = parsed
                .as_ref()
                .and_then(|u| u.host_str().map(str::to_owned))
                .is_some_and(|h| {
                    h == "localhost"
                        || h.parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                });
            if unencrypted && !local {
                return Err(ConfigError(
                    "WAYPOST_SMTP_URL: plain smtp:// sends passwords and mail unencrypted; use smtps:// or add ?tls=required (a relay on localhost may stay plain)".into(),
                ));
            }
            let Some(from) = &self.mail_from else {
                return Err(ConfigError(
                    "WAYPOST_MAIL_FROM: required with WAYPOST_SMTP_URL (e.g. `Waypost <noreply@example.com>`)".into(),
                ));
            };
            from.parse::<lettre::message::Mailbox>().map_err(|e| {
                ConfigError(format!("WAYPOST_MAIL_FROM: not a valid address ({e})"))
            })?;
        }
        if self.mail_retry_base_ms == 0 || self.mail_poll_ms == 0 {
            return Err(ConfigError(
                "WAYPOST_MAIL_RETRY_BASE_MS / WAYPOST_MAIL_POLL_MS: must be greater than 0".into(),
            ));
        }
        if !(1..=3650).contains(&self.mail_retention_days) {
            return Err(ConfigError(
                "WAYPOST_MAIL_RETENTION_DAYS: must be 1 to 3650".into(),
            ));
        }
        if self.password_reset_per_address_per_hour == 0 || self.password_reset_per_ip_per_hour == 0
        {
            return Err(ConfigError(
                "WAYPOST_PASSWORD_RESET_PER_ADDRESS_PER_HOUR / _PER_IP_PER_HOUR: must be greater than 0".into(),
            ));
        }
        if !(1..=365).contains(&self.account_deletion_grace_days) {
            return Err(ConfigError(
                "WAYPOST_ACCOUNT_DELETION_GRACE_DAYS: must be 1 to 365".into(),
            ));
        }
        if !(1..=365).contains(&self.workspace_deletion_grace_days) {
            return Err(ConfigError(
                "WAYPOST_WORKSPACE_DELETION_GRACE_DAYS: must be 1 to 365".into(),
            ));
        }
        if self.admin_mfa_grace_days > 3650 {
            return Err(ConfigError(
                "WAYPOST_ADMIN_MFA_GRACE_DAYS: must be 0 to 3650".into(),
            ));
        }
        Ok(())
    }

    /// Whether mail can be sent at all.
    pub fn mail_enabled(&self) -> bool {
        self.smtp_url.is_some()
    }
}
