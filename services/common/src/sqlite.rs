//! TEMPORARY stand-in for main's `pushmail_common::sqlite` (replaced at merge).

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// Opening a SQLite file failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Its directory could not be made.
    #[error("cannot create {}", dir.display())]
    Dir {
        /// The directory.
        dir: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused.
    #[error("sqlite")]
    Sqlite(#[from] sqlx::Error),
}

/// Opens `path` (WAL, synchronous FULL, one connection) and runs `schema`.
pub async fn open(path: &Path, schema: &[&str]) -> Result<SqlitePool, OpenError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    for statement in schema {
        sqlx::query(sqlx::AssertSqlSafe(*statement))
            .execute(&pool)
            .await?;
    }
    Ok(pool)
}
