//! The database behind the binding service: PostgreSQL in production,
//! SQLite standalone. The `BindingStore` trait over both arrives with the
//! data model ([2/9]); this is the connection both will share.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

use crate::config::DatabaseConfig;
use crate::error::Error;

/// A connection pool to one of the supported databases.
#[derive(Debug, Clone)]
pub enum Database {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite (standalone mode).
    Sqlite(SqlitePool),
}

impl Database {
    /// Connects, failing at start-up if the database cannot be reached.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, Error> {
        let url = config.url.expose();
        let timeout = Duration::from_millis(config.acquire_timeout_ms);
        let wrap = |e: sqlx::Error| Error::Database(format!("{}: {e}", config.url.masked()));
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(wrap)?
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(timeout);
            // A newcomer's first run must not fail on a missing data directory.
            if let Some(dir) = options
                .get_filename()
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::Database(format!("{}: {e}", dir.display())))?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(config.max_connections)
                .acquire_timeout(timeout)
                .connect_with(options)
                .await
                .map_err(wrap)?;
            Ok(Self::Sqlite(pool))
        } else {
            let options = PgConnectOptions::from_str(url).map_err(wrap)?;
            let pool = PgPoolOptions::new()
                .max_connections(config.max_connections)
                .acquire_timeout(timeout)
                .connect_with(options)
                .await
                .map_err(wrap)?;
            Ok(Self::Postgres(pool))
        }
    }

    /// A round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<(), String> {
        let result = match self {
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        };
        result.map_err(|e| e.to_string())
    }

    /// Closes the pool, waiting for checked-out connections.
    pub async fn close(&self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}
