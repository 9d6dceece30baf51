//! The `fawkes` binary itself: subcommands, configuration and startup.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn fawkes(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fawkes"));
    command
        .current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("fawkes runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn migrate_then_user_create_stores_an_admin() {
    let dir = tempfile::tempdir().expect("temp dir");
    let migrate = fawkes(dir.path(), &["migrate"], &[]);
    assert!(migrate.status.success(), "{}", text(&migrate));
    assert!(
        dir.path().join("fawkes_data/fawkes.db").is_file(),
        "the default SQLite file is created"
    );

    let args = [
        "user",
        "create",
        "--email",
        "Root@Example.com",
        "--username",
        "root",
        "--password",
        "a long password",
        "--role",
        "admin",
    ];
    let create = fawkes(dir.path(), &args, &[]);
    assert!(create.status.success(), "{}", text(&create));
    assert!(text(&create).contains("role admin"), "{}", text(&create));

    let again = fawkes(dir.path(), &args, &[]);
    assert!(
        !again.status.success(),
        "a second account with the same email is refused"
    );
    assert!(text(&again).contains("already exists"), "{}", text(&again));

    let weak = [
        "user",
        "create",
        "--email",
        "x@example.com",
        "--username",
        "x y",
        "--password",
        "short",
    ];
    let weak = fawkes(dir.path(), &weak, &[]);
    assert!(!weak.status.success());
    assert!(
        text(&weak).contains("password") && text(&weak).contains("username"),
        "{}",
        text(&weak)
    );
}

#[test]
fn config_prints_the_effective_values_with_secrets_masked() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("fawkes.toml"),
        "node_name = \"from-file\"\n[http]\nbody_limit_bytes = 2048\n",
    )
    .expect("write");
    let env = [
        (
            "FAWKES_SECRET_KEY",
            "0123456789abcdef0123456789abcdef-very-secret",
        ),
        ("DATABASE_URL", "postgres://app:hunter2@db.internal/fawkes"),
        ("FAWKES_BIND", "0.0.0.0:8080"),
    ];
    let output = fawkes(dir.path(), &["config", "--bind", "127.0.0.1:9999"], &env);
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("node_name = \"from-file\""), "{shown}");
    assert!(shown.contains("body_limit_bytes = 2048"), "{shown}");
    assert!(
        shown.contains("bind = \"127.0.0.1:9999\""),
        "flags win over env: {shown}"
    );
    assert!(
        shown.contains("postgres://app:***@db.internal/fawkes"),
        "{shown}"
    );
    assert!(
        !shown.contains("hunter2") && !shown.contains("very-secret"),
        "{shown}"
    );
}

#[test]
fn production_without_a_secret_refuses_to_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = fawkes(
        dir.path(),
        &["serve", "--env", "prod", "--bind", "127.0.0.1:0"],
        &[],
    );
    assert!(!output.status.success());
    assert!(
        text(&output).contains("FAWKES_SECRET_KEY"),
        "{}",
        text(&output)
    );
}

#[test]
fn serve_starts_on_sqlite_and_answers_health() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let mut child = Command::new(env!("CARGO_BIN_EXE_fawkes"))
        .current_dir(dir.path())
        .args(["--bind", &addr.to_string()])
        .env("FAWKES_LOG__FORMAT", "json")
        // At debug level the health request logs as it is served.
        .env("FAWKES_LOG__LEVEL", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .expect("fawkes starts");
    let stderr = child.stderr.take().expect("stderr");
    // The server logs when it listens; wait for that line rather than for a fixed time.
    // The reader is dropped once the server listens, so the server's stderr is a closed pipe
    // from then on: a log line it cannot write must not take the request (or the server) with
    // it.
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let listening = line.contains("fawkes listening");
        seen.push(line);
        if listening {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.contains("fawkes listening")),
        "the server never reported listening:\n{}",
        seen.join("\n")
    );
    let health = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).and_then(
        |mut stream| {
            use std::io::{Read, Write};
            stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        },
    );
    let _ = child.kill();
    let _ = child.wait();
    let health = health.expect("health answered");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    assert!(
        dir.path().join("fawkes_data/secret_key").is_file(),
        "a development key is generated and kept"
    );
}
