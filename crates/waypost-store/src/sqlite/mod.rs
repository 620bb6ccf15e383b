//! The SQLite backend: one file in WAL mode, one writer connection (so
//! concurrent writers queue in-process instead of failing with `SQLITE_BUSY`)
//! and a pool of read-only connections.

mod backup;
mod records;
#[cfg(test)]
mod upgrade_tests;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{
    Backend, ConnectError, ConnectOptions, MigrationStatus, MigrationStore, PoolStats, Result,
};

pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a connection waits for another process's write lock (e.g. a CLI
/// command next to a running server) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// The dispatcher's lock file (`node_lock`); `None` in memory.
    lock_path: Option<std::path::PathBuf>,
}

impl SqliteStore {
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self, ConnectError> {
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|e| ConnectError::Malformed(e.to_string()))?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // Deleted rows are overwritten, so an erased contact's wrapped key
            // does not linger in free pages.
            .pragma("secure_delete", "on");
        if let Some(dir) = base.get_filename().parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            return Err(ConnectError::Unreachable(format!(
                "directory {} does not exist",
                dir.display()
            )));
        }
        // A file connection does not go stale: no ping before each transaction
        // (one more trip to the connection's thread on every write).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(options.acquire_timeout.max(BUSY_TIMEOUT * 3))
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(|e| ConnectError::Unreachable(e.to_string()))?;
        let lock_path = crate::node_lock::lock_path(base.get_filename());
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .test_before_acquire(false)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(base.read_only(true))
            .await
            .map_err(|e| ConnectError::Unreachable(e.to_string()))?;
        Ok(Self {
            writer,
            reader,
            lock_path,
        })
    }

    pub(crate) fn lock_path(&self) -> Option<&std::path::Path> {
        self.lock_path.as_deref()
    }

    pub(crate) fn reads(&self) -> &SqlitePool {
        &self.reader
    }

    pub(crate) fn writes(&self) -> &SqlitePool {
        &self.writer
    }

    /// The writer pool, for tests that must reach under the store.
    pub fn writer_pool(&self) -> &SqlitePool {
        &self.writer
    }
}

#[async_trait]
impl MigrationStore for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn cache_generation(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT generation FROM _cache_generation WHERE id = 1")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    async fn migrate(&self) -> Result<()> {
        // SQLite alters a column by rebuilding its table; with foreign keys on,
        // dropping the old table would cascade deletes to the rows that point at
        // it. Migrations therefore run on their own connection with foreign keys
        // off (the pragma is ignored inside their transactions), and the keys
        // are checked once afterwards.
        let options = (*self.writer.connect_options()).clone().foreign_keys(false);
        let migrator_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let ran = MIGRATOR.run(&migrator_pool).await;
        migrator_pool.close().await;
        ran?;
        let broken: Vec<(String,)> =
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(&self.writer)
                .await?;
        if let Some((table,)) = broken.first() {
            return Err(crate::StoreError::Corrupt(format!(
                "after migrating, table {table} has rows whose foreign keys point nowhere"
            )));
        }
        Ok(())
    }

    async fn migration_status(&self) -> Result<Vec<MigrationStatus>> {
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.reader)
        .await?;
        let applied: Vec<(i64, Vec<u8>, bool)> = if exists.is_some() {
            sqlx::query_as(
                "SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version",
            )
            .fetch_all(&self.reader)
            .await?
        } else {
            Vec::new()
        };
        Ok(crate::model::compare_migrations(&MIGRATOR, &applied))
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        [
            ("sqlite_writer", &self.writer),
            ("sqlite_reader", &self.reader),
        ]
        .into_iter()
        .map(|(name, pool)| PoolStats {
            name,
            size: pool.size(),
            idle: pool.num_idle() as u32,
            max: pool.options().get_max_connections(),
        })
        .collect()
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}
