//! API contract: schemathesis (pinned in `tests/contract/requirements.txt`, installed into
//! `target/contract-venv` on first use) generates requests from `/api/openapi.json` and checks
//! that the server never answers 5xx, that every answer's status, content type and body are the
//! ones the document declares, and that what the document calls invalid is refused. Its
//! configuration is `tests/contract/schemathesis.toml`.
//!
//! A failure prints schemathesis's report, with a `curl` line per failing case. The seed is
//! fixed so a failure reproduces; `FAWKES_CONTRACT_SEED` runs another, and
//! `FAWKES_CONTRACT_EXAMPLES` more cases per operation.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Backend, TestServer, id_of};
use fawkes_domain::Role;
use serde_json::json;

/// Cases per operation and phase; enough to reach every operation's error paths in a debug
/// build within a minute or two.
const EXAMPLES: &str = "40";
const SEED: &str = "20261124";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_its_openapi_document_says_sqlite() {
    contract(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_its_openapi_document_says_postgres() {
    contract(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_its_openapi_document_says_mysql() {
    contract(Backend::MySql).await;
}

async fn contract(backend: Backend) {
    let schemathesis = install_schemathesis();
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let admin = s.user_with_role("root", Role::Admin).await;
    // A second session of the admin's, for the logout operation to end.
    let logout = common::session_from(s.login("root", None).await.expect(200));
    let ada = s.register("ada").await;
    let room = s.create_room(&admin, "contract", false).await;
    let slug = room["slug"].as_str().unwrap_or_default();
    s.post(
        &format!("/api/v1/rooms/{slug}/members"),
        Some(&admin.access_token),
        json!({ "user_id": ada.user_id }),
    )
    .await
    .expect(201);
    let message = s
        .create(
            &format!("/api/v1/rooms/{slug}/messages"),
            &admin.access_token,
            json!({ "body": "hello @ada" }),
        )
        .await;
    let comment = s
        .create(
            "/api/v1/videos/video-1/comments",
            &admin.access_token,
            json!({ "content": "first" }),
        )
        .await;
    let post = s
        .create(
            "/api/v1/posts",
            &admin.access_token,
            json!({ "title": "Contract", "body": "A published post." }),
        )
        .await;
    let post_id = id_of(&post);
    s.post(
        &format!("/api/v1/posts/{post_id}/publish"),
        Some(&admin.access_token),
        json!({}),
    )
    .await
    .expect(200);
    let post_comment = s
        .create(
            &format!("/api/v1/posts/{post_id}/comments"),
            &admin.access_token,
            json!({ "body": "a comment" }),
        )
        .await;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract");
    // Reports and anything else schemathesis writes stay out of the working tree.
    let scratch = tempfile::tempdir().expect("scratch dir");
    let seed = std::env::var("FAWKES_CONTRACT_SEED").unwrap_or_else(|_| SEED.to_owned());
    let examples =
        std::env::var("FAWKES_CONTRACT_EXAMPLES").unwrap_or_else(|_| EXAMPLES.to_owned());
    let run = tokio::process::Command::new(&schemathesis)
        .arg("--config-file")
        .arg(dir.join("schemathesis.toml"))
        .args(["run", &format!("{}/api/openapi.json", s.base)])
        .args(["--max-examples", &examples, "--seed", &seed])
        .args(["--workers", "1", "--no-color", "--request-timeout", "30"])
        .current_dir(scratch.path())
        .env("FAWKES_ADMIN_TOKEN", &admin.access_token)
        .env("FAWKES_LOGOUT_TOKEN", &logout.access_token)
        .env("FAWKES_USER", &ada.user_id)
        .env("FAWKES_ROOM", slug)
        .env("FAWKES_MESSAGE", id_of(&message))
        .env("FAWKES_VIDEO", "video-1")
        .env("FAWKES_COMMENT", id_of(&comment))
        .env("FAWKES_POST", &post_id)
        .env("FAWKES_POST_COMMENT", id_of(&post_comment))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .unwrap_or_else(|_| panic!("schemathesis did not finish within 5 minutes"))
        .expect("schemathesis runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(
        output.status.success(),
        "schemathesis found answers that break the OpenAPI document ({backend:?}, seed {seed}):\n{report}"
    );
    // The run must not have left the server unable to serve.
    s.get("/api/v1/me", &admin.access_token).await.expect(200);
}

/// The `schemathesis` executable of `target/contract-venv`, installed from the pinned
/// requirements when the venv is missing or was made from other pins.
fn install_schemathesis() -> PathBuf {
    // Tests of one binary run in parallel; one installation at a time.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let requirements = root.join("tests/contract/requirements.txt");
    let venv = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("contract-venv");
    let executable = venv.join("bin/schemathesis");
    // The venv keeps a copy of the pins it was installed from.
    let installed_from = venv.join("installed-requirements.txt");
    let pins = std::fs::read(&requirements).expect("tests/contract/requirements.txt");
    if executable.is_file() && std::fs::read(&installed_from).ok().as_ref() == Some(&pins) {
        return executable;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    run(
        std::process::Command::new(&python)
            .arg("-m")
            .arg("venv")
            .arg(&venv),
        "python3 -m venv (Debian: apt-get install python3-venv; .ci/run does it)",
    );
    run(
        std::process::Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
            ])
            .arg(&requirements),
        "pip install -r tests/contract/requirements.txt",
    );
    std::fs::write(&installed_from, &pins).expect("marker written");
    executable
}

fn run(command: &mut std::process::Command, what: &str) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("{what} could not start: {e}"));
    assert!(status.success(), "{what} failed: {status}");
}
