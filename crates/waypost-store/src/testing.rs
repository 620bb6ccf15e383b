//! Fresh, throw-away databases for tests: a temporary SQLite file, or a new
//! PostgreSQL database on the server named by `WAYPOST_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped afterwards.
//!
//! Outside CI a missing PostgreSQL skips the PostgreSQL variant with a message;
//! under `CI=true` it is a failure.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::Backend;

pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists for one test.
pub struct TestDatabase {
    pub url: String,
    backend: Backend,
    admin_url: String,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A new empty database, or `None` (with a message) when the PostgreSQL
    /// variant cannot run outside CI.
    pub async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}", dir.path().join("waypost.db").display());
                Some(Self {
                    url,
                    backend,
                    admin_url: String::new(),
                    name: String::new(),
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => Self::create_postgres().await,
        }
    }

    async fn create_postgres() -> Option<Self> {
        let admin_url = std::env::var("WAYPOST_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_owned());
        let mut conn = match PgConnection::connect(&admin_url).await {
            Ok(conn) => conn,
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!(
                    "skipping PostgreSQL variant: no PostgreSQL at WAYPOST_TEST_POSTGRES_URL ({e})"
                );
                return None;
            }
            Err(e) => {
                panic!("CI=true but PostgreSQL is unreachable at WAYPOST_TEST_POSTGRES_URL: {e}")
            }
        };
        let name = format!(
            "waypost_test_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let mut url = url::Url::parse(&admin_url).expect("WAYPOST_TEST_POSTGRES_URL is a URL");
        url.set_path(&name);
        Some(Self {
            url: url.to_string(),
            backend: Backend::Postgres,
            admin_url,
            name,
            _dir: None,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
    }
}
