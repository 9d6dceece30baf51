//! Faults with real processes: a server killed with SIGKILL right after acknowledging messages
//! (on every database), a SQLite database whose file can no longer grow (a file-size limit on
//! the server process stands in for a full disk), and a private PostgreSQL stopped and started
//! under a running server. What an acknowledged write promises, and what a client is told when
//! the storage fails, are asserted over HTTP and the channel socket only.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::socket::connect_raw;
use common::{Backend, ScratchDatabase, TEST_SECRET};
use reqwest::Method;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Value, json};

/// How long a client waits for any answer. Generous: the database's acquire timeout is 1 s, so
/// a request that runs into this did not fail fast.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A `fawkes serve` process over a database the test owns, so it can be killed and started
/// again on the same data. Its log is copied from a pipe, which no file-size limit applies to.
struct Fawkes {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    env: Vec<(String, String)>,
    /// Shell commands run before `exec fawkes serve` (limits, ignored signals).
    prelude: Option<String>,
    runs: u32,
    client: reqwest::Client,
}

impl Fawkes {
    async fn start(dir: &Path, database_url: &str, extra: &[(&str, &str)]) -> Fawkes {
        Self::start_with_prelude(dir, database_url, extra, None).await
    }

    async fn start_with_prelude(
        dir: &Path,
        database_url: &str,
        extra: &[(&str, &str)],
        prelude: Option<&str>,
    ) -> Fawkes {
        fawkes_sync::install_crypto_provider();
        let mut env: Vec<(String, String)> = [
            ("FAWKES_DATABASE_URL", database_url),
            ("FAWKES_SECRET_KEY", TEST_SECRET),
            ("FAWKES_DATA_DIR", &dir.display().to_string()),
            ("FAWKES_RATE_LIMIT__WRITES", "0"),
            ("FAWKES_RATE_LIMIT__AUTH_ATTEMPTS", "0"),
            ("FAWKES_LOG__LEVEL", "info"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let mut fawkes = Fawkes {
            child: None,
            port: free_port(),
            dir: dir.to_owned(),
            env,
            prelude: prelude.map(str::to_owned),
            runs: 0,
            client: reqwest::Client::builder()
                .timeout(CLIENT_TIMEOUT)
                .build()
                .expect("client"),
        };
        fawkes.spawn().await;
        fawkes
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(format!("fawkes-{}.log", self.runs))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Starts the process and waits until `/health` answers.
    async fn spawn(&mut self) {
        self.runs += 1;
        let binary = env!("CARGO_BIN_EXE_fawkes");
        let bind = format!("127.0.0.1:{}", self.port);
        let mut command = match &self.prelude {
            // `exec` keeps the pid, so signals and `prlimit --pid` reach the server itself.
            Some(prelude) => {
                let mut c = Command::new("bash");
                c.args(["-c", &format!("{prelude}; exec \"$0\" \"$@\"")])
                    .args([binary, "serve", "--bind", &bind]);
                c
            }
            None => {
                let mut c = Command::new(binary);
                c.args(["serve", "--bind", &bind]);
                c
            }
        };
        command
            .current_dir(&self.dir)
            .env_remove("RUST_LOG")
            .env_remove("DATABASE_URL")
            .envs(self.env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("fawkes starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut log = std::fs::File::create(self.log_path()).expect("log file");
        // Drains the pipe for the process's whole life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let health = self
                .client
                .get(format!("{}/health", self.base()))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                self.is_running(),
                "fawkes exited before answering:\n{}",
                self.log()
            );
            assert!(
                Instant::now() < deadline,
                "fawkes never answered:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL: no shutdown, nothing flushed that was not flushed already.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a request; `Err` only when no HTTP answer came (refused, reset, timed out).
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status, body))
    }

    /// A request that must be answered, with the log in the failure message.
    async fn answered(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        match self.call(method, path, token, body).await {
            Ok(answer) => answer,
            Err(e) => panic!("{path} was not answered: {e}\n{}", self.log()),
        }
    }

    /// Registers `name` and returns its access token.
    async fn register(&self, name: &str) -> String {
        let body = json!({
            "email": format!("{name}@example.com"),
            "username": name,
            "password": common::password_of(name),
        });
        let (status, reply) = self
            .answered(Method::POST, "/api/v1/auth/register", None, Some(body))
            .await;
        assert_eq!(status, 201, "register: {reply}");
        reply["access_token"]
            .as_str()
            .expect("access token")
            .to_owned()
    }

    async fn create_room(&self, token: &str, slug: &str) {
        let body = json!({ "slug": slug, "name": format!("Room {slug}"), "is_private": false });
        let (status, reply) = self
            .answered(Method::POST, "/api/v1/rooms", Some(token), Some(body))
            .await;
        assert_eq!(status, 201, "create room: {reply}");
    }

    /// The ids of every message of `slug`, following `next_cursor`.
    async fn message_ids(&self, token: &str, slug: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/rooms/{slug}/messages?limit=100");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let (status, page) = self.answered(Method::GET, &path, Some(token), None).await;
            assert_eq!(status, 200, "list messages: {page}\n{}", self.log());
            for item in page["items"].as_array().cloned().unwrap_or_default() {
                ids.push(item["id"].as_str().unwrap_or_default().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return ids,
            }
        }
    }
}

impl Drop for Fawkes {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Asserts an error envelope: a JSON body with `error.code` and `error.message`.
#[track_caller]
fn assert_envelope(status: u16, body: &Value) {
    assert!(
        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
        "a {status} without the error envelope: {body}"
    );
}

// --- 1. An acknowledged message survives SIGKILL ---------------------------------------------

/// Messages pushed over the socket, all at once.
const PUSHED: usize = 25;
/// The process is killed the instant this many of them are acknowledged, so the kill lands
/// while the rest are still being written.
const ACKNOWLEDGED: usize = 20;

async fn acknowledged_messages_survive_sigkill(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch;
    let database_url = if backend == Backend::Sqlite {
        format!("sqlite://{}", dir.path().join("fawkes.db").display())
    } else {
        let Some(database) = ScratchDatabase::create(backend).await else {
            eprintln!("skipped: {backend:?} is not configured");
            return;
        };
        scratch = database;
        scratch.url().to_owned()
    };
    let mut fawkes = Fawkes::start(dir.path(), &database_url, &[]).await;
    let token = fawkes.register("ada").await;
    fawkes.create_room(&token, "durable").await;

    let ws = fawkes.base().replacen("http://", "ws://", 1);
    let mut socket = connect_raw(
        &format!("{ws}/socket/websocket?token={token}&vsn=2.0.0"),
        &[],
    )
    .await
    .expect("socket connects");
    let joined = socket.join("room:durable", "1", json!({})).await;
    assert_eq!(joined[4]["status"], "ok", "join: {joined}");

    for i in 0..PUSHED {
        let body = json!({ "body": format!("durable {i}") });
        socket
            .send(json!([
                "1",
                format!("m{i}"),
                "room:durable",
                "new_msg",
                body
            ]))
            .await;
    }
    let mut acknowledged: Vec<String> = Vec::new();
    while acknowledged.len() < ACKNOWLEDGED {
        let frame = socket.next_json().await;
        if frame[3] != "phx_reply" {
            continue; // the room's own broadcasts of the new messages
        }
        assert_eq!(frame[4]["status"], "ok", "a push was refused: {frame}");
        let id = frame[4]["response"]["id"].as_str().expect("message id");
        acknowledged.push(id.to_owned());
    }
    fawkes.kill();

    fawkes.spawn().await;
    let stored = fawkes.message_ids(&token, "durable").await;
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {ACKNOWLEDGED} acknowledged messages were lost on {backend:?}: {lost:?}",
        lost.len()
    );
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acknowledged_messages_survive_sigkill() {
        super::acknowledged_messages_survive_sigkill(crate::common::Backend::Sqlite).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acknowledged_messages_survive_sigkill() {
        super::acknowledged_messages_survive_sigkill(crate::common::Backend::Postgres).await;
    }
}

mod mysql {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acknowledged_messages_survive_sigkill() {
        super::acknowledged_messages_survive_sigkill(crate::common::Backend::MySql).await;
    }
}

// --- 2. A full disk on SQLite -----------------------------------------------------------------

/// The largest file the server may write, in KiB: room for the migrated schema, then a few
/// hundred large messages.
const FILE_LIMIT_KB: u64 = 2048;

/// A message body of 4000 characters of three bytes each (the longest body allowed).
fn large_body(i: usize) -> String {
    let mut body = format!("{i} ");
    while body.chars().count() < 4000 {
        body.push('€');
    }
    body
}

/// Posts large messages to the room `full` until one is refused for lack of space; those
/// answered 201 join `created`.
async fn fill_until_refused(fawkes: &Fawkes, token: &str, created: &mut Vec<String>, from: usize) {
    for i in from..from + 5000 {
        let (status, reply) = fawkes
            .answered(
                Method::POST,
                "/api/v1/rooms/full/messages",
                Some(token),
                Some(json!({ "body": large_body(i) })),
            )
            .await;
        match status {
            201 => created.push(reply["id"].as_str().expect("id").to_owned()),
            503 | 507 => {
                assert_envelope(status, &reply);
                assert!(
                    ["storage_full", "service_unavailable"]
                        .contains(&reply["error"]["code"].as_str().unwrap_or_default()),
                    "a write refused for lack of space says so: {reply}"
                );
                return;
            }
            other => panic!(
                "a write to a full database answered {other}: {reply}\n{}",
                fawkes.log()
            ),
        }
    }
    panic!("the database never filled up past {FILE_LIMIT_KB} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_is_reported_and_recovers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", dir.path().join("fawkes.db").display());
    // A write past the limit fails with EFBIG instead of killing the process: an ignored
    // signal stays ignored across exec.
    // The soft limit only, so that lifting it needs no privilege.
    let prelude = format!("ulimit -S -f {FILE_LIMIT_KB}; trap '' XFSZ");
    let mut fawkes =
        Fawkes::start_with_prelude(dir.path(), &database_url, &[], Some(&prelude)).await;
    let token = fawkes.register("ada").await;
    fawkes.create_room(&token, "full").await;

    // Several refusals: the failure is not a one-off, and the server still answers. (Writes
    // may succeed between them when a checkpoint frees log space.)
    let mut created: Vec<String> = Vec::new();
    for round in 0..5 {
        fill_until_refused(&fawkes, &token, &mut created, 10_000 * round).await;
    }
    assert!(
        !created.is_empty(),
        "no write succeeded before the limit: the limit is too small for the schema"
    );
    assert!(fawkes.is_running(), "the server died:\n{}", fawkes.log());
    let (status, _) = fawkes.answered(Method::GET, "/health", None, None).await;
    assert_eq!(status, 200);

    // A push over a socket is refused with a reason, and the socket stays usable.
    let ws = fawkes.base().replacen("http://", "ws://", 1);
    let mut socket = connect_raw(
        &format!("{ws}/socket/websocket?token={token}&vsn=2.0.0"),
        &[],
    )
    .await
    .expect("socket connects");
    let joined = socket.join("room:full", "1", json!({})).await;
    assert_eq!(joined[4]["status"], "ok", "join: {joined}");
    // A write can fit in log space that a checkpoint freed meanwhile, and is then stored: a
    // push answered `ok` counts as stored below, and the disk is filled again before the next.
    let mut push_refused = false;
    for i in 0..10 {
        if i > 0 {
            fill_until_refused(&fawkes, &token, &mut created, 200_000 + 10_000 * i).await;
        }
        let body = json!({ "body": large_body(50_000 + i) });
        let push_ref = format!("p{i}");
        socket
            .send(json!(["1", push_ref, "room:full", "new_msg", body]))
            .await;
        let reply = loop {
            let frame = socket.next_json().await;
            if frame[3] == "phx_reply" && frame[1] == push_ref.as_str() {
                break frame;
            }
        };
        if reply[4]["status"] == "ok" {
            created.push(reply[4]["response"]["id"].as_str().expect("id").to_owned());
            continue;
        }
        assert_eq!(reply[4]["status"], "error", "{reply}");
        assert_eq!(reply[4]["response"]["reason"], "unavailable", "{reply}");
        push_refused = true;
        break;
    }
    assert!(push_refused, "no push was refused on the full disk");
    let pong = socket.heartbeat("beat").await;
    assert_eq!(pong[4]["status"], "ok", "the socket still answers: {pong}");

    // Reads still work, and hold exactly the writes that were answered 201.
    let stored = fawkes.message_ids(&token, "full").await;
    let mut expected = created.clone();
    expected.sort();
    let mut listed = stored.clone();
    listed.sort();
    assert_eq!(
        listed, expected,
        "the stored messages are exactly those answered 201"
    );

    // An edit is refused, or stored: never answered 200 and lost. (It may fit in log space
    // already written, so success is allowed; the newest message is on the first page.)
    let edited = created.last().expect("a message").clone();
    for i in 0..3 {
        let body = large_body(60_000 + i);
        let (status, reply) = fawkes
            .answered(
                Method::PATCH,
                &format!("/api/v1/messages/{edited}"),
                Some(&token),
                Some(json!({ "body": body })),
            )
            .await;
        match status {
            200 => {
                let (_, page) = fawkes
                    .answered(
                        Method::GET,
                        "/api/v1/rooms/full/messages",
                        Some(&token),
                        None,
                    )
                    .await;
                let stored = page["items"]
                    .as_array()
                    .and_then(|items| items.iter().find(|m| m["id"] == edited.as_str()))
                    .map(|m| m["body"].clone());
                assert_eq!(stored, Some(json!(body)), "an edit answered 200 is stored");
            }
            503 | 507 => assert_envelope(status, &reply),
            other => panic!("an edit on a full disk answered {other}: {reply}"),
        }
    }

    // A single-row write of another context (a post draft) is refused, or stored: the same
    // check, through `store::insert_row`. The disk is filled again before each try.
    let mut post_refused = false;
    for i in 0..3 {
        fill_until_refused(&fawkes, &token, &mut created, 300_000 + 10_000 * i).await;
        let body: String = large_body(70_000 + i).repeat(5);
        let (status, reply) = fawkes
            .answered(
                Method::POST,
                "/api/v1/posts",
                Some(&token),
                Some(json!({ "title": format!("draft {i}"), "body": body })),
            )
            .await;
        match status {
            201 => {
                let id = reply["id"].as_str().expect("post id");
                let (status, stored) = fawkes
                    .answered(
                        Method::GET,
                        &format!("/api/v1/posts/{id}"),
                        Some(&token),
                        None,
                    )
                    .await;
                assert_eq!(status, 200, "a post answered 201 is stored: {stored}");
                assert_eq!(stored["body"], json!(body), "a post answered 201 is stored");
            }
            503 | 507 => {
                assert_envelope(status, &reply);
                post_refused = true;
            }
            other => panic!("a post on a full disk answered {other}: {reply}"),
        }
    }
    assert!(post_refused, "no post was refused on the full disk");

    // Space comes back: writes succeed again without a restart.
    let lifted = Command::new("prlimit")
        .args(["--pid", &fawkes.pid().to_string(), "--fsize=unlimited"])
        .status()
        .expect("prlimit runs (util-linux)");
    assert!(lifted.success(), "prlimit failed");
    for i in 0..10 {
        let body = json!({ "body": large_body(100_000 + i) });
        let (status, reply) = fawkes
            .answered(
                Method::POST,
                "/api/v1/rooms/full/messages",
                Some(&token),
                Some(body),
            )
            .await;
        assert_eq!(
            status,
            201,
            "a write after space came back: {reply}\n{}",
            fawkes.log()
        );
        created.push(reply["id"].as_str().expect("id").to_owned());
    }
    let (status, reply) = fawkes
        .answered(
            Method::PATCH,
            &format!("/api/v1/messages/{edited}"),
            Some(&token),
            Some(json!({ "body": "edited once space came back" })),
        )
        .await;
    assert_eq!(status, 200, "an edit after space came back: {reply}");
    let stored = fawkes.message_ids(&token, "full").await;
    let missing: Vec<usize> = (0..created.len())
        .filter(|&i| !stored.contains(&created[i]))
        .collect();
    assert!(
        missing.is_empty() && stored.len() == created.len(),
        "every 201 is stored, once: {} stored of {}, missing the writes numbered {missing:?}\n{}",
        stored.len(),
        created.len(),
        fawkes.log()
    );
    assert!(fawkes.is_running(), "the server died:\n{}", fawkes.log());
}

// --- 3. PostgreSQL goes away while traffic flows ----------------------------------------------

/// A PostgreSQL instance of the test's own, in a temp folder on a free port, so stopping it
/// disturbs nobody else. Stopped (immediately) when dropped.
struct PrivatePostgres {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// `initdb` and `postgres` refuse to run as root; then they run as the `postgres` user.
    as_postgres: bool,
}

impl PrivatePostgres {
    fn bindir() -> PathBuf {
        let from_pg_config = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|dir| dir.join("initdb").is_file());
        if let Some(dir) = from_pg_config {
            return dir;
        }
        // Debian puts the server binaries beside each other per major version.
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path().join("bin"))
                    .filter(|bin| bin.join("initdb").is_file())
                    .collect()
            })
            .unwrap_or_default();
        versions.sort_by_key(|bin| {
            bin.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        });
        versions
            .pop()
            .expect("PostgreSQL server binaries (initdb, pg_ctl) are installed")
    }

    fn init() -> PrivatePostgres {
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let postgres = PrivatePostgres {
            bindir: Self::bindir(),
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
            as_postgres: is_root,
        };
        if is_root {
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(postgres.dir.path())
                .status()
                .expect("chown runs");
            assert!(chown.success(), "chown of the PostgreSQL folder failed");
        }
        postgres.run(
            "initdb",
            &[
                "-D",
                &postgres.data().display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        postgres
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let tool = self.bindir.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(tool);
            c
        } else {
            Command::new(tool)
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        command
    }

    #[track_caller]
    fn run(&self, tool: &str, args: &[&str]) {
        let output = self
            .command(tool, args)
            .output()
            .unwrap_or_else(|e| panic!("{tool} runs: {e}"));
        assert!(
            output.status.success(),
            "{tool} {args:?} failed: {}\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts the server and waits until it accepts connections.
    fn start(&self) {
        let options = format!(
            "-k {} -c listen_addresses=127.0.0.1 -p {}",
            self.dir.path().display(),
            self.port
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &self.dir.path().join("postgres.log").display().to_string(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// `-m immediate`: every backend is gone at once, like a crash of the database host.
    fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self
            .command("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// What one request of the trickle got: the phase it was sent in and its answer.
#[derive(Debug)]
struct Outcome {
    phase: u8,
    write: bool,
    answer: Result<(u16, Value), String>,
}

/// A read (`GET` of the room's messages) or a write (`POST` of one); `Err` when unanswered.
async fn messages_request(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    write: bool,
    body: &str,
) -> Result<(u16, Value), String> {
    let request = if write {
        client
            .post(format!("{base}/api/v1/rooms/outage/messages"))
            .json(&json!({ "body": body }))
    } else {
        client.get(format!("{base}/api/v1/rooms/outage/messages?limit=5"))
    };
    let response = request
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// Waits until the trickle has `count` answers to requests sent in `phase`.
async fn wait_for_outcomes(outcomes: &Mutex<Vec<Outcome>>, phase: u8, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answered = outcomes
            .lock()
            .expect("outcomes")
            .iter()
            .filter(|o| o.phase == phase)
            .count();
        if answered >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the trickle got {answered} answers in phase {phase}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Phases of the outage test, as the trickle sees them.
const BEFORE: u8 = 0;
const DOWN: u8 = 1;
const AFTER: u8 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_answers_503_and_recovers_without_restart() {
    // CI sets the URL and has the server binaries: there, this must run.
    if std::env::var("FAWKES_TEST_POSTGRES_URL").map_or(true, |u| u.is_empty()) {
        eprintln!("skipped: FAWKES_TEST_POSTGRES_URL is not set");
        return;
    }
    let postgres = PrivatePostgres::init();
    postgres.start();
    let dir = tempfile::tempdir().expect("temp dir");
    let fawkes = Fawkes::start(
        dir.path(),
        &postgres.url(),
        &[
            ("FAWKES_DATABASE__ACQUIRE_TIMEOUT_SECS", "1"),
            ("FAWKES_DATABASE__MAX_CONNECTIONS", "5"),
        ],
    )
    .await;
    let token = fawkes.register("ada").await;
    // Never used before the outage, so no node has its session cached: connecting with it
    // needs the database.
    let unchecked = fawkes.register("bob").await;
    fawkes.create_room(&token, "outage").await;
    let mut created: Vec<String> = Vec::new();
    for i in 0..5 {
        let (status, reply) = fawkes
            .answered(
                Method::POST,
                "/api/v1/rooms/outage/messages",
                Some(&token),
                Some(json!({ "body": format!("before {i}") })),
            )
            .await;
        assert_eq!(status, 201, "{reply}");
        created.push(reply["id"].as_str().expect("id").to_owned());
    }

    // A steady trickle of writes and reads through everything that follows.
    let phase = Arc::new(AtomicU8::new(BEFORE));
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let trickle = {
        let (base, token) = (fawkes.base(), token.clone());
        let (phase, outcomes, stop) = (phase.clone(), outcomes.clone(), stop.clone());
        let client = fawkes.client.clone();
        tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.is_cancelled() {
                i += 1;
                let write = i.is_multiple_of(2);
                let sent_in = phase.load(Ordering::SeqCst);
                let answer =
                    messages_request(&client, &base, &token, write, &format!("trickle {i}")).await;
                outcomes.lock().expect("outcomes").push(Outcome {
                    phase: sent_in,
                    write,
                    answer,
                });
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    wait_for_outcomes(&outcomes, BEFORE, 4).await;

    // Requests caught inside a query when the database goes: a lock of the test's holds them
    // there until the stop.
    let holder = sea_orm::Database::connect(postgres.url())
        .await
        .expect("the test connects to its PostgreSQL");
    let lock = holder.begin().await.expect("begin");
    lock.execute_unprepared("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let stuck: Vec<_> = (0..4u32)
        .map(|i| {
            let (client, base, token) = (fawkes.client.clone(), fawkes.base(), token.clone());
            tokio::spawn(async move {
                messages_request(&client, &base, &token, i.is_multiple_of(2), "stuck").await
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Not through the locking transaction: within one transaction PostgreSQL answers
        // every read of pg_stat_activity from the same snapshot.
        let waiting = holder
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
            ))
            .await
            .expect("pg_stat_activity")
            .and_then(|row| row.try_get::<i64>("", "n").ok())
            .unwrap_or(0);
        if waiting >= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the requests never reached the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    postgres.stop();
    phase.store(DOWN, Ordering::SeqCst);
    drop(lock);
    for request in stuck {
        let answer = request.await.expect("the request ran");
        let (status, body) = answer.unwrap_or_else(|e| {
            panic!("a request in a query when the database went was not answered: {e}")
        });
        assert_eq!(
            status,
            503,
            "a request in a query when the database went: {body}\n{}",
            fawkes.log()
        );
        assert_envelope(status, &body);
        assert_eq!(body["error"]["code"], "service_unavailable", "{body}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = fawkes.answered(Method::GET, "/ready", None, None).await;
        if status == 503 {
            assert_eq!(body["checks"]["database"], "unavailable", "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/ready never noticed the database was gone: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = fawkes.answered(Method::GET, "/health", None, None).await;
    assert_eq!(status, 200, "liveness does not depend on the database");
    // Answered, not left to the client's timeout: 503 with the envelope.
    for _ in 0..3 {
        let (status, body) = fawkes
            .answered(
                Method::POST,
                "/api/v1/rooms/outage/messages",
                Some(&token),
                Some(json!({ "body": "during the outage" })),
            )
            .await;
        assert_eq!(status, 503, "a write while the database is down: {body}");
        assert_envelope(status, &body);
        assert_eq!(body["error"]["code"], "service_unavailable", "{body}");
        let (status, body) = fawkes
            .answered(
                Method::GET,
                "/api/v1/rooms/outage/messages",
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, 503, "a read while the database is down: {body}");
        assert_envelope(status, &body);
        assert_eq!(body["error"]["code"], "service_unavailable", "{body}");
    }

    // A socket whose token cannot be checked is told to come back (503), not that its token is
    // bad (403).
    let socket = format!(
        "ws://127.0.0.1:{}/socket/websocket?token={unchecked}&vsn=2.0.0",
        fawkes.port
    );
    let refusal = connect_raw(&socket, &[]).await.err().map(|r| r.status());
    assert_eq!(
        refusal,
        Some(Some(reqwest::StatusCode::SERVICE_UNAVAILABLE)),
        "a socket connecting during the outage"
    );

    postgres.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = fawkes.answered(Method::GET, "/ready", None, None).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/ready never came back after the database did: {status} {body}\n{}",
            fawkes.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    phase.store(AFTER, Ordering::SeqCst);
    for i in 0..5 {
        let (status, reply) = fawkes
            .answered(
                Method::POST,
                "/api/v1/rooms/outage/messages",
                Some(&token),
                Some(json!({ "body": format!("after {i}") })),
            )
            .await;
        assert_eq!(status, 201, "a write once the database is back: {reply}");
        created.push(reply["id"].as_str().expect("id").to_owned());
    }
    wait_for_outcomes(&outcomes, AFTER, 4).await;
    stop.cancel();
    trickle.await.expect("the trickle ran");
    let outcomes = std::mem::take(&mut *outcomes.lock().expect("outcomes"));

    for outcome in &outcomes {
        let (status, body) = match &outcome.answer {
            Ok(answer) => answer,
            Err(e) => panic!("a request was not answered: {e} ({outcome:?})"),
        };
        match (*status, outcome.phase) {
            (200 | 201, _) => {}
            // Sent before the stop was complete or before /ready saw the database back: either
            // answer is right, as long as a failure is a clean 503.
            (503, _) if outcome.phase != AFTER => {
                assert_envelope(*status, body);
                assert_eq!(body["error"]["code"], "service_unavailable", "{outcome:?}");
            }
            _ => panic!("the trickle got {status}: {outcome:?}\n{}", fawkes.log()),
        }
        if outcome.write && *status == 201 {
            created.push(body["id"].as_str().expect("id").to_owned());
        }
    }
    assert!(
        outcomes
            .iter()
            .any(|o| o.phase == DOWN && matches!(o.answer, Ok((503, _)))),
        "the trickle ran through the outage: {outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| o.phase == AFTER && matches!(o.answer, Ok((200 | 201, _)))),
        "the trickle ran after the outage: {outcomes:?}"
    );

    let stored = fawkes.message_ids(&token, "outage").await;
    for id in &created {
        assert!(stored.contains(id), "message {id} answered 201 is missing");
    }
}
