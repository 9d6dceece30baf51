use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr};

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("unsupported database URL scheme in {0:?}: use sqlite://, postgres:// or mysql://")]
    UnsupportedScheme(String),
    #[error("cannot create the folder for the SQLite file {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to the database: {0}")]
    Db(#[from] DbErr),
}

/// Connection-pool sizing, from configuration.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The pool's size now: open connections and how many of them are idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    pub open: u32,
    pub idle: u32,
}

/// Reads the pool's counters (no query, no wait), for metrics.
pub fn pool_usage(db: &DatabaseConnection) -> PoolUsage {
    // The typed getters panic on the wrong backend, so the backend is asked first.
    let (open, idle) = match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DbBackend::MySql => {
            let pool = db.get_mysql_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        // DbBackend is non-exhaustive.
        _ => (0, 0),
    };
    PoolUsage {
        open,
        idle: u32::try_from(idle).unwrap_or(u32::MAX),
    }
}

/// Opens a pool for `url`, whose scheme picks the backend.
///
/// SQLite files are created along with their folder, and every SQLite connection runs in WAL mode
/// with a busy timeout so concurrent writers wait instead of failing.
pub async fn connect(url: &str, pool: &PoolOptions) -> Result<DatabaseConnection, ConnectError> {
    let backend = backend_of(url)?;
    let url = match backend {
        DbBackend::Sqlite => sqlite_url(url)?,
        _ => url.to_owned(),
    };
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(pool.max_connections)
        .min_connections(pool.min_connections)
        .acquire_timeout(pool.acquire_timeout)
        .connect_timeout(pool.acquire_timeout)
        .sqlx_logging(false);
    if backend == DbBackend::Sqlite {
        // The first statement each new SQLite connection runs; `journal_mode` is persistent but
        // `busy_timeout`, `synchronous` and `foreign_keys` are per connection.
        options.map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
        options.map_sqlx_sqlite_pool_opts(|pool| pool.after_release(sqlite_release_check));
    }
    Ok(Database::connect(options).await?)
}

/// Keeps a SQLite connection out of the pool when it comes back still inside a transaction.
///
/// When a `COMMIT` fails with an I/O error or a full disk, SQLite rolls the transaction back by
/// itself, but sqlx counts it as still open; the `ROLLBACK` sent when the transaction is dropped
/// then fails too, and the count stays at one. Handed out again, such a connection would turn
/// the next `BEGIN` into a `SAVEPOINT` inside a transaction that is never committed: writes
/// answered as stored, then lost, and the write lock held by an idle connection. Closing it
/// ends whatever SQLite still has open; the pool opens a fresh one.
fn sqlite_release_check(
    conn: &mut sea_orm::sqlx::sqlite::SqliteConnection,
    _meta: sea_orm::sqlx::pool::PoolConnectionMetadata,
) -> Pin<Box<dyn Future<Output = Result<bool, sea_orm::sqlx::Error>> + Send + '_>> {
    use sea_orm::sqlx::Connection;
    Box::pin(async move {
        // The rollback of a dropped transaction is queued on the connection's worker; a ping
        // queued behind it returns once it has run.
        conn.ping().await?;
        if conn.is_in_transaction() {
            tracing::warn!("closing a SQLite connection released inside a transaction");
            return Ok(false);
        }
        Ok(true)
    })
}

/// The backend a URL points at.
pub fn backend_of(url: &str) -> Result<DbBackend, ConnectError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => Ok(DbBackend::Sqlite),
        "postgres" | "postgresql" => Ok(DbBackend::Postgres),
        "mysql" | "mariadb" => Ok(DbBackend::MySql),
        _ => Err(ConnectError::UnsupportedScheme(redact_url(url))),
    }
}

/// The file a `sqlite://` URL names; `None` for an in-memory database or another backend.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?.trim_start_matches("//");
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// Makes sure the folder of a SQLite file exists and that the file is created on first use.
fn sqlite_url(url: &str) -> Result<String, ConnectError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        return Ok(url.to_owned());
    }
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|source| ConnectError::CreateDir {
            path: path.to_owned(),
            source,
        })?;
    }
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// The URL with any password replaced by `***`, for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split(':').next().unwrap_or_default();
    let masked = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        user.to_owned()
    };
    let slash = if rest.contains('/') { "/" } else { "" };
    format!("{scheme}://{masked}@{host}{slash}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_leave_redact_url() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/fawkes"),
            "postgres://app:***@db:5432/fawkes"
        );
        assert_eq!(
            redact_url("mysql://root@127.0.0.1/x"),
            "mysql://root@127.0.0.1/x"
        );
        assert_eq!(redact_url("sqlite://./a.db"), "sqlite://./a.db");
    }

    #[test]
    fn scheme_picks_backend() {
        assert_eq!(backend_of("sqlite://x.db").ok(), Some(DbBackend::Sqlite));
        assert_eq!(
            backend_of("postgresql://h/db").ok(),
            Some(DbBackend::Postgres)
        );
        assert_eq!(backend_of("mariadb://h/db").ok(), Some(DbBackend::MySql));
        assert!(backend_of("oracle://h/db").is_err());
    }

    #[test]
    fn sqlite_files_are_created_on_first_use() {
        let dir = std::env::temp_dir().join(format!("fawkes-{}", std::process::id()));
        let file = dir.join("nested").join("f.db");
        let url = format!("sqlite://{}", file.display());
        assert_eq!(sqlite_url(&url).ok(), Some(format!("{url}?mode=rwc")));
        assert!(file.parent().is_some_and(Path::is_dir));
        let _ = std::fs::remove_dir_all(dir);
    }
}
