//! Runs the browser suites in `e2e/`: each `e2e/<name>.test.mjs` drives Debian's headless
//! Chromium (through `playwright-core`, pinned in `e2e/package-lock.json`) against a real Fawkes
//! server over SQLite.
//!
//! To add a suite, write `e2e/<name>.test.mjs` (helpers in `e2e/lib.mjs`) and one function
//! here calling `run_browser_suite("<name>")`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Backend, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    run_browser_suite("smoke").await;
}

/// Runs `e2e/<name>.test.mjs` against a fresh server.
async fn run_browser_suite(name: &str) {
    // A Chromium per suite at once is too much for a small machine; suites take turns.
    static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_BROWSER.lock().await;
    let chromium = chromium();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e");
    common::install_conformance_client(&dir);
    let server = TestServer::start(Backend::Sqlite)
        .await
        .expect("sqlite always runs");
    run_suite_against(&server, &dir, &chromium, name, &[]).await;
}

/// The Chromium to drive: `CHROMIUM_PATH`, or Debian's.
fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM_PATH")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "no Chromium at {} (set CHROMIUM_PATH to another): install Debian's chromium: \
         apt-get install chromium; .ci/run does it",
        path.display()
    );
    path
}

/// `env` is for suites that need more than the URL, such as an account made beforehand.
async fn run_suite_against(
    server: &TestServer,
    dir: &Path,
    chromium: &Path,
    name: &str,
    env: &[(&str, &str)],
) {
    let file = format!("{name}.test.mjs");
    assert!(dir.join(&file).is_file(), "no e2e/{file}");
    let run = tokio::process::Command::new("node")
        .args([
            "--test",
            "--test-concurrency=1",
            "--test-timeout=60000",
            "--test-reporter=spec",
            &file,
        ])
        .current_dir(dir)
        .env("FAWKES_URL", &server.base)
        .env("CHROMIUM_PATH", chromium)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    // Each case has its own limit; this bounds the whole run should node or Chromium hang.
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .unwrap_or_else(|_| panic!("e2e/{file} did not finish within 5 minutes"))
        .expect("node runs (Node.js must be installed)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(
        output.status.success(),
        "the browser suite e2e/{file} failed:\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages() {
    run_browser_suite("pages").await;
}
