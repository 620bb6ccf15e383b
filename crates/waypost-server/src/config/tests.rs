//! Configuration loading, precedence and error messages.
use super::*;

#[test]
fn defaults_match_the_documentation() {
    let c = Config::default();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.body_limit_bytes, 1 << 20);
    assert_eq!(c.shield_usage_retention_days, 90);
    assert_eq!(c.backup_interval_secs, 3600);
    assert_eq!(c.backup_retention_days, 90);
    assert!(c.backup_dir.is_none());
    assert!(c.database_url().expose_secret().starts_with("sqlite://"));
    assert!(
        c.database_url()
            .expose_secret()
            .ends_with("waypost-data/waypost.db")
    );
}

#[test]
fn webauthn_defaults_follow_the_public_url() {
    let (rp_id, origin) = Config::default().webauthn().unwrap();
    assert_eq!(
        (rp_id.as_str(), origin.as_str()),
        ("localhost", "http://localhost:8080/")
    );
    let c = Config {
        public_url: Some("https://chat.example.com".into()),
        ..Config::default()
    };
    let (rp_id, origin) = c.webauthn().unwrap();
    assert_eq!(
        (rp_id.as_str(), origin.as_str()),
        ("chat.example.com", "https://chat.example.com/")
    );
    let parent = Config {
        webauthn_rp_id: Some("example.com".into()),
        ..c.clone()
    };
    assert_eq!(parent.webauthn().unwrap().0, "example.com");
}

#[test]
fn webauthn_errors_name_the_setting() {
    let c = Config {
        public_url: Some("https://chat.example.com".into()),
        webauthn_rp_id: Some("evil.com".into()),
        ..Config::default()
    };
    assert!(
        c.webauthn()
            .unwrap_err()
            .0
            .starts_with("WAYPOST_WEBAUTHN_RP_ID:")
    );
    let c = Config {
        webauthn_origin: Some("not a url".into()),
        ..Config::default()
    };
    assert!(
        c.webauthn()
            .unwrap_err()
            .0
            .starts_with("WAYPOST_WEBAUTHN_ORIGIN:")
    );
    let c = Config {
        webauthn_origin: Some("https://10.0.0.1".into()),
        ..Config::default()
    };
    assert!(
        c.webauthn()
            .unwrap_err()
            .0
            .starts_with("WAYPOST_WEBAUTHN_ORIGIN:")
    );
}

#[test]
fn passwords_in_database_urls_are_redacted() {
    assert_eq!(
        redact_url("postgres://app:hunter2@db:5432/waypost"),
        "postgres://app:[redacted]@db:5432/waypost"
    );
    assert_eq!(
        redact_url("postgres://app@db/waypost"),
        "postgres://app@db/waypost"
    );
    let c = Config {
        database_url: Some("postgres://app:hunter2@db/w".to_owned().into()),
        master_key: Some("c2VjcmV0".to_owned().into()),
        ..Config::default()
    };
    let text = c.redacted_lines().join("\n");
    assert!(
        !text.contains("hunter2") && !text.contains("c2VjcmV0"),
        "{text}"
    );
    assert!(text.contains("master_key = [redacted]"));
}

#[test]
fn file_then_env_then_flags() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "custom.toml",
            "listen = \"127.0.0.1:7000\"\nbody_limit_bytes = 2048\nlog_level = \"debug\"",
        )?;
        jail.set_env("WAYPOST_BODY_LIMIT_BYTES", "4096");
        let overrides = Overrides {
            config_file: Some("custom.toml".into()),
            ..Default::default()
        };
        let c = Config::load(&overrides).map_err(|e| e.0)?;
        assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.body_limit_bytes, 4096);
        assert_eq!(c.log_level, "debug");
        let flags = Overrides {
            listen: Some("127.0.0.1:9000".parse().unwrap()),
            ..overrides
        };
        assert_eq!(
            Config::load(&flags).map_err(|e| e.0)?.listen.to_string(),
            "127.0.0.1:9000"
        );
        Ok(())
    });
}

#[test]
fn errors_name_the_setting() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("WAYPOST_DATABASE_URL", "mysql://x");
        let err = Config::load(&Overrides::default()).unwrap_err().0;
        assert!(
            err.starts_with("WAYPOST_DATABASE_URL: unsupported scheme `mysql`"),
            "{err}"
        );

        jail.set_env("WAYPOST_DATABASE_URL", "sqlite://x.db");
        jail.set_env("WAYPOST_LISTEN", "not-an-address");
        let err = Config::load(&Overrides::default()).unwrap_err().0;
        assert!(err.contains("WAYPOST_LISTEN"), "{err}");

        jail.set_env("WAYPOST_LISTEN", "127.0.0.1:1");
        let missing = Overrides {
            config_file: Some("nope.toml".into()),
            ..Default::default()
        };
        let err = Config::load(&missing).unwrap_err().0;
        assert!(
            err.contains("nope.toml") && err.contains("WAYPOST_CONFIG"),
            "{err}"
        );

        jail.set_env("WAYPOST_SHIELD_USAGE_RETENTION_DAYS", "0");
        let err = Config::load(&Overrides::default()).unwrap_err().0;
        assert!(
            err.starts_with("WAYPOST_SHIELD_USAGE_RETENTION_DAYS:"),
            "{err}"
        );
        jail.set_env("WAYPOST_SHIELD_USAGE_RETENTION_DAYS", "90");

        jail.create_file("waypost.toml", "lisen = \"127.0.0.1:1\"")?;
        let err = Config::load(&Overrides::default()).unwrap_err().0;
        assert!(err.contains("lisen"), "{err}");
        std::fs::remove_file("waypost.toml").map_err(|e| e.to_string())?;
        jail.set_env("WAYPOST_BACKUP_DIR", "backups");
        let err = Config::load(&Overrides::default()).unwrap_err().0;
        assert!(
            err.starts_with("WAYPOST_BACKUP_RECIPIENT: required when WAYPOST_BACKUP_DIR"),
            "{err}"
        );
        jail.set_env("WAYPOST_BACKUP_RECIPIENT", "age1nope");
        let err = Config::load(&Overrides::default()).unwrap_err().0;
        assert!(
            err.starts_with("WAYPOST_BACKUP_RECIPIENT: not an age"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn the_tls_floor_reads_as_text_or_number() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("WAYPOST_TLS_MIN_VERSION", "1.3");
        assert!(Config::load(&Overrides::default()).unwrap().tls13_only());
        jail.create_file("waypost.toml", "tls_min_version = \"1.2\"")?;
        jail.set_env("WAYPOST_CONFIG", "waypost.toml");
        jail.set_env("WAYPOST_TLS_MIN_VERSION", "1.2");
        assert!(!Config::load(&Overrides::default()).unwrap().tls13_only());
        jail.set_env("WAYPOST_TLS_MIN_VERSION", "1.1");
        let err = Config::load(&Overrides::default()).unwrap_err().0;
        assert_eq!(err, "WAYPOST_TLS_MIN_VERSION: must be 1.2 or 1.3");
        Ok(())
    });
}
