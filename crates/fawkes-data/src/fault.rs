//! What a database error says about the database itself rather than about the statement.
//!
//! A lost connection, a server shutting down or a disk that refuses a write are not bugs in the
//! request: the same request may succeed later, and the client should be told so (503/507)
//! rather than given a 500. Each backend reports these its own way; this is the one place that
//! knows how.

use sea_orm::sqlx;
use sea_orm::sqlx::error::DatabaseError;
use sea_orm::{DbErr, RuntimeErr};

/// A failure of the database rather than of the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The database cannot be reached or cannot work right now (connection refused or lost,
    /// server shutting down, file locked or unreadable, read-only after a failover).
    Unavailable,
    /// The database has no room left for the write.
    StorageFull,
}

/// The fault `err` reports, if it is one; `None` for errors of the statement itself.
pub fn fault(err: &DbErr) -> Option<Fault> {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Some(Fault::Unavailable),
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            sqlx_fault(e)
        }
        _ => None,
    }
}

fn sqlx_fault(err: &sqlx::Error) -> Option<Fault> {
    match err {
        // A connection that broke mid-statement surfaces here, not as a `DbErr::Conn`.
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Some(Fault::Unavailable),
        sqlx::Error::Database(e) => database_fault(e.as_ref()),
        _ => None,
    }
}

fn database_fault(err: &dyn DatabaseError) -> Option<Fault> {
    if let Some(e) = err.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        let code = e.code().and_then(|c| c.parse::<i32>().ok())?;
        return sqlite_fault(code);
    }
    if let Some(e) = err.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return postgres_fault(e.code());
    }
    if let Some(e) = err.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return mysql_fault(e.number());
    }
    None
}

/// SQLite result codes (<https://www.sqlite.org/rescode.html>); the low byte of an extended
/// code is its primary code.
fn sqlite_fault(extended: i32) -> Option<Fault> {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const READONLY: i32 = 8;
    // Also what a write past the process's file-size limit (EFBIG) or a quota gives:
    // SQLite reports FULL only for ENOSPC.
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    match extended & 0xff {
        FULL => Some(Fault::StorageFull),
        BUSY | LOCKED | READONLY | IOERR | CANTOPEN => Some(Fault::Unavailable),
        _ => None,
    }
}

/// PostgreSQL SQLSTATEs (<https://www.postgresql.org/docs/current/errcodes-appendix.html>).
fn postgres_fault(sqlstate: &str) -> Option<Fault> {
    match sqlstate {
        "53100" => Some(Fault::StorageFull),
        // connection_exception, insufficient_resources, admin/crash shutdown, cannot connect
        // now, read-only transaction (a standby after failover), io_error
        s if s.starts_with("08") || s.starts_with("53") => Some(Fault::Unavailable),
        "57P01" | "57P02" | "57P03" | "25006" | "58030" => Some(Fault::Unavailable),
        _ => None,
    }
}

/// MySQL/MariaDB error numbers.
fn mysql_fault(number: u16) -> Option<Fault> {
    match number {
        // ER_DISK_FULL, ER_RECORD_FILE_FULL ("the table is full")
        1021 | 1114 => Some(Fault::StorageFull),
        // too many connections, server shutdown, read-only (option, transaction, mode),
        // connection killed (MariaDB), disconnected for inactivity (MySQL 8)
        1040 | 1053 | 1290 | 1792 | 1836 | 1927 | 4031 => Some(Fault::Unavailable),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_codes_by_primary_code() {
        // SQLITE_IOERR_WRITE, as a write past a file-size limit reports
        assert_eq!(sqlite_fault(778), Some(Fault::Unavailable));
        assert_eq!(sqlite_fault(13), Some(Fault::StorageFull));
        // SQLITE_BUSY_SNAPSHOT
        assert_eq!(sqlite_fault(517), Some(Fault::Unavailable));
        // SQLITE_CONSTRAINT_UNIQUE is the statement's fault
        assert_eq!(sqlite_fault(2067), None);
    }

    #[test]
    fn postgres_and_mysql_codes() {
        assert_eq!(postgres_fault("53100"), Some(Fault::StorageFull));
        assert_eq!(postgres_fault("57P01"), Some(Fault::Unavailable));
        assert_eq!(postgres_fault("08006"), Some(Fault::Unavailable));
        assert_eq!(postgres_fault("23505"), None);
        assert_eq!(mysql_fault(1021), Some(Fault::StorageFull));
        assert_eq!(mysql_fault(1062), None);
    }

    #[test]
    fn lost_connections_are_unavailable() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        let err = DbErr::Query(RuntimeErr::SqlxError(std::sync::Arc::new(io)));
        assert_eq!(fault(&err), Some(Fault::Unavailable));
        let err = DbErr::Query(RuntimeErr::SqlxError(std::sync::Arc::new(
            sqlx::Error::RowNotFound,
        )));
        assert_eq!(fault(&err), None);
    }
}
