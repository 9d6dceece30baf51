//! Test harness: a real Fawkes server on a random loopback port, over a fresh database of the
//! chosen backend, spoken to with a real HTTP client.
//!
//! SQLite always runs. PostgreSQL and MariaDB run when `FAWKES_TEST_POSTGRES_URL` /
//! `FAWKES_TEST_MYSQL_URL` name a server (CI sets both); each test gets its own database there,
//! dropped when the test ends. A set URL whose server does not answer fails the test.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

pub mod live;
pub mod process;
pub mod prom;
pub mod socket;

use std::sync::atomic::{AtomicU64, Ordering};

use fawkes::Config;
use fawkes::server::Server;
use fawkes_domain::accounts::CreateUser;
use fawkes_domain::{Actor, Domain, Role};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The signing key of every test server, so tests can forge tokens with it.
pub const TEST_SECRET: &str = "test-secret-key-for-fawkes-integration-tests";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    fn server_url(self) -> Option<String> {
        let var = match self {
            Backend::Sqlite => return Some(String::new()),
            Backend::Postgres => "FAWKES_TEST_POSTGRES_URL",
            Backend::MySql => "FAWKES_TEST_MYSQL_URL",
        };
        std::env::var(var).ok().filter(|url| !url.is_empty())
    }
}

/// A database that exists for one test.
pub struct TestDatabase {
    pub url: String,
    /// For PostgreSQL/MySQL: the server URL and database name, to drop it afterwards.
    drop: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A new, empty database on `backend`; `None` when that backend is not configured.
    pub async fn for_backend(backend: Backend) -> Option<TestDatabase> {
        Some(Self::create(backend, backend.server_url()?).await)
    }

    async fn create(backend: Backend, server_url: String) -> TestDatabase {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        if backend == Backend::Sqlite {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("fawkes.db").display());
            return TestDatabase {
                url,
                drop: None,
                _dir: Some(dir),
            };
        }
        let name = format!(
            "fawkes_t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .get(..8)
                .unwrap_or("x")
        );
        let admin = Database::connect(server_url.as_str())
            .await
            .unwrap_or_else(|e| {
                panic!("{backend:?} test server at {server_url} does not answer: {e}")
            });
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = admin.close().await;
        let url = with_database(&server_url, &name);
        TestDatabase {
            url,
            drop: Some((server_url, name)),
            _dir: None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server_url, name)) = self.drop.take() else {
            return;
        };
        // Drop runs outside async; a short-lived runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(admin) = Database::connect(server_url.as_str()).await {
                        let force = if server_url.starts_with("postgres") {
                            " WITH (FORCE)"
                        } else {
                            ""
                        };
                        let _ = admin
                            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}{force}"))
                            .await;
                        let _ = admin.close().await;
                    }
                });
            }
        })
        .join();
    }
}

/// A fresh database for a test that runs the `fawkes` binary itself; dropped with it.
pub struct ScratchDatabase(TestDatabase);

impl ScratchDatabase {
    /// A new empty database on `backend`; `None` (skip) when that backend's URL is unset.
    pub async fn create(backend: Backend) -> Option<ScratchDatabase> {
        let server_url = backend.server_url()?;
        Some(ScratchDatabase(
            TestDatabase::create(backend, server_url).await,
        ))
    }

    pub fn url(&self) -> &str {
        &self.0.url
    }
}

/// `server_url` with its database (path) replaced by `name`.
fn with_database(server_url: &str, name: &str) -> String {
    let (base, query) = server_url
        .split_once('?')
        .map_or((server_url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// A running server for one test.
pub struct TestServer {
    pub backend: Backend,
    pub base: String,
    pub client: reqwest::Client,
    pub domain: Domain,
    /// The server's own pool, for tests that take the database away.
    pub db: sea_orm::DatabaseConnection,
    /// The server's channel endpoint.
    pub endpoint: fawkes_channels::Endpoint,
    pub config: Config,
    shutdown: CancellationToken,
    _database: TestDatabase,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A signed-in user as the API returned them.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub username: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// A response: status and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The error code of an error envelope.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts the status, with the body in the failure message.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        &self.body
    }

    /// Asserts an error envelope with this status and code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        self.expect(status);
        assert_eq!(
            self.code(),
            code,
            "unexpected error code; body: {}",
            self.body
        );
        assert!(
            self.body["error"]["message"].is_string(),
            "no message: {}",
            self.body
        );
    }
}

impl TestServer {
    /// Starts a server on `backend`; `None` (the test is skipped) when that backend's URL is unset.
    pub async fn start(backend: Backend) -> Option<TestServer> {
        Self::start_with(backend, |_| {}).await
    }

    /// Like `start`, with changes to the configuration.
    pub async fn start_with(
        backend: Backend,
        adjust: impl FnOnce(&mut Config),
    ) -> Option<TestServer> {
        fawkes_sync::install_crypto_provider();
        let Some(server_url) = backend.server_url() else {
            eprintln!(
                "skipped: {backend:?} is not configured (set FAWKES_TEST_POSTGRES_URL / FAWKES_TEST_MYSQL_URL)"
            );
            return None;
        };
        let database = TestDatabase::create(backend, server_url).await;
        Some(Self::start_on(backend, database, adjust).await)
    }

    /// Starts a server over an existing test database.
    pub async fn start_on(
        backend: Backend,
        database: TestDatabase,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        let mut config = Config {
            database_url: database.url.clone(),
            secret_key: Some(TEST_SECRET.to_owned()),
            ..Config::default()
        };
        config.database.max_connections = 5;
        // Tests sign up many users from one address and write quickly; the tests of the limits
        // turn them back on.
        config.rate_limit.auth_attempts = 0;
        config.rate_limit.writes = 0;
        adjust(&mut config);
        let server = Server::build(&config).await.expect("server builds");
        let domain = server.domain.clone();
        let db = server.db.clone();
        let endpoint = server.endpoint.clone();
        let listener = Server::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = CancellationToken::new();
        tokio::spawn(server.serve(listener, shutdown.clone()));
        TestServer {
            backend,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            domain,
            db,
            endpoint,
            config,
            shutdown,
            _database: database,
        }
    }

    /// Enqueues `kind` with `args` on the default queue and waits until the server's own worker
    /// completed it.
    pub async fn run_job(&self, kind: &str, args: Value) {
        use fawkes_jobs::{Jobs, NewJob, State, enqueue};
        let id = enqueue(&self.db, NewJob::new(kind, args))
            .await
            .expect("enqueued")
            .expect("not a duplicate");
        let jobs = Jobs::new(self.db.clone());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let job = jobs.get(id).await.expect("job");
            if job.state == State::Completed.as_str() {
                return;
            }
            assert!(
                job.state != State::Discarded.as_str(),
                "{kind} failed: {:?}",
                job.last_error
            );
            assert!(
                std::time::Instant::now() < deadline,
                "{kind} did not run: {:?}",
                job.last_error
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The bus the server's channels listen on.
    pub fn endpoint_bus(&self) -> fawkes_pubsub::PubSub {
        self.endpoint.bus().clone()
    }

    /// How many connections were dropped as slow consumers.
    pub fn slow_consumer_disconnects(&self) -> u64 {
        self.endpoint
            .stats()
            .slow_consumer_disconnects
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends a request; `body` as JSON when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        Self::reply(response).await
    }

    /// Sends raw bytes with a content type.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Self::reply(request.send().await.expect("request sent")).await
    }

    async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Registers `name` (email `name@example.com`, password `password-of-name`) and returns the session.
    pub async fn register(&self, name: &str) -> Session {
        let body = json!({ "email": format!("{name}@example.com"), "username": name, "password": password_of(name) });
        let reply = self.post("/api/v1/auth/register", None, body).await;
        session_from(reply.expect(201))
    }

    /// Logs `name` in, optionally from a device.
    pub async fn login(&self, name: &str, device_id: Option<&str>) -> Reply {
        let mut body = json!({ "login": name, "password": password_of(name) });
        if let Some(device_id) = device_id {
            body["device_id"] = json!(device_id);
            body["device_name"] = json!(format!("{name}'s {device_id}"));
        }
        self.post("/api/v1/auth/login", None, body).await
    }

    /// Creates an account with `role` through the operator's path, then logs it in.
    pub async fn user_with_role(&self, name: &str, role: Role) -> Session {
        let input = CreateUser {
            email: format!("{name}@example.com"),
            username: name.to_owned(),
            password: password_of(name),
            role: Some(role),
        };
        self.domain
            .accounts
            .create_user(&Actor::System, input)
            .await
            .expect("user created");
        session_from(self.login(name, None).await.expect(200))
    }

    /// POSTs `body` to `path` as `token`, expects 201 and returns the created resource.
    pub async fn create(&self, path: &str, token: &str, body: Value) -> Value {
        self.post(path, Some(token), body).await.expect(201).clone()
    }

    /// Creates the room `slug` (named `Room {slug}`) as `owner` and returns it.
    pub async fn create_room(&self, owner: &Session, slug: &str, private: bool) -> Value {
        let body = json!({ "slug": slug, "name": format!("Room {slug}"), "is_private": private });
        self.create("/api/v1/rooms", &owner.access_token, body)
            .await
    }

    /// One page of the paginated list at `path`, at most `limit` items from `cursor` on (both are
    /// added to the query string): the page's items and its `next_cursor`.
    pub async fn read_page(
        &self,
        path: &str,
        token: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> (Vec<Value>, Option<String>) {
        let mut request = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .query(&[("limit", limit)]);
        if let Some(cursor) = cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let reply = Self::reply(request.send().await.expect("request sent")).await;
        let page = reply.expect(200);
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let next = match &page["next_cursor"] {
            Value::String(next) => Some(next.clone()),
            Value::Null => None,
            other => panic!("next_cursor is neither a string nor null: {other}"),
        };
        (items, next)
    }

    /// Every item of the paginated list at `path`, `limit` at a time, following `next_cursor`
    /// until it is null; also the size of each page, in the order the pages were read.
    pub async fn read_pages(
        &self,
        path: &str,
        token: &str,
        limit: u32,
    ) -> (Vec<Value>, Vec<usize>) {
        let mut all = Vec::new();
        let mut sizes = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let (items, next) = self.read_page(path, token, limit, cursor.as_deref()).await;
            sizes.push(items.len());
            all.extend(items);
            match next {
                Some(next) => cursor = Some(next),
                None => return (all, sizes),
            }
            assert!(sizes.len() < 1000, "pagination of {path} does not end");
        }
    }

    /// The ids of every item of the paginated list at `path`, in the order listed.
    pub async fn listed_ids(&self, path: &str, token: &str) -> Vec<String> {
        let (items, _) = self.read_pages(path, token, 100).await;
        items.iter().map(id_of).collect()
    }
}

/// The `id` of a resource the API returned (empty when it has none).
pub fn id_of(resource: &Value) -> String {
    resource["id"].as_str().unwrap_or_default().to_owned()
}

pub fn password_of(name: &str) -> String {
    format!("password-of-{name}")
}

pub fn session_from(body: &Value) -> Session {
    Session {
        user_id: body["user"]["id"].as_str().expect("user id").to_owned(),
        username: body["user"]["username"]
            .as_str()
            .expect("username")
            .to_owned(),
        access_token: body["access_token"]
            .as_str()
            .expect("access token")
            .to_owned(),
        refresh_token: body["refresh_token"]
            .as_str()
            .expect("refresh token")
            .to_owned(),
    }
}

/// Declares each listed `async fn name(server: TestServer)` as one test per backend:
/// `sqlite::name`, `postgres::name` and `mysql::name`.
#[macro_export]
macro_rules! on_every_database {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(server) = $crate::common::TestServer::start($crate::common::Backend::Sqlite).await {
                        super::$name(server).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(server) = $crate::common::TestServer::start($crate::common::Backend::Postgres).await {
                        super::$name(server).await;
                    }
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(server) = $crate::common::TestServer::start($crate::common::Backend::MySql).await {
                        super::$name(server).await;
                    }
                }
            )*
        }
    };
}

/// Installs the pinned client when `node_modules` is missing or older than the lockfile.
pub fn install_conformance_client(dir: &std::path::Path) {
    // Tests of one binary run in parallel; one `npm ci` at a time.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let installed = dir.join("node_modules/.package-lock.json");
    let lock = dir.join("package-lock.json");
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&installed).is_some() && modified(&installed) >= modified(&lock) {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("npm runs (Node.js and npm must be installed)");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

/// A LongPoll session opened on the first node keeps working while its posts and polls go to
/// the nodes in turn: it joins the lobby, posts, and gets both replies back.
pub async fn longpoll_across(bases: &[String], access_token: &str) {
    use std::time::{Duration, Instant};
    let client = reqwest::Client::new();
    let url =
        |base: &str, session: &str| format!("{base}/socket/longpoll?vsn=2.0.0&token={session}");
    let opened: Value = client
        .get(url(&bases[0], access_token))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(opened["status"], 410);
    let session = opened["token"].as_str().expect("session token").to_owned();
    let mut turn = 1;
    let mut next_base = || {
        turn += 1;
        bases[turn % bases.len()].clone()
    };
    let post = |base: String, frame: Value| {
        let request = client
            .post(url(&base, &session))
            .header("content-type", "application/x-ndjson")
            .body(frame.to_string());
        async move {
            request
                .send()
                .await
                .expect("sent")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    let joined = post(next_base(), json!(["1", "1", "room:lobby", "phx_join", {}])).await;
    assert_eq!(
        joined,
        json!({"status": 200}),
        "a post through another node"
    );
    let posted = post(
        next_base(),
        json!(["1", "2", "room:lobby", "new_msg", {"body": "longpoll across nodes"}]),
    )
    .await;
    assert_eq!(posted, json!({"status": 200}));
    let mut frames: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let complete = |frames: &[Value]| {
        frames
            .iter()
            .any(|f| f[3] == "phx_reply" && f[1] == "1" && f[4]["status"] == "ok")
            && frames
                .iter()
                .any(|f| f[3] == "new_msg" && f[4]["body"] == "longpoll across nodes")
    };
    while !complete(&frames) {
        assert!(
            Instant::now() < deadline,
            "the replies never came back through the nodes: {frames:?}"
        );
        let polled: Value = client
            .get(url(&next_base(), &session))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        assert!(
            polled["status"] == 200 || polled["status"] == 204,
            "{polled}"
        );
        for message in polled["messages"].as_array().cloned().unwrap_or_default() {
            frames
                .push(serde_json::from_str(message.as_str().unwrap_or("null")).unwrap_or_default());
        }
    }
}
