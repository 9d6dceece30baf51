//! The files in `deploy/` are checked so they cannot drift from the code: the example
//! configuration is accepted by the binary and documents every key the server has; and, where
//! the validators are installed, nginx, systemd and docker-compose accept their files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn installed(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: {tool} is not installed");
    }
    found
}

/// Every key of a configuration value, dotted (`socket.event_burst`, `topics.join`).
fn keys(value: &serde_json::Value, prefix: &str, into: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                let dotted = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match inner {
                    serde_json::Value::Object(_) => keys(inner, &dotted, into),
                    serde_json::Value::Array(items)
                        if items.iter().all(|i| i.is_object()) && !items.is_empty() =>
                    {
                        for item in items {
                            keys(item, &dotted, into);
                        }
                    }
                    _ => {
                        into.insert(dotted);
                    }
                }
            }
        }
        _ => {
            into.insert(prefix.to_owned());
        }
    }
}

/// The keys an example file shows, set or commented out (`# key = …`), with their section.
fn documented_keys(example: &str) -> BTreeSet<String> {
    let mut section = String::new();
    let mut found = BTreeSet::new();
    for line in example.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            section = header.to_owned();
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.to_owned();
            continue;
        }
        let candidate = line.trim_start_matches('#').trim();
        let Some((key, _)) = candidate.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        found.insert(if section.is_empty() {
            key.to_owned()
        } else {
            format!("{section}.{key}")
        });
    }
    found
}

#[test]
fn the_example_configuration_is_accepted_and_documents_every_key() {
    let example = repo("deploy/fawkes.example.toml");
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_fawkes"))
        .current_dir(dir.path())
        .arg("--config")
        .arg(&example)
        .arg("config")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("fawkes runs");
    assert!(output.status.success(), "{}", text(&output));
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains("node_name = \"fawkes@node1\""),
        "{printed}"
    );
    assert!(
        !printed.contains("change-me"),
        "the database password is masked: {printed}"
    );

    let mut expected = BTreeSet::new();
    let defaults = serde_json::to_value(fawkes::Config::default()).expect("config as JSON");
    keys(&defaults, "", &mut expected);
    let shown = documented_keys(&std::fs::read_to_string(&example).expect("example"));
    let missing: Vec<_> = expected.difference(&shown).collect();
    assert!(
        missing.is_empty(),
        "keys missing from deploy/fawkes.example.toml: {missing:?}"
    );
    let unknown: Vec<_> = shown.difference(&expected).collect();
    assert!(
        unknown.is_empty(),
        "keys the server does not have: {unknown:?}"
    );
}

#[test]
fn nginx_accepts_the_balancer_configuration() {
    if !installed("nginx") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // The compose upstream names hosts that only exist on the compose network.
    let compose_upstream = std::fs::read_to_string(repo("deploy/nginx/upstream.compose.conf"))
        .expect("upstream")
        .replace("fawkes1:", "127.0.0.1:")
        .replace("fawkes2:", "127.0.0.2:");
    let compose_path = dir.path().join("upstream.compose.conf");
    std::fs::write(&compose_path, compose_upstream).expect("write");
    for upstream in [repo("deploy/nginx/upstream.conf"), compose_path] {
        let d = dir.path().display();
        let conf = format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  include {};\n  include {};\n}}\n",
            upstream.display(),
            repo("deploy/nginx/fawkes.conf").display()
        );
        let main = dir.path().join("nginx.conf");
        std::fs::write(&main, conf).expect("write");
        let output = Command::new("nginx")
            .args(["-t", "-q", "-c"])
            .arg(&main)
            .output()
            .expect("nginx runs");
        assert!(
            output.status.success(),
            "{}: {}",
            upstream.display(),
            text(&output)
        );
    }
}

#[test]
fn systemd_accepts_the_units() {
    if !installed("systemd-analyze") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut units = Vec::new();
    for unit in [
        "fawkes.service",
        "fawkes-backup.service",
        "fawkes-backup.timer",
    ] {
        // `verify` checks that ExecStart's program exists: point it at the binary under test.
        let body = std::fs::read_to_string(repo(&format!("deploy/systemd/{unit}")))
            .expect("unit")
            .replace("/usr/local/bin/fawkes", env!("CARGO_BIN_EXE_fawkes"));
        let path = dir.path().join(unit);
        std::fs::write(&path, body).expect("write");
        units.push(path);
    }
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .expect("systemd-analyze runs");
    // It reports unknown keys and bad values as warnings with status 0: any output fails.
    let said = text(&output);
    assert!(output.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn docker_compose_accepts_the_compose_files() {
    if !installed("docker-compose") {
        return;
    }
    for file in ["deploy/compose.dev.yml", "deploy/compose.prod.yml"] {
        let output = Command::new("docker-compose")
            .arg("-f")
            .arg(repo(file))
            .args(["config", "-q"])
            .env("FAWKES_SECRET_KEY", "x".repeat(40))
            .env("POSTGRES_PASSWORD", "pw")
            .env("FAWKES_METRICS_TOKEN", "token")
            .output()
            .expect("docker-compose runs");
        assert!(output.status.success(), "{file}: {}", text(&output));
    }
    // The production file refuses to start without its secrets.
    let output = Command::new("docker-compose")
        .arg("-f")
        .arg(repo("deploy/compose.prod.yml"))
        .args(["config", "-q"])
        .env_remove("FAWKES_SECRET_KEY")
        .env_remove("POSTGRES_PASSWORD")
        .env_remove("FAWKES_METRICS_TOKEN")
        .output()
        .expect("docker-compose runs");
    assert!(!output.status.success());
}
