//! The PostgreSQL backend: a pool sized from configuration, shared by any
//! number of nodes. Cross-node ordering (the audit chain) uses transaction-scoped
//! advisory locks; migrations take sqlx's migration lock.

mod backup;
mod records;

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::{
    Backend, ConnectError, ConnectOptions, MigrationStatus, MigrationStore, PoolStats, Result,
};

pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self, ConnectError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| ConnectError::Malformed(e.to_string()))?
            .application_name("waypost");
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| ConnectError::Unreachable(e.to_string()))?;
        Ok(Self { pool })
    }

    pub(crate) fn reads(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn writes(&self) -> &PgPool {
        &self.pool
    }

    /// The pool, for tests that must reach under the store.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl MigrationStore for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn cache_generation(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT generation FROM _cache_generation WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn migration_status(&self) -> Result<Vec<MigrationStatus>> {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(&self.pool)
                .await?;
        let applied: Vec<(i64, Vec<u8>, bool)> = if exists.is_some() {
            sqlx::query_as(
                "SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version",
            )
            .fetch_all(&self.pool)
            .await?
        } else {
            Vec::new()
        };
        Ok(crate::model::compare_migrations(&MIGRATOR, &applied))
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        vec![PoolStats {
            name: "postgres",
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.pool.options().get_max_connections(),
        }]
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
