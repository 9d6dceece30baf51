//! `fawkes backup PATH` and `fawkes restore PATH`.
//!
//! A backup is taken while the server runs and is consistent: SQLite copies itself inside one
//! read transaction (`VACUUM INTO`), `pg_dump` reads one snapshot, and `mysqldump
//! --single-transaction` one InnoDB snapshot. A restore goes into an empty database only, so it
//! can never mix a backup with live data; the backup carries its migration history, and the next
//! `fawkes serve` or `fawkes migrate` brings it up to the running version.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use fawkes_data::sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::Config;

/// Why a backup or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Connect(#[from] fawkes_data::ConnectError),
    #[error("database error: {0}")]
    Db(#[from] fawkes_data::sea_orm::DbErr),
    #[error("{0} already exists; a backup never overwrites a file")]
    Exists(PathBuf),
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error("cannot read or write {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{tool}` was not found: install the {package} client tools (same major version as the \
         server or newer) or put them on PATH"
    )]
    ToolMissing {
        tool: &'static str,
        package: &'static str,
    },
    #[error("`{tool}` failed ({status}): {stderr}")]
    ToolFailed {
        tool: &'static str,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("the database URL cannot be read: {0}")]
    Url(String),
    #[error("an in-memory SQLite database cannot be backed up or restored")]
    InMemory,
    #[error(
        "the target database is not empty (it has {tables} tables): restore only into a new, \
         empty database"
    )]
    NotEmpty { tables: i64 },
    #[error("{0} is not a backup made by `fawkes backup`")]
    Unknown(PathBuf),
    #[error(
        "{path} is not a {expected} backup (it looks like {found}); restore it into a {found} database"
    )]
    WrongKind {
        path: PathBuf,
        expected: &'static str,
        found: &'static str,
    },
}

/// Writes a consistent copy of the configured database to `path`.
pub async fn backup(config: &Config, path: &Path) -> Result<(), BackupError> {
    if path.exists() {
        return Err(BackupError::Exists(path.to_owned()));
    }
    let url = &config.database_url;
    match fawkes_data::connect::backend_of(url)? {
        DbBackend::Postgres => {
            let target = PgTarget::parse(url)?;
            let mut command = tokio::process::Command::new("pg_dump");
            command
                .args(["--format=custom", "--no-owner", "--no-privileges", "--file"])
                .arg(path)
                .arg(format!("--dbname={}", target.url));
            target.password_env(&mut command);
            run(command, "pg_dump", "PostgreSQL").await
        }
        DbBackend::MySql => {
            let target = MySqlTarget::parse(url)?;
            let mut command = tokio::process::Command::new("mysqldump");
            command
                .args([
                    "--single-transaction",
                    "--quick",
                    "--hex-blob",
                    "--no-tablespaces",
                    "--skip-lock-tables",
                    "--routines",
                    "--triggers",
                ])
                .arg(format!("--result-file={}", path.display()));
            target.connection_args(&mut command);
            command.arg(&target.database);
            run(command, "mysqldump", "MySQL/MariaDB").await
        }
        _ => {
            fawkes_data::connect::sqlite_file(url).ok_or(BackupError::InMemory)?;
            let db = crate::server::open_database(config)
                .await
                .map_err(server_error)?;
            let target = path
                .to_str()
                .ok_or_else(|| BackupError::Url(path.display().to_string()))?;
            // One read transaction: writers go on, the copy is of one instant.
            db.execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "VACUUM INTO ?",
                [target.into()],
            ))
            .await?;
            db.close().await?;
            Ok(())
        }
    }
}

/// Restores the backup at `path` into the configured database, which must be empty.
pub async fn restore(config: &Config, path: &Path) -> Result<(), BackupError> {
    if !path.is_file() {
        return Err(BackupError::Missing(path.to_owned()));
    }
    let url = &config.database_url;
    let backend = fawkes_data::connect::backend_of(url)?;
    check_kind(path, backend)?;
    if backend == DbBackend::Sqlite {
        return restore_sqlite(config, path).await;
    }
    let db = crate::server::open_database(config)
        .await
        .map_err(server_error)?;
    refuse_non_empty(&db).await?;
    db.close().await?;
    if backend == DbBackend::Postgres {
        let target = PgTarget::parse(url)?;
        let mut command = tokio::process::Command::new("pg_restore");
        command
            .args([
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
            ])
            .arg(format!("--dbname={}", target.url))
            .arg(path);
        target.password_env(&mut command);
        run(command, "pg_restore", "PostgreSQL").await
    } else {
        let target = MySqlTarget::parse(url)?;
        let mut command = tokio::process::Command::new("mysql");
        target.connection_args(&mut command);
        command.arg(&target.database);
        let input = std::fs::File::open(path).map_err(|source| BackupError::File {
            path: path.to_owned(),
            source,
        })?;
        command.stdin(Stdio::from(input));
        run(command, "mysql", "MySQL/MariaDB").await
    }
}

/// A SQLite backup is a database file: it becomes the database once the target is known to
/// be empty (and so not in use by a server, which would have migrated it).
async fn restore_sqlite(config: &Config, path: &Path) -> Result<(), BackupError> {
    let file =
        fawkes_data::connect::sqlite_file(&config.database_url).ok_or(BackupError::InMemory)?;
    if file.exists() {
        let db = crate::server::open_database(config)
            .await
            .map_err(server_error)?;
        refuse_non_empty(&db).await?;
        db.close().await?;
    }
    let io = |source| BackupError::File {
        path: file.clone(),
        source,
    };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // The empty database's journal files would be replayed over the copy.
    for suffix in ["-wal", "-shm"] {
        let mut journal = file.clone().into_os_string();
        journal.push(suffix);
        match std::fs::remove_file(&journal) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
    }
    // Copied next to the target, then renamed over it: never a half-written database.
    let mut partial = file.clone().into_os_string();
    partial.push(".restoring");
    let partial = PathBuf::from(partial);
    std::fs::copy(path, &partial).map_err(io)?;
    std::fs::rename(&partial, &file).map_err(io)?;
    Ok(())
}

async fn refuse_non_empty(db: &DatabaseConnection) -> Result<(), BackupError> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()"
        }
        DbBackend::MySql => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
        }
        _ => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    };
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?;
    let tables: i64 = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    if tables > 0 {
        return Err(BackupError::NotEmpty { tables });
    }
    Ok(())
}

/// Reads the first bytes of a backup to refuse one made by another backend.
fn check_kind(path: &Path, backend: DbBackend) -> Result<(), BackupError> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let read = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|source| BackupError::File {
            path: path.to_owned(),
            source,
        })?;
    let head = &head[..read];
    let found = if head.starts_with(b"SQLite format 3\0") {
        "SQLite"
    } else if head.starts_with(b"PGDMP") {
        "PostgreSQL"
    } else if ["-- MySQL dump", "-- MariaDB dump"]
        .iter()
        .any(|mark| String::from_utf8_lossy(head).contains(mark))
    {
        // Not necessarily on the first line: recent MariaDB dumps open with a sandbox comment.
        "MySQL/MariaDB"
    } else {
        return Err(BackupError::Unknown(path.to_owned()));
    };
    let expected = match backend {
        DbBackend::Postgres => "PostgreSQL",
        DbBackend::MySql => "MySQL/MariaDB",
        _ => "SQLite",
    };
    if found == expected {
        Ok(())
    } else {
        Err(BackupError::WrongKind {
            path: path.to_owned(),
            expected,
            found,
        })
    }
}

/// Runs a client tool, turning "not installed" into an error that says so.
async fn run(
    mut command: tokio::process::Command,
    tool: &'static str,
    package: &'static str,
) -> Result<(), BackupError> {
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    let output = match command.output().await {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BackupError::ToolMissing { tool, package });
        }
        Err(source) => {
            return Err(BackupError::File {
                path: PathBuf::from(tool),
                source,
            });
        }
    };
    if output.status.success() {
        return Ok(());
    }
    Err(BackupError::ToolFailed {
        tool,
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

/// A PostgreSQL URL split so the password travels in the environment, never on a command
/// line that `ps` shows.
struct PgTarget {
    url: String,
    password: Option<String>,
}

impl PgTarget {
    fn parse(raw: &str) -> Result<Self, BackupError> {
        let mut url = url::Url::parse(raw).map_err(|e| BackupError::Url(e.to_string()))?;
        let password = url.password().map(decode);
        let _ = url.set_password(None);
        Ok(Self {
            url: url.to_string(),
            password,
        })
    }

    fn password_env(&self, command: &mut tokio::process::Command) {
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password);
        }
    }
}

/// The parts of a MySQL URL that the client tools take as options.
struct MySqlTarget {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    database: String,
}

impl MySqlTarget {
    fn parse(raw: &str) -> Result<Self, BackupError> {
        let url = url::Url::parse(raw).map_err(|e| BackupError::Url(e.to_string()))?;
        let database = url.path().trim_start_matches('/').to_owned();
        if database.is_empty() {
            return Err(BackupError::Url("the URL names no database".to_owned()));
        }
        Ok(Self {
            host: url.host_str().unwrap_or("localhost").to_owned(),
            port: url.port().unwrap_or(3306),
            user: decode(url.username()),
            password: url.password().map(decode),
            database,
        })
    }

    fn connection_args(&self, command: &mut tokio::process::Command) {
        command
            .arg("--protocol=TCP")
            .arg(format!("--host={}", self.host))
            .arg(format!("--port={}", self.port));
        if !self.user.is_empty() {
            command.arg(format!("--user={}", self.user));
        }
        // Read by both MySQL's and MariaDB's clients; kept off the command line.
        if let Some(password) = &self.password {
            command.env("MYSQL_PWD", password);
        }
    }
}

/// Userinfo in a URL is percent-encoded.
fn decode(part: &str) -> String {
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}

fn server_error(error: crate::server::ServerError) -> BackupError {
    match error {
        crate::server::ServerError::Connect(e) => BackupError::Connect(e),
        other => BackupError::Url(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_leave_the_url_for_the_environment() -> Result<(), BackupError> {
        let pg = PgTarget::parse("postgres://app:p%40ss@db:5432/fawkes?sslmode=require")?;
        assert_eq!(pg.url, "postgres://app@db:5432/fawkes?sslmode=require");
        assert_eq!(pg.password.as_deref(), Some("p@ss"));
        let my = MySqlTarget::parse("mysql://root:s3cret@127.0.0.1:3307/fawkes")?;
        assert_eq!(
            (
                my.host.as_str(),
                my.port,
                my.user.as_str(),
                my.database.as_str()
            ),
            ("127.0.0.1", 3307, "root", "fawkes")
        );
        assert_eq!(my.password.as_deref(), Some("s3cret"));
        assert!(MySqlTarget::parse("mysql://root@host/").is_err());
        Ok(())
    }
}
