//! Building and running the application: `Application::build` opens the
//! database, the key ring and a bound listener (failing fast with one line
//! naming the setting); `run_until_stopped` serves HTTP and runs workers under
//! one `CancellationToken` until SIGTERM or SIGINT, then drains.

use std::net::SocketAddr;
use std::sync::Arc;

use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;
use waypost_store::{ConnectOptions, Store};

use waypost_crypto::password::{Argon2Settings, PasswordHasher};

use crate::auth::rate_limit::RateLimits;
use crate::auth::{Clock, SystemClock};
use crate::config::Config;
use crate::keys::{self, Keys};
use crate::state::AppState;
use crate::{http, telemetry, workers};

pub use crate::error::StartupError;

/// Opens (and optionally migrates) the configured database.
pub async fn open_database(config: &Config, migrate: bool) -> Result<Arc<dyn Store>, StartupError> {
    if config.uses_default_database() {
        create_private_dir(&config.data_dir).map_err(|e| {
            StartupError(format!(
                "WAYPOST_DATA_DIR: cannot create {}: {e}",
                config.data_dir.display()
            ))
        })?;
    }
    let options = ConnectOptions {
        max_connections: config.database_max_connections,
        ..Default::default()
    };
    let store = waypost_store::connect(config.database_url().expose_secret(), &options)
        .await
        .map_err(|e| StartupError(format!("WAYPOST_DATABASE_URL: {e}")))?;
    if migrate {
        store.migrate().await.map_err(|e| {
            StartupError(format!(
                "WAYPOST_DATABASE_URL: cannot apply migrations: {e}"
            ))
        })?;
    }
    Ok(store)
}

fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Finds or creates the master key and opens the key ring.
pub async fn open_keys(config: &Config, store: &dyn Store) -> Result<Keys, StartupError> {
    let has_keys = !store
        .list_data_keys()
        .await
        .map_err(|e| StartupError(format!("WAYPOST_DATABASE_URL: cannot read data keys: {e}")))?
        .is_empty();
    let master = keys::load_or_create_master_key(config, has_keys)?;
    Ok(Keys::open(store, master).await?)
}

enum Listener {
    Plain(tokio::net::TcpListener),
    Tls(std::net::TcpListener, axum_server::tls_rustls::RustlsConfig),
}

/// Everything but the listener: used by `serve` and by operator commands.
pub async fn build_state(
    config: Config,
    clock: Arc<dyn Clock>,
    migrate: bool,
) -> Result<AppState, StartupError> {
    let store = open_database(&config, migrate).await?;
    if !migrate {
        let status = store.migration_status().await.map_err(|e| {
            StartupError(format!(
                "WAYPOST_DATABASE_URL: cannot read migration state: {e}"
            ))
        })?;
        if !waypost_store::migrations_current(&status) {
            return Err(StartupError(
                "WAYPOST_DATABASE_URL: the database has pending migrations; run `waypost migrate` first".into(),
            ));
        }
    }
    let keys = open_keys(&config, store.as_ref()).await?;
    crate::emails::seal_legacy(store.as_ref(), &keys)
        .await
        .map_err(|e| {
            StartupError(format!(
                "WAYPOST_DATABASE_URL: cannot encrypt the stored email addresses: {e}"
            ))
        })?;
    let hasher = PasswordHasher::new(Argon2Settings {
        memory_kib: config.argon2_memory_kib,
        iterations: config.argon2_iterations,
        parallelism: config.argon2_parallelism,
    })
    .map_err(|e| StartupError(format!("WAYPOST_ARGON2_*: {e}")))?;
    let webauthn = build_webauthn(&config)?;
    let shield = crate::shield::build(&config)?;
    let acceptor_store = store.clone();
    let feed_settings = crate::event_feed::FeedSettings::from_config(&config);
    let signals = Arc::new(crate::signals::Signals::new(config.detection));
    let keys = Arc::new(keys);
    let ingestor = crate::messaging::ingest::Ingestor::start(
        store.clone(),
        keys.clone(),
        clock.clone(),
        crate::dispatch::outcome::status_event,
    );
    Ok(AppState {
        signals,
        ingestor,
        limits: Arc::new(RateLimits::from_config(&config)),
        config: Arc::new(config),
        store,
        keys,
        metrics: telemetry::metrics_handle(),
        clock,
        hasher: Arc::new(hasher),
        phantom_lockouts: Default::default(),
        webauthn: Arc::new(webauthn),
        shield: Arc::new(shield),
        backups: Default::default(),
        acceptor: crate::messaging::accept::Acceptor::start(acceptor_store.clone()),
        lookups: Arc::new(crate::cache::Lookups::new(acceptor_store.clone())),
        quotas: Arc::new(crate::quota::Quotas::new(acceptor_store.clone())),
        event_feed: crate::event_feed::Feed::new(acceptor_store.clone(), feed_settings),
    })
}

/// The WebAuthn relying party for this server's public origin.
fn build_webauthn(config: &Config) -> Result<webauthn_rs::Webauthn, StartupError> {
    let (rp_id, origin) = config.webauthn().map_err(|e| StartupError(e.0))?;
    webauthn_rs::WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|b| b.rp_name("Waypost").build())
        .map_err(|e| {
            StartupError(format!(
                "WAYPOST_WEBAUTHN_RP_ID / WAYPOST_WEBAUTHN_ORIGIN: {e}"
            ))
        })
}

/// State for an operator command; like `serve`, it brings the schema up to date first.
pub async fn operator_state(config: Config) -> Result<AppState, StartupError> {
    build_state(config, Arc::new(SystemClock), true).await
}

pub struct Application {
    local_addr: SocketAddr,
    listener: Listener,
    /// The separate `/metrics` listener (`metrics_listen`), if configured.
    metrics_listener: Option<tokio::net::TcpListener>,
    state: AppState,
    shutdown: CancellationToken,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`Application::build`], with the clock tests control.
    pub async fn build_with_clock(
        mut config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let listener = bind(&config).await?;
        let local_addr = match &listener {
            Listener::Plain(l) => l.local_addr(),
            Listener::Tls(l, _) => l.local_addr(),
        }
        .map_err(|e| StartupError(format!("WAYPOST_LISTEN: {e}")))?;
        // Port 0 asks the OS for a port; default public links and the WebAuthn
        // origin must name the one it gave.
        if config.listen.port() == 0 {
            config.listen.set_port(local_addr.port());
        }
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                StartupError(format!(
                    "WAYPOST_METRICS_LISTEN: cannot listen on {addr}: {e}"
                ))
            })?),
            None => None,
        };
        let state = build_state(config, clock, true).await?;
        let shutdown = CancellationToken::new();
        // Listen for SIGTERM from here on: a signal during start-up must drain, not kill.
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        Ok(Self {
            local_addr,
            listener,
            metrics_listener,
            state,
            shutdown,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// Where the separate metrics listener is bound, if configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Cancelling this token stops the application as SIGTERM would.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until SIGTERM/SIGINT or the shutdown token, then stops accepting,
    /// lets in-flight requests and worker steps finish within the grace period.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self {
            listener,
            metrics_listener,
            state,
            shutdown,
            local_addr,
        } = self;
        let grace = state.config.shutdown_grace();
        let worker = tokio::spawn(workers::maintenance(state.clone(), shutdown.clone()));
        let backups = tokio::spawn(crate::backup_schedule::scheduled_backups(
            state.config.clone(),
            state.store.clone(),
            state.clock.clone(),
            state.backups.clone(),
            shutdown.clone(),
        ));
        let lookups = tokio::spawn(state.lookups.clone().watch(shutdown.clone()));
        // Plans are enforced from the first request: load them before listening.
        if let Err(e) = state.quotas.refresh(state.clock.now()).await {
            tracing::warn!(error = %e, "cannot load plans and usage yet; retrying in the background");
        }
        let quotas = tokio::spawn(
            state
                .quotas
                .clone()
                .watch(state.clock.clone(), shutdown.clone()),
        );
        // Open event streams never end by themselves: end them so the server can drain.
        let (feed, token) = (state.event_feed.clone(), shutdown.clone());
        tokio::spawn(async move {
            token.cancelled().await;
            feed.close();
        });
        let dispatcher = tokio::spawn(crate::dispatch::run(state.clone(), shutdown.clone()));
        let campaigns = tokio::spawn(crate::campaign_sender::run(state.clone(), shutdown.clone()));
        let retention = tokio::spawn(crate::retention::worker(state.clone(), shutdown.clone()));
        let template_sync = tokio::spawn(crate::templates::sync_worker(
            state.clone(),
            shutdown.clone(),
        ));
        let webhooks = tokio::spawn(crate::webhooks::deliver::run(
            state.clone(),
            shutdown.clone(),
        ));
        let mail = tokio::spawn(crate::mail::deliver::run(state.clone(), shutdown.clone()));
        let automation = tokio::spawn(crate::automation_worker::run(
            state.clone(),
            shutdown.clone(),
        ));
        let signals = tokio::spawn(
            state
                .signals
                .clone()
                .run(state.store.clone(), shutdown.clone()),
        );
        let detectors = tokio::spawn(crate::detect::run(state.clone(), shutdown.clone()));
        let billing = tokio::spawn(crate::billing::run(state.clone(), shutdown.clone()));
        let metrics_server = match metrics_listener {
            Some(l) => Some(tokio::spawn(crate::serve::serve(
                l,
                None,
                http::metrics_router(state.clone()),
                crate::serve::ConnectionLimits::from_config(&state.config),
                shutdown.clone(),
            ))),
            None => None,
        };
        let app = http::router(state.clone(), crate::web::routes());
        tracing::info!(address = %local_addr, tls = state.config.tls_enabled(), backend = state.store.backend().as_str(), "listening");
        let limits = crate::serve::ConnectionLimits::from_config(&state.config);
        let (listener, tls) = match listener {
            Listener::Plain(listener) => (listener, None),
            Listener::Tls(listener, tls) => (
                tokio::net::TcpListener::from_std(listener)?,
                Some(tokio_rustls::TlsAcceptor::from(tls.get_inner())),
            ),
        };
        let server = tokio::spawn(crate::serve::serve(
            listener,
            tls,
            app,
            limits,
            shutdown.clone(),
        ));
        let server = drain(server, &shutdown, grace, "HTTP server");
        let outcome = server.await;
        shutdown.cancel();
        let _ = tokio::time::timeout(grace, async {
            let _ = tokio::join!(
                worker,
                backups,
                dispatcher,
                campaigns,
                retention,
                template_sync,
                webhooks,
                mail,
                automation,
                lookups,
                quotas,
                signals,
                detectors,
                billing
            );
            if let Some(m) = metrics_server {
                let _ = m.await;
            }
        })
        .await;
        state.store.close().await;
        tracing::info!("stopped");
        outcome
    }
}

/// Waits for a task; once shutdown begins, waits at most `grace` more.
async fn drain(
    mut task: tokio::task::JoinHandle<std::io::Result<()>>,
    shutdown: &CancellationToken,
    grace: std::time::Duration,
    what: &str,
) -> anyhow::Result<()> {
    tokio::select! {
        result = &mut task => return Ok(result??),
        _ = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(grace, &mut task).await {
        Ok(result) => Ok(result??),
        Err(_) => {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "{what}: grace period elapsed with work in flight"
            );
            task.abort();
            Ok(())
        }
    }
}

async fn bind(config: &Config) -> Result<Listener, StartupError> {
    let bind_error = |e: std::io::Error| {
        StartupError(format!(
            "WAYPOST_LISTEN: cannot listen on {}: {e}",
            config.listen
        ))
    };
    let std_listener = std::net::TcpListener::bind(config.listen).map_err(bind_error)?;
    std_listener.set_nonblocking(true).map_err(bind_error)?;
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = server_tls(cert, key, config.tls13_only())
                .map_err(|e| StartupError(format!("WAYPOST_TLS_CERT / WAYPOST_TLS_KEY: {e}")))?;
            Ok(Listener::Tls(
                std_listener,
                axum_server::tls_rustls::RustlsConfig::from_config(std::sync::Arc::new(tls)),
            ))
        }
        _ => Ok(Listener::Plain(
            tokio::net::TcpListener::from_std(std_listener).map_err(bind_error)?,
        )),
    }
}

/// The server's TLS settings: the certificate chain and key from PEM files,
/// TLS 1.2 and 1.3 (or 1.3 alone), HTTP/2 and HTTP/1.1 by ALPN.
fn server_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
    tls13_only: bool,
) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in the file", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let versions: &[&rustls::SupportedProtocolVersion] = if tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut tls = rustls::ServerConfig::builder_with_protocol_versions(versions)
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
        _ = token.cancelled() => return,
    }
    tracing::info!("shutdown signal received; draining");
    token.cancel();
}
