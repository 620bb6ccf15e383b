//! `spawn_app`: the real application on a random port with a fresh database.

use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use waypost_crypto::MasterKey;
use waypost_server::auth::ManualClock;
use waypost_server::state::AppState;
use waypost_server::{Application, Config};
use waypost_store::Backend;
use waypost_store::testing::TestDatabase;

/// Generates one test per backend from `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(waypost_store::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(waypost_store::Backend::Postgres).await })*
        }
    };
}

pub struct TestApp {
    pub address: String,
    /// The separate metrics listener (`metrics_listen`), when configured.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub state: AppState,
    pub config: Config,
    pub db: Arc<TestDatabase>,
    pub data_dir: Arc<tempfile::TempDir>,
    pub clock: Arc<ManualClock>,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A configuration for a test app on `db`, with its own data directory and master key.
pub fn test_config(db: &TestDatabase, data_dir: &std::path::Path, master: &MasterKey) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        database_url: Some(db.url.clone().into()),
        master_key: Some(
            secrecy::ExposeSecret::expose_secret(&master.to_base64())
                .to_owned()
                .into(),
        ),
        shutdown_grace_secs: 5,
        // Cheap hashing keeps tests fast; production defaults are tested in waypost-crypto.
        argon2_memory_kib: 256,
        argon2_iterations: 1,
        // The tests' provider is the sandbox on 127.0.0.1.
        channel_allow_private_targets: true,
        // Owners made by the tests have no second factor; the default
        // (7 days, then refused) is tested in workspace_deletion.rs.
        admin_mfa_grace_days: 3650,
        ..Config::default()
    }
}

/// Starts the app, or `None` when the backend is unavailable outside CI.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the app with configuration changes.
pub async fn spawn_app_with(backend: Backend, change: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let db = TestDatabase::create(backend).await?;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&db, data_dir.path(), &MasterKey::generate());
    change(&mut config);
    Some(spawn_with(config, Arc::new(db), Arc::new(data_dir)).await)
}

pub async fn spawn_with(
    config: Config,
    db: Arc<TestDatabase>,
    data_dir: Arc<tempfile::TempDir>,
) -> TestApp {
    waypost_server::telemetry::init_logging(waypost_server::config::LogFormat::Pretty, "warn");
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = Application::build_with_clock(config.clone(), clock.clone())
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app.metrics_addr().map(|a| format!("http://{a}"));
    let state = app.state().clone();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        address,
        metrics_address,
        clock,
        client,
        state,
        config,
        db,
        data_dir,
        shutdown,
        server: Some(server),
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent")
    }

    /// `/metrics` with a fresh operator token, as a scraper with one would ask.
    pub async fn metrics(&self) -> reqwest::Response {
        let (_, token) = crate::incidents::operator_token(self).await;
        self.client
            .get(format!("{}/metrics", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    pub fn clock_now(&self) -> chrono::DateTime<Utc> {
        waypost_server::auth::Clock::now(self.clock.as_ref())
    }

    /// Stops the app as SIGTERM would and waits for it to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.server.take().expect("running").await?
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Asserts a response is a problem document with `status` and returns its body.
pub async fn assert_problem(res: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert_eq!(body["request_id"], request_id.as_str());
    for member in ["type", "title", "detail", "instance"] {
        assert!(body[member].is_string(), "problem lacks `{member}`: {body}");
    }
    body
}
