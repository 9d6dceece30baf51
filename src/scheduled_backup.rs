//! The recurring backup (`[backup]`): a job kind that writes `fawkes-<UTC time>.<ext>` into the
//! configured folder with [`crate::backup::backup`], then keeps only the newest `keep` of them.
//!
//! A backup is written under a `.partial` name and renamed when complete, so a file with the
//! final name is always a whole backup, and a crash mid-way never counts towards retention.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fawkes_data::sea_orm::DbBackend;
use fawkes_jobs::{JobContext, Registry};

use crate::Config;
use crate::backup::BackupError;

/// The job kind, and the name of its `[[jobs.cron]]` entry.
pub const KIND: &str = "backup";

const PREFIX: &str = "fawkes-";
const PARTIAL: &str = ".partial";

/// Registers the `backup` kind when `[backup] dir` is set.
pub fn register(registry: &Registry, config: &Config) {
    let Some(dir) = config.backup.dir.clone() else {
        return;
    };
    let config = Arc::new(config.clone());
    registry.register_fn(KIND, move |job: JobContext| {
        let config = config.clone();
        let dir = dir.clone();
        async move {
            // Retried with backoff on failure: the usual causes (a missing tool, a full disk,
            // the database away) are fixed by someone, not by giving up.
            let path = take(&config, &dir).await?;
            tracing::info!(job = %job.id, path = %path.display(), "backup written");
            Ok(())
        }
    });
}

/// Writes one backup into `dir` and prunes the old ones; returns the new file's path.
pub async fn take(config: &Config, dir: &Path) -> Result<PathBuf, BackupError> {
    let io = |source| BackupError::File {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let extension = extension(&config.database_url)?;
    // Fixed width, so the names sort by time.
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let name = format!("{PREFIX}{stamp}.{extension}");
    let finished = dir.join(&name);
    let partial = dir.join(format!("{name}{PARTIAL}"));
    if let Err(e) = crate::backup::backup(config, &partial).await {
        // A tool may have left half a file.
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, &finished).map_err(io)?;
    prune(dir, extension, config.backup.keep.max(1), &partial)?;
    Ok(finished)
}

/// What a backup of this database is called: SQLite copies a database file, PostgreSQL writes
/// `pg_dump`'s custom format, MySQL an SQL script.
fn extension(database_url: &str) -> Result<&'static str, BackupError> {
    Ok(match fawkes_data::connect::backend_of(database_url)? {
        DbBackend::Postgres => "pgdump",
        DbBackend::MySql => "sql",
        _ => "db",
    })
}

/// Deletes all but the newest `keep` backups, and partial files left by a crashed run (never
/// `current`, which is ours and already renamed). Other files in the folder are left alone.
fn prune(dir: &Path, extension: &str, keep: usize, current: &Path) -> Result<(), BackupError> {
    let io = |source| BackupError::File {
        path: dir.to_owned(),
        source,
    };
    let suffix = format!(".{extension}");
    let mut backups = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !name.starts_with(PREFIX) {
            continue;
        }
        if name.ends_with(PARTIAL) && entry.path() != current {
            let _ = std::fs::remove_file(entry.path());
        } else if name.ends_with(&suffix) {
            backups.push(name);
        }
    }
    backups.sort_unstable_by(|a, b| b.cmp(a));
    for old in backups.iter().skip(keep) {
        std::fs::remove_file(dir.join(old)).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_newest_and_only_touches_its_own_files()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        for name in [
            "fawkes-20260101T020000.000Z.db",
            "fawkes-20260102T020000.000Z.db",
            "fawkes-20260103T020000.000Z.db",
            "fawkes-20260103T020000.000Z.db.partial",
            "fawkes-20260102T020000.000Z.pgdump",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), b"x")?;
        }
        prune(dir.path(), "db", 2, &dir.path().join("none"))?;
        let mut left: Vec<String> = std::fs::read_dir(dir.path())?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "fawkes-20260102T020000.000Z.db",
                "fawkes-20260102T020000.000Z.pgdump",
                "fawkes-20260103T020000.000Z.db",
                "notes.txt",
            ]
        );
        Ok(())
    }
}
