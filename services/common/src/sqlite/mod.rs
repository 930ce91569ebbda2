//! The one way an embedded store opens its SQLite file (standalone's data
//! directory): WAL with full synchronisation, so a write that returned is
//! on disk when the process is killed, and one connection, because
//! standalone is one process and SQLite has one writer anyway. Reads that
//! need not write may take a [`reader`] beside it: WAL lets them see the
//! last commit without queueing behind the writer's batch and its fsync.

mod group;

pub use self::group::{GroupCommit, GroupError};

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Why an embedded store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The directory that holds the file could not be created.
    #[error("creating {}: {source}", dir.display())]
    Directory {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite refused the file or a schema statement.
    #[error("opening {}: {source}", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Why.
        source: sqlx::Error,
    },
}

/// Opens (creating it and its directory) the SQLite file at `path` and
/// applies `schema`, statements that must be idempotent
/// (`CREATE … IF NOT EXISTS`).
pub async fn open(path: &Path, schema: &[&'static str]) -> Result<SqlitePool, OpenError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::Directory {
            dir: dir.to_owned(),
            source,
        })?;
    }
    let sqlite = |source| OpenError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(sqlite)?;
    for statement in schema {
        sqlx::query(*statement)
            .execute(&pool)
            .await
            .map_err(sqlite)?;
    }
    Ok(pool)
}

/// Most connections a [`reader`] pool opens.
const READERS: u32 = 2;

/// A pool for reads beside the writer of the file at `path`, which
/// [`open`] must have opened (it made the file and put it in WAL mode).
/// Its connections only read: a reader never takes SQLite's write lock,
/// so it never waits for a batch's commit.
pub async fn reader(path: &Path) -> Result<SqlitePool, OpenError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(Duration::from_secs(5));
    SqlitePoolOptions::new()
        .max_connections(READERS)
        .connect_with(options)
        .await
        .map_err(|source| OpenError::Sqlite {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_directory_is_created_and_the_schema_applies_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/store.db");
        let schema = ["CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)"];
        let pool = open(&path, &schema).await.unwrap();
        sqlx::query("INSERT INTO t (k) VALUES ('x')")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let pool = open(&path, &schema).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn a_reader_sees_commits_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let pool = open(
            &path,
            &["CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)"],
        )
        .await
        .unwrap();
        let reader = reader(&path).await.unwrap();
        // Opening a reader leaves the file as the writer set it.
        for pool in [&pool, &reader] {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
        }
        sqlx::query("INSERT INTO t (k) VALUES ('x')")
            .execute(&pool)
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&reader)
            .await
            .unwrap();
        assert_eq!(n, 1);
        let refused = sqlx::query("INSERT INTO t (k) VALUES ('y')")
            .execute(&reader)
            .await;
        assert!(refused.is_err());
    }

    #[tokio::test]
    async fn a_bad_statement_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let err = open(&path, &["NOT SQL"]).await.unwrap_err();
        assert!(err.to_string().contains("store.db"), "{err}");
    }
}
