//! A job survives its server being killed: real `fawkes` processes on every database, killed
//! with SIGKILL while a job runs (and before another one was due), then started again. Each job
//! runs to completion exactly once. The jobs are of the test-only kind `test_record`
//! (`jobs.test_kinds`), which writes a `start` line when it begins and a `done` line when it
//! finishes to a file of the test's.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, ScratchDatabase};
use fawkes_jobs::{Jobs, NewJob, State, enqueue};
use serde_json::json;
use uuid::Uuid;

/// How long the recorded job works; the process is killed during this.
const WORK_MS: u64 = 3000;

fn start_fawkes(dir: &Path, database_url: &str, run: u32) -> Child {
    let log = std::fs::File::create(dir.join(format!("fawkes-{run}.log"))).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_fawkes"))
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .env("FAWKES_BIND", "127.0.0.1:0")
        .env("FAWKES_SECRET_KEY", common::TEST_SECRET)
        .env("FAWKES_JOBS__TEST_KINDS", "true")
        .env("FAWKES_JOBS__LEASE_SECS", "2")
        .env("FAWKES_JOBS__POLL_INTERVAL_MS", "100")
        .env("FAWKES_LOG__LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("fawkes starts")
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn wait_for<F: FnMut() -> bool>(what: &str, timeout: Duration, mut check: F) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_killed_server_runs_its_jobs_once_after_restart(backend: Backend) {
    let Some(database) = ScratchDatabase::create(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let running_file: PathBuf = dir.path().join("running.log");
    let later_file: PathBuf = dir.path().join("later.log");
    let mut first = start_fawkes(dir.path(), database.url(), 1);

    // The first process migrates; enqueue once the jobs table is there.
    // Like the server's own connection (SQLite: the file created if the server has not yet).
    let db = fawkes_data::connect(database.url(), &fawkes_data::PoolOptions::default())
        .await
        .expect("connect");
    let deadline = Instant::now() + Duration::from_secs(60);
    let running_id: Uuid = loop {
        let job = NewJob::new(
            fawkes::test_jobs::RECORD,
            json!({ "path": running_file, "sleep_ms": WORK_MS }),
        );
        match enqueue(&db, job).await {
            Ok(Some(id)) => break id,
            Ok(None) => unreachable!("not unique"),
            Err(e) => {
                assert!(Instant::now() < deadline, "never migrated: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // Due only after the kill: it must wait for the restarted server.
    let later_id = enqueue(
        &db,
        NewJob::new(
            fawkes::test_jobs::RECORD,
            json!({ "path": later_file, "sleep_ms": 0 }),
        )
        .delay(Duration::from_secs(WORK_MS / 1000 + 2)),
    )
    .await
    .expect("enqueue")
    .expect("new");

    wait_for("the job to start", Duration::from_secs(30), || {
        lines(&running_file).iter().any(|l| l.starts_with("start"))
    })
    .await;
    // SIGKILL: no graceful release, the lease is left to expire.
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    assert!(
        !lines(&running_file).iter().any(|l| l.starts_with("done")),
        "killed before the job finished"
    );
    assert!(lines(&later_file).is_empty(), "the later job had not run");

    let mut second = start_fawkes(dir.path(), database.url(), 2);
    let jobs = Jobs::new(db.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running = jobs.get(running_id).await.expect("job");
        let later = jobs.get(later_id).await.expect("job");
        if running.state == State::Completed.as_str() && later.state == State::Completed.as_str() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs not completed after restart: {} / {}\n{}",
            running.state,
            later.state,
            std::fs::read_to_string(dir.path().join("fawkes-2.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let a wrongly repeated run show itself before counting.
    tokio::time::sleep(Duration::from_millis(WORK_MS + 500)).await;
    let _ = second.kill();
    let _ = second.wait();

    let running_lines = lines(&running_file);
    let done: Vec<&String> = running_lines
        .iter()
        .filter(|l| l.starts_with("done"))
        .collect();
    assert_eq!(
        done.len(),
        1,
        "ran to completion exactly once: {running_lines:?}"
    );
    assert_eq!(
        running_lines
            .iter()
            .filter(|l| l.starts_with("start"))
            .count(),
        2,
        "the killed attempt, then one more: {running_lines:?}"
    );
    assert_eq!(jobs.get(running_id).await.expect("job").attempt, 2);
    let later_lines = lines(&later_file);
    assert_eq!(
        later_lines.len(),
        2,
        "started and done once: {later_lines:?}"
    );
    assert_eq!(jobs.get(later_id).await.expect("job").attempt, 1);
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_server_runs_its_jobs_once_after_restart() {
        super::a_killed_server_runs_its_jobs_once_after_restart(crate::common::Backend::Sqlite)
            .await
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_server_runs_its_jobs_once_after_restart() {
        super::a_killed_server_runs_its_jobs_once_after_restart(crate::common::Backend::Postgres)
            .await
    }
}

mod mysql {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_server_runs_its_jobs_once_after_restart() {
        super::a_killed_server_runs_its_jobs_once_after_restart(crate::common::Backend::MySql).await
    }
}
