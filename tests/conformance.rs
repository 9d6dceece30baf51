//! Runs the conformance suite in `conformance/`: the official `phoenix` npm client, installed
//! from the lockfile, driving a real Fawkes server over WebSocket and LongPoll.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{Backend, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_phoenix_client_works_unchanged() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance");
    common::install_conformance_client(&dir);
    let server = TestServer::start_with(Backend::Sqlite, |c| c.socket.longpoll_window_secs = 2)
        .await
        .expect("sqlite always runs");
    // The suite publishes binary broadcasts, which takes an admin.
    server
        .user_with_role("conformance-admin", fawkes_domain::Role::Admin)
        .await;
    let run = tokio::process::Command::new("node")
        .args([
            "--test",
            "--test-concurrency=1",
            "--test-timeout=30000",
            "--test-reporter=spec",
            "phoenix.test.mjs",
        ])
        .current_dir(&dir)
        .env("FAWKES_URL", &server.base)
        .env("FAWKES_ADMIN_LOGIN", "conformance-admin")
        .env(
            "FAWKES_ADMIN_PASSWORD",
            common::password_of("conformance-admin"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    // Each case has its own 30 s limit; this bounds the whole run should node itself hang.
    let output = tokio::time::timeout(std::time::Duration::from_secs(300), run)
        .await
        .expect("the conformance suite finishes")
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(
        output.status.success(),
        "the phoenix.js conformance suite failed:\n{report}"
    );
}
