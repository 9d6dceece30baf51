//! A cluster of three real `fawkes serve` processes on one PostgreSQL database, joined by each
//! bus in turn (PostgreSQL, Redis, NATS): nodes behave as one, a killed node's users leave
//! everyone's presence within the timeout, and a restarted node converges.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::socket::{RawSocket, connect_raw};
use common::{Backend, TEST_SECRET, TestServer};
use serde_json::{Value, json};

/// A node is gone after this long without heartbeats (heartbeats every 200 ms).
const NODE_TIMEOUT_SECS: u64 = 2;

struct Node {
    child: Child,
    port: u16,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Node {
    fn start(port: u16, env: &[(String, String)]) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let child = spawn(port, env, dir.path());
        Node {
            child,
            port,
            env: env.to_vec(),
            dir,
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn socket_url(&self, token: &str) -> String {
        format!(
            "ws://127.0.0.1:{}/socket/websocket?token={token}&vsn=2.0.0",
            self.port
        )
    }

    /// SIGKILL: no goodbye, no leaves sent.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.child = spawn(self.port, &self.env, self.dir.path());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `fawkes serve` and returns once it logs that it listens.
fn spawn(port: u16, env: &[(String, String)], dir: &std::path::Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fawkes"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .envs(env.iter().cloned())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fawkes starts");
    let stderr = child.stderr.take().expect("stderr");
    let (listening, started) = mpsc::channel();
    // Keeps draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("fawkes listening") {
                let _ = listening.send(());
            }
        }
    });
    started
        .recv_timeout(Duration::from_secs(30))
        .expect("the node reported listening");
    child
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    listener.local_addr().expect("addr").port()
}

async fn call(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    fawkes_sync::install_crypto_provider();
    let client = reqwest::Client::new();
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Registers `name` through `node`; returns (access token, user id).
async fn register(node: &Node, name: &str, device: Option<&str>) -> (String, String) {
    let body = json!({"email": format!("{name}@example.com"), "username": name, "password": common::password_of(name)});
    let (status, reply) = call(
        reqwest::Method::POST,
        format!("{}/api/v1/auth/register", node.base()),
        None,
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{reply}");
    let id = reply["user"]["id"].as_str().unwrap_or_default().to_owned();
    let Some(device) = device else {
        return (
            reply["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            id,
        );
    };
    let login = json!({"login": name, "password": common::password_of(name), "device_id": device});
    let (status, reply) = call(
        reqwest::Method::POST,
        format!("{}/api/v1/auth/login", node.base()),
        None,
        Some(login),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    (
        reply["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        id,
    )
}

async fn joined_socket(node: &Node, token: &str) -> RawSocket {
    let mut socket = connect_raw(&node.socket_url(token), &[])
        .await
        .expect("socket connects");
    socket
        .send(json!(["1", "1", "room:lobby", "phx_join", {}]))
        .await;
    assert_eq!(socket.next_json().await[4]["status"], "ok");
    socket
}

/// The user ids in the lobby's presence as `node` reports it.
async fn present(node: &Node, token: &str) -> Vec<String> {
    let (_, state) = call(
        reqwest::Method::GET,
        format!("{}/api/v1/rooms/lobby/presence", node.base()),
        Some(token),
        None,
    )
    .await;
    let mut ids: Vec<String> = state
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Waits (bounded) until `node` reports exactly `expected` present; returns how long it took.
async fn converges(node: &Node, token: &str, expected: &[&String]) -> Duration {
    let started = Instant::now();
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    loop {
        let now = present(node, token).await;
        if now == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "node {} shows {now:?}, expected {expected:?}",
            node.port
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn cluster(bus: &str) {
    cluster_with(bus, None).await;
}

/// One cluster at a time: three debug builds of the server per test already fill two cores, and
/// the timing assertions must measure the nodes, not the scheduler.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn cluster_with(bus: &str, nats: Option<&mut NatsServer>) {
    let _alone = ONE_CLUSTER_AT_A_TIME.lock().await;
    let Some(seed) = TestServer::start(Backend::Postgres).await else {
        return;
    };
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", seed.config.database_url.as_str()),
        ("FAWKES_PUBSUB", bus),
        (
            "FAWKES_CLUSTER_NAME",
            &format!("cluster_{}", uuid::Uuid::new_v4().simple()),
        ),
        ("FAWKES_SECRET_KEY", TEST_SECRET),
        ("FAWKES_PRESENCE__HEARTBEAT_MS", "200"),
        ("FAWKES_PRESENCE__NODE_TIMEOUT_SECS", "2"),
        ("FAWKES_LOG__LEVEL", "info"),
        ("PATH", &std::env::var("PATH").unwrap_or_default()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let a = Node::start(free_port(), &env);
    let b = Node::start(free_port(), &env);
    let mut c = Node::start(free_port(), &env);
    for node in [&a, &b, &c] {
        let deadline = Instant::now() + Duration::from_secs(20);
        while call(
            reqwest::Method::GET,
            format!("{}/ready", node.base()),
            None,
            None,
        )
        .await
        .1["checks"]["bus"]
            != "ok"
        {
            assert!(
                Instant::now() < deadline,
                "node {} never joined the bus",
                node.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // A message posted on A reaches subscribers on B and C exactly once.
    let (ada, ada_id) = register(&a, "ada", None).await;
    let (bob, bob_id) = register(&a, "bob", None).await;
    let mut on_b = joined_socket(&b, &ada).await;
    let mut on_c = joined_socket(&c, &bob).await;
    let body = json!({"body": "to every node"});
    let (status, stored) = call(
        reqwest::Method::POST,
        format!("{}/api/v1/rooms/lobby/messages", a.base()),
        Some(&ada),
        Some(body),
    )
    .await;
    assert_eq!(status, 201);
    for socket in [&mut on_b, &mut on_c] {
        assert_eq!(
            socket.next_json().await,
            json!([null, null, "room:lobby", "new_msg", stored])
        );
        assert_eq!(socket.heartbeat("hb").await[1], "hb", "exactly once");
    }

    // The official client sees presence across nodes.
    phoenix_presence_across(&[&a, &b, &c]).await;

    // A LongPoll client whose requests alternate between the nodes keeps its session.
    common::longpoll_across(&[a.base(), b.base(), c.base()], &ada).await;

    // Presence is the same from every node.
    for node in [&a, &b, &c] {
        converges(node, &ada, &[&ada_id, &bob_id]).await;
    }

    // Revoking a device on A disconnects that device's socket on C.
    let (carol, _) = register(&a, "carol", Some("phone")).await;
    let mut carol_on_c = connect_raw(&c.socket_url(&carol), &[])
        .await
        .expect("socket connects");
    let (_, devices) = call(
        reqwest::Method::GET,
        format!("{}/api/v1/devices", a.base()),
        Some(&carol),
        None,
    )
    .await;
    let device = devices[0]["id"].as_str().unwrap_or_default().to_owned();
    let (status, _) = call(
        reqwest::Method::DELETE,
        format!("{}/api/v1/devices/{device}", a.base()),
        Some(&carol),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(carol_on_c.closed().await, Some(1001));

    // kill -9 C: bob (on C) leaves everyone's presence within the timeout.
    c.kill();
    let leave_after_kill = converges(&a, &ada, &[&ada_id]).await;
    converges(&b, &ada, &[&ada_id]).await;
    assert!(
        leave_after_kill < Duration::from_secs(NODE_TIMEOUT_SECS + 5),
        "took {leave_after_kill:?}"
    );

    // C restarted: a user joining there shows everywhere, and C sees the others.
    let restarted = Instant::now();
    c.restart();
    let (dave, dave_id) = register(&a, "dave", None).await;
    let _dave_on_c = joined_socket(&c, &dave).await;
    for node in [&a, &b, &c] {
        converges(node, &ada, &[&ada_id, &dave_id]).await;
    }
    let converge_after_restart = restarted.elapsed();
    eprintln!(
        "cluster[{bus}]: a killed node's users left in {leave_after_kill:?}; a restarted node converged in {converge_after_restart:?} (start included)"
    );

    // The bus connections are cut under the nodes; delivery resumes without a restart.
    if let Some(nats) = nats {
        nats.restart();
        delivery_resumes(&a, &mut on_b, &ada).await;
    } else if bus == "postgres" {
        cut_postgres_listeners(&seed).await;
        delivery_resumes(&a, &mut on_b, &ada).await;
    } else if bus.starts_with("redis") {
        let killed = Command::new("redis-cli")
            .args(["-u", bus, "CLIENT", "KILL", "TYPE", "pubsub"])
            .output();
        let killed = killed.expect("redis-cli runs");
        let count: u32 = String::from_utf8_lossy(&killed.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        assert!(
            count >= 3,
            "the nodes' subscriber connections were cut: {count}"
        );
        delivery_resumes(&a, &mut on_b, &ada).await;
    }
}

/// Runs `conformance/cluster.test.mjs` (phoenix.js `Presence`) against the three nodes.
async fn phoenix_presence_across(nodes: &[&Node]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance");
    common::install_conformance_client(&dir);
    let bases: Vec<String> = nodes.iter().map(|n| n.base()).collect();
    let run = tokio::process::Command::new("node")
        .args([
            "--test",
            "--test-timeout=30000",
            "--test-reporter=spec",
            "cluster.test.mjs",
        ])
        .current_dir(&dir)
        .env("FAWKES_URLS", bases.join(","))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the cluster suite finishes")
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "phoenix.js across the cluster failed:\n{report}"
    );
}

/// Terminates the LISTEN connections of the nodes' database.
async fn cut_postgres_listeners(seed: &TestServer) {
    use sea_orm::ConnectionTrait;
    let database = seed
        .config
        .database_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let terminate = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' AND query ILIKE 'LISTEN%'"
    );
    let killed = seed
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            terminate,
        ))
        .await
        .expect("terminate");
    assert!(!killed.is_empty(), "there were LISTEN connections to cut");
}

/// Posts on A until a message reaches B again (bounded).
async fn delivery_resumes(a: &Node, on_b: &mut RawSocket, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for attempt in 0.. {
        assert!(Instant::now() < deadline, "delivery never resumed");
        let body = json!({"body": format!("after the cut {attempt}")});
        let (_, stored) = call(
            reqwest::Method::POST,
            format!("{}/api/v1/rooms/lobby/messages", a.base()),
            Some(token),
            Some(body),
        )
        .await;
        // Messages published while B was reconnecting may be lost (at most once) or arrive
        // late; the one just posted arriving shows the bus is back.
        let window = Instant::now() + Duration::from_secs(1);
        while let Ok(frame) = tokio::time::timeout_at(window.into(), on_b.next_json()).await {
            if frame[4]["id"] == stored["id"] {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_the_postgres_bus() {
    cluster("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_the_redis_bus() {
    let Some(url) = std::env::var("FAWKES_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        return;
    };
    cluster(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_the_nats_bus() {
    if std::env::var("FAWKES_TEST_NATS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .is_none()
    {
        eprintln!("skipped: FAWKES_TEST_NATS_URL is not set");
        return;
    }
    // A NATS server of this test's own, so that it can be killed and restarted.
    let port = free_port();
    let mut nats = NatsServer::start(port);
    cluster_with(&format!("nats://127.0.0.1:{port}"), Some(&mut nats)).await;
}

/// A private `nats-server` (the machine's, from Debian's package) on its own port.
struct NatsServer {
    child: Child,
    port: u16,
}

impl NatsServer {
    fn start(port: u16) -> NatsServer {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("nats-server runs (install Debian's nats-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        NatsServer { child, port }
    }

    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        *self = NatsServer::start(self.port);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
