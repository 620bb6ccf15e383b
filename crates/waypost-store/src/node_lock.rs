//! A dispatcher's claim to its identity, so a restarted process can take its
//! dead predecessor's leases at once instead of waiting for them to expire.
//!
//! SQLite: one process sends for a database; it holds an OS lock on a file
//! beside the database, which the kernel frees when the process dies, and uses
//! one fixed identity. PostgreSQL: a node configured with a stable identity
//! holds a session advisory lock on that identity on a connection of its own,
//! which the server frees when the connection dies. Holding the claim proves
//! that no live process uses the identity, so its row leases can be freed.

use std::any::Any;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;

use async_trait::async_trait;
use sqlx::Connection;

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{Result, StoreError};

/// Holds a claim while it lives.
pub struct OwnerGuard {
    _held: Box<dyn Any + Send>,
}

impl std::fmt::Debug for OwnerGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnerGuard")
    }
}

#[async_trait]
pub trait NodeLockStore {
    /// The identity every dispatcher of this database uses, where only one
    /// process may send for it (SQLite); `None` where nodes need their own.
    fn sole_owner(&self) -> Option<&'static str>;
    /// Claims `owner` for as long as the guard lives; `None` while another
    /// live process holds it.
    async fn hold_owner(&self, owner: &str) -> Result<Option<OwnerGuard>>;
    /// Frees the row leases `owner` holds (its dead predecessor's); call only
    /// while holding its claim. Returns how many were freed.
    async fn free_row_leases(&self, owner: &str) -> Result<u64>;
}

/// The lock file of a file database; `None` for an in-memory one (one process only).
pub(crate) fn lock_path(database: &std::path::Path) -> Option<PathBuf> {
    let name = database.to_string_lossy();
    if name.is_empty() || name == ":memory:" || name.starts_with("file:") {
        return None;
    }
    let mut path = database.as_os_str().to_owned();
    path.push(".dispatch-lock");
    Some(PathBuf::from(path))
}

#[async_trait]
impl NodeLockStore for SqliteStore {
    fn sole_owner(&self) -> Option<&'static str> {
        Some("node_sqlite")
    }

    async fn hold_owner(&self, _owner: &str) -> Result<Option<OwnerGuard>> {
        let Some(path) = self.lock_path().map(PathBuf::from) else {
            return Ok(Some(OwnerGuard {
                _held: Box::new(()),
            }));
        };
        let unavailable =
            |e: std::io::Error| StoreError::Unavailable(format!("{}: {e}", path.display()));
        let file: File = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(unavailable)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(OwnerGuard {
                _held: Box::new(file),
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(unavailable(e)),
        }
    }

    async fn free_row_leases(&self, owner: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE outbox SET lease_until = NULL WHERE lease_owner = $1 AND lease_until IS NOT NULL",
        )
        .bind(owner)
        .execute(self.writes())
        .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl NodeLockStore for PgStore {
    fn sole_owner(&self) -> Option<&'static str> {
        None
    }

    async fn hold_owner(&self, owner: &str) -> Result<Option<OwnerGuard>> {
        // A connection of its own: the lock lives exactly as long as it does.
        let mut conn = self.pool().acquire().await?.detach();
        let held: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtextextended('waypost-dispatch:' || $1, 0))",
        )
        .bind(owner)
        .fetch_one(&mut conn)
        .await?;
        if !held {
            let _ = conn.close().await;
            return Ok(None);
        }
        Ok(Some(OwnerGuard {
            _held: Box::new(conn),
        }))
    }

    async fn free_row_leases(&self, owner: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE outbox SET lease_until = NULL WHERE lease_owner = $1 AND lease_until IS NOT NULL",
        )
        .bind(owner)
        .execute(self.writes())
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_file_databases_have_a_lock_file() {
        assert_eq!(
            lock_path(std::path::Path::new("/var/lib/waypost/db.sqlite")),
            Some(PathBuf::from("/var/lib/waypost/db.sqlite.dispatch-lock"))
        );
        assert_eq!(lock_path(std::path::Path::new(":memory:")), None);
    }
}
