//! Job kinds for tests and benchmarks only, registered when `jobs.test_kinds` is on (never by
//! default): they let a test that runs the real binary see what a job did.
//!
//! - `test_record` `{path, sleep_ms}`: appends `start <job id> <attempt>` to the file `path`,
//!   sleeps `sleep_ms`, then appends `done <job id>`. A process killed during the sleep leaves a
//!   `start` without its `done`.
//! - `test_noop`: does nothing (the queue's own cost, for `fawkes-bench jobs`).

use std::io::Write;
use std::time::Duration;

use fawkes_jobs::{JobContext, JobError, Registry};
use serde::Deserialize;

pub const RECORD: &str = "test_record";
pub const NOOP: &str = "test_noop";

#[derive(Deserialize)]
struct RecordArgs {
    path: std::path::PathBuf,
    #[serde(default)]
    sleep_ms: u64,
}

fn append(path: &std::path::Path, line: &str) -> Result<(), JobError> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    // One write per line, flushed and synced, so a SIGKILL right after leaves it whole.
    file.write_all(format!("{line}\n").as_bytes())?;
    file.sync_all()?;
    Ok(())
}

async fn record(job: JobContext) -> Result<(), JobError> {
    let args: RecordArgs = job.args()?;
    append(&args.path, &format!("start {} {}", job.id, job.attempt))?;
    tokio::time::sleep(Duration::from_millis(args.sleep_ms)).await;
    append(&args.path, &format!("done {}", job.id))?;
    Ok(())
}

pub fn register(registry: &Registry) {
    registry.register_fn(RECORD, record);
    registry.register_fn(NOOP, |_job| async { Ok(()) });
}
