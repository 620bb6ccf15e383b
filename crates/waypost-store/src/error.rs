//! Storage errors: what callers branch on (not found, conflict) kept apart from
//! everything else, which is reported with its cause but no data.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound("row"),
            other => StoreError::Database(other),
        }
    }
}

impl StoreError {
    /// PostgreSQL chose this transaction as a deadlock's victim (or could
    /// not serialise it): nothing was written, and running it again is safe.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(db))
            if matches!(db.code().as_deref(), Some("40P01" | "40001")))
    }

    /// Maps a unique-constraint violation to `Conflict`, leaving other errors as they are.
    pub(crate) fn conflict_on_unique(e: sqlx::Error, what: &str) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return StoreError::Conflict(what.to_owned());
        }
        e.into()
    }
}

/// Why the database could not be opened at start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("unsupported scheme `{0}`: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedScheme(String),
    #[error("malformed URL: {0}")]
    Malformed(String),
    #[error("database unreachable: {0}")]
    Unreachable(String),
}
