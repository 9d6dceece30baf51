//! `soak`: a mixed load held for a long time against one server, looking for what only time
//! shows: leaks (memory, files) and rare errors. At once, for `--duration`:
//!
//! - chat: `--rooms` public rooms of `--members` sockets each, every member posting `new_msg` at
//!   `--rate`; every message must reach every other member of its room;
//! - presence churn: `--presence-rate` times a second a churner opens a new socket with a
//!   fresh token, joins the presence room, stays `--hold` seconds, leaves and closes; each of
//!   the `--observers` must see the join and the leave as `presence_diff`;
//! - REST: `--rest-rate` requests a second, alternately an authenticated
//!   `GET /api/v1/rooms/<slug>/messages?limit=50` and a `POST` of a message to one of the chat
//!   rooms, which its members must then receive like any other.
//!
//! Every `--sample-every` seconds the server's RSS, CPU and open files are read from /proc and
//! a row is printed. Errors are counted by kind (failed REST calls by status, error replies,
//! replies that never came, sockets that dropped, deliveries that never arrived, presence diffs
//! that never arrived). The verdict: no error at all, and memory flat (see [`Memory`]). This is
//! the one scenario whose result fails the run: it checks correctness over time, not speed.
//!
//! Unless `--server-pid` names a running server, the run starts `fawkes serve` itself (the
//! binary next to this one, or `--fawkes-bin`) on a free port over a fresh SQLite file (or
//! `--database-url`), with the default configuration, and stops it at the end.
//!
//! Each simulated user is a client of its own: its REST calls come from a source address of
//! its own (127.0.1.x), as separate machines would, so the per-address limits of the server
//! apply per user, and its tokens are refreshed before they expire, as a real client does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, HEARTBEAT, Ws};
use crate::proc_stats::ProcStats;
use crate::stats::Summary;

/// A reply (join, leave, push, heartbeat) that has not come after this long is an error.
const REPLY_WITHIN: Duration = Duration::from_secs(10);
/// A message not received by every member this long after it was sent is undelivered.
const DELIVER_WITHIN: Duration = Duration::from_secs(10);
/// Every REST call is bounded by this.
const REST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Args, Clone, Debug)]
pub struct Params {
    /// Seconds of load (the full soak is 3600).
    #[arg(long, default_value_t = 300)]
    pub duration: u64,
    /// Seconds between two samples of the server.
    #[arg(long, default_value_t = 10)]
    pub sample_every: u64,
    /// Chat rooms.
    #[arg(long, default_value_t = 10)]
    pub rooms: usize,
    /// Sockets per chat room (at most 64), each a user of its own.
    #[arg(long, default_value_t = 5)]
    pub members: usize,
    /// Messages per second each chat member posts.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Sockets joined to the presence room for the whole run.
    #[arg(long, default_value_t = 20)]
    pub observers: usize,
    /// Users that take turns joining and leaving the presence room.
    #[arg(long, default_value_t = 10)]
    pub churners: usize,
    /// Presence joins per second, over all churners.
    #[arg(long, default_value_t = 2.0)]
    pub presence_rate: f64,
    /// Seconds a churner stays in the presence room.
    #[arg(long, default_value_t = 1.0)]
    pub hold: f64,
    /// REST requests per second (GET and POST alternately).
    #[arg(long, default_value_t = 10.0)]
    pub rest_rate: f64,
    /// Users the REST requests are spread over (each may write 300 times a minute).
    #[arg(long, default_value_t = 4)]
    pub rest_users: usize,
    /// Memory is flat when the RSS slope over the second half of the run, per hour, is below
    /// this percentage of the mean RSS…
    #[arg(long, default_value_t = 5.0)]
    pub max_growth_percent: f64,
    /// …or below this many MiB per hour.
    #[arg(long, default_value_t = 16.0)]
    pub max_growth_mib_per_hour: f64,
    /// The `fawkes` binary to start (default: the one next to `fawkes-bench`). Ignored with
    /// `--server-pid`, which soaks a server already running at `--url`.
    #[arg(long)]
    pub fawkes_bin: Option<PathBuf>,
    /// The database of the server the run starts (default: a fresh SQLite file).
    #[arg(long)]
    pub database_url: Option<String>,
}

/// The server's figures at one sample.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub seconds: f64,
    pub rss_bytes: u64,
    /// CPU-seconds per second since the previous sample (1.0 = one core).
    pub cpu_fraction: f64,
    pub open_files: usize,
    pub messages_sent: u64,
    pub deliveries: u64,
    pub rest_requests: u64,
    pub presence_cycles: u64,
    pub errors: u64,
}

/// Errors by kind. Any of them fails the run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ErrorCounts {
    /// REST answers that were not 2xx, by status (token refreshes included).
    pub rest_status: BTreeMap<u16, u64>,
    /// REST calls that got no answer (connection refused or reset).
    pub rest_transport: u64,
    pub rest_timeouts: u64,
    /// `error` replies to joins, leaves and pushes, and `phx_error`/`phx_close` pushes.
    pub channel_errors: u64,
    /// Joins, leaves, pushes and heartbeats with no reply after 10 s.
    pub reply_timeouts: u64,
    /// Sockets the client could not open (connect or upgrade failed).
    pub connect_failures: u64,
    /// Sockets that closed while they should have stayed open.
    pub unexpected_disconnects: u64,
    /// (message, member) pairs: a message stored but not received by that member in 10 s.
    pub undelivered: u64,
    /// A member received the same message twice.
    pub duplicates: u64,
    /// Presence diffs an observer should have seen and did not.
    pub presence_diffs_missed: u64,
    /// The server process ended during the run.
    pub server_exited: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.rest_status.values().sum::<u64>()
            + self.rest_transport
            + self.rest_timeouts
            + self.channel_errors
            + self.reply_timeouts
            + self.connect_failures
            + self.unexpected_disconnects
            + self.undelivered
            + self.duplicates
            + self.presence_diffs_missed
            + self.server_exited
    }
}

/// The memory verdict: a least-squares line through the RSS samples of the run's second half
/// (the first half is warm-up: caches, pools and allocator arenas fill), its slope scaled to
/// an hour. Flat when that growth per hour is below `max_growth_percent` of the mean RSS or
/// below `max_growth_mib_per_hour`, whichever allows more. A leak of a few hundred bytes per
/// message or per connection shows as tens of MiB per hour at the default rates.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub rss_start_bytes: u64,
    pub rss_end_bytes: u64,
    pub rss_peak_bytes: u64,
    pub fit_from_seconds: f64,
    pub fit_samples: usize,
    pub second_half_mean_bytes: f64,
    pub slope_mib_per_hour: f64,
    pub bound_mib_per_hour: f64,
    pub flat: bool,
}

#[derive(Debug, Serialize)]
pub struct SoakResult {
    pub scenario: &'static str,
    pub label: String,
    pub server: String,
    pub duration_seconds: f64,
    pub rooms: usize,
    pub members: usize,
    pub rate_per_member: f64,
    pub observers: usize,
    pub churners: usize,
    pub presence_rate: f64,
    pub rest_rate: f64,
    pub messages_sent: u64,
    pub messages_stored: u64,
    pub deliveries_expected: u64,
    pub deliveries: u64,
    /// Deliveries that came after their deadline (already counted as undelivered).
    pub late_deliveries: u64,
    pub rest_get: u64,
    pub rest_post: u64,
    pub token_refreshes: u64,
    pub presence_joins: u64,
    pub presence_leaves: u64,
    /// Churn turns not started because that churner was still busy (not an error).
    pub presence_cycles_skipped: u64,
    pub presence_diffs: u64,
    pub delivery_latency: Summary,
    pub server_cpu_seconds: f64,
    pub open_files_start: usize,
    pub open_files_end: usize,
    pub samples: Vec<Sample>,
    pub errors: ErrorCounts,
    pub error_total: u64,
    pub memory: Memory,
    pub passed: bool,
}

/// What the run does and counts, shared by every task.
struct Shared {
    base: String,
    address: SocketAddr,
    members: usize,
    slugs: Vec<String>,
    presence_topic: String,
    churner_keys: HashSet<String>,
    errors: Mutex<ErrorCounts>,
    counts: Counts,
    /// Messages on their way: (room, origin, seq) → members still to receive it (a bit each).
    ledger: Mutex<HashMap<(usize, usize, u64), Pending>>,
    /// Delivery latencies in microseconds.
    latencies: Mutex<Vec<u32>>,
}

struct Pending {
    sent: Instant,
    waiting: u64,
}

#[derive(Default)]
struct Counts {
    joined: AtomicUsize,
    sent: AtomicU64,
    stored: AtomicU64,
    expected: AtomicU64,
    deliveries: AtomicU64,
    late: AtomicU64,
    rest_get: AtomicU64,
    rest_post: AtomicU64,
    refreshes: AtomicU64,
    joins: AtomicU64,
    leaves: AtomicU64,
    skipped: AtomicU64,
    join_diffs: AtomicU64,
    leave_diffs: AtomicU64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Sockets join; nobody sends yet, so every member is there for every message.
    Joining,
    Running,
    /// No new messages, pushes or churn; replies and deliveries still counted.
    Draining,
    Done,
}

impl Shared {
    fn error(&self, kind: impl FnOnce(&mut ErrorCounts)) {
        if let Ok(mut errors) = self.errors.lock() {
            kind(&mut errors);
        }
    }

    fn errors(&self) -> ErrorCounts {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Records a message about to be sent to `room` by `origin` (a member, or a REST user
    /// numbered from `members`); every member but the sender must receive it.
    fn expect(&self, key: (usize, usize, u64)) {
        let all = if self.members == 64 {
            u64::MAX
        } else {
            (1u64 << self.members) - 1
        };
        let waiting = if key.1 < self.members {
            all & !(1u64 << key.1)
        } else {
            all
        };
        if let Ok(mut ledger) = self.ledger.lock() {
            ledger.insert(
                key,
                Pending {
                    sent: Instant::now(),
                    waiting,
                },
            );
        }
    }

    /// The message was refused or never sent: nobody is to receive it.
    fn forget(&self, key: (usize, usize, u64)) {
        if let Ok(mut ledger) = self.ledger.lock() {
            ledger.remove(&key);
        }
    }

    /// The sender's `ok`: the message is stored, so its receipts are due.
    fn stored(&self, key: (usize, usize, u64)) {
        self.counts.stored.fetch_add(1, Ordering::Relaxed);
        let others = if key.1 < self.members {
            self.members - 1
        } else {
            self.members
        };
        self.counts
            .expected
            .fetch_add(others as u64, Ordering::Relaxed);
    }

    fn received(&self, key: (usize, usize, u64), member: usize) {
        let bit = 1u64 << member;
        let Ok(mut ledger) = self.ledger.lock() else {
            return;
        };
        match ledger.get_mut(&key) {
            Some(pending) if pending.waiting & bit != 0 => {
                pending.waiting &= !bit;
                let micros = pending.sent.elapsed().as_micros();
                if pending.waiting == 0 {
                    ledger.remove(&key);
                }
                drop(ledger);
                self.counts.deliveries.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut latencies) = self.latencies.lock() {
                    latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
                }
            }
            Some(_) => {
                drop(ledger);
                self.error(|e| e.duplicates += 1);
            }
            // Swept already (counted undelivered), or a POST that timed out on our side.
            None => {
                self.counts.late.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts as undelivered every receipt still missing `older_than` after its send.
    fn sweep(&self, older_than: Duration) {
        let mut missing = 0;
        if let Ok(mut ledger) = self.ledger.lock() {
            ledger.retain(|_, pending| {
                if pending.sent.elapsed() >= older_than {
                    missing += u64::from(pending.waiting.count_ones());
                    false
                } else {
                    true
                }
            });
        }
        if missing > 0 {
            self.error(|e| e.undelivered += missing);
        }
    }

    fn ledger_len(&self) -> usize {
        self.ledger.lock().map(|l| l.len()).unwrap_or(0)
    }
}

/// A user with a token that is kept fresh, and an HTTP client of its own address.
struct Session {
    user_id: String,
    http: reqwest::Client,
    access: RwLock<String>,
    refresh: Mutex<String>,
}

impl Session {
    fn token(&self) -> String {
        self.access.read().map(|t| t.clone()).unwrap_or_default()
    }

    async fn refresh(&self, base: &str) -> Result<(), RestFailure> {
        let refresh_token = self.refresh.lock().map(|t| t.clone()).unwrap_or_default();
        let response = self
            .http
            .post(format!("{base}/api/v1/auth/refresh"))
            .json(&json!({ "refresh_token": refresh_token }))
            .timeout(REST_TIMEOUT)
            .send()
            .await
            .map_err(RestFailure::from)?;
        let status = response.status();
        if !status.is_success() {
            return Err(RestFailure::Status(status.as_u16()));
        }
        let value: Value = response
            .json()
            .await
            .map_err(|_| RestFailure::Status(status.as_u16()))?;
        let (Some(access), Some(refresh)) = (
            value["access_token"].as_str(),
            value["refresh_token"].as_str(),
        ) else {
            return Err(RestFailure::Status(status.as_u16()));
        };
        if let Ok(mut slot) = self.access.write() {
            *slot = access.to_owned();
        }
        if let Ok(mut slot) = self.refresh.lock() {
            *slot = refresh.to_owned();
        }
        Ok(())
    }
}

enum RestFailure {
    Status(u16),
    Timeout,
    Transport,
}

impl From<reqwest::Error> for RestFailure {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            RestFailure::Timeout
        } else if let Some(status) = e.status() {
            RestFailure::Status(status.as_u16())
        } else {
            RestFailure::Transport
        }
    }
}

impl RestFailure {
    fn count(self, errors: &mut ErrorCounts) {
        match self {
            RestFailure::Status(status) => *errors.rest_status.entry(status).or_default() += 1,
            RestFailure::Timeout => errors.rest_timeouts += 1,
            RestFailure::Transport => errors.rest_transport += 1,
        }
    }
}

/// User `i`'s own HTTP client, from 127.0.1.(2 + i % 250).
fn http_client(i: usize) -> anyhow::Result<reqwest::Client> {
    let source = Ipv4Addr::new(127, 0, 1, 2 + (i % 250) as u8);
    Ok(reqwest::Client::builder()
        .local_address(IpAddr::V4(source))
        .build()?)
}

/// Registers `username` from its own address and keeps what refreshing needs.
async fn session(base: &str, username: &str, i: usize) -> anyhow::Result<(Session, u64)> {
    let http = http_client(i)?;
    let password = "bench-password-123";
    let body = json!({"email": format!("{username}@bench.invalid"), "username": username,
        "password": password, "device_id": format!("{username}-device")});
    let response = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&body)
        .timeout(client::BOUND)
        .send()
        .await?;
    let status = response.status();
    let value: Value = response.json().await?;
    if !status.is_success() {
        bail!("registering {username} failed: {status} {value}");
    }
    let field = |name: &str| {
        value[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no {name} in the sign-up answer"))
    };
    let expires_in = value["expires_in"].as_u64().unwrap_or(900);
    Ok((
        Session {
            user_id: value["user"]["id"]
                .as_str()
                .context("no user id in the sign-up answer")?
                .to_owned(),
            access: RwLock::new(field("access_token")?),
            refresh: Mutex::new(field("refresh_token")?),
            http,
        },
        expires_in,
    ))
}

/// The server under soak: one the run started, or one given by pid.
struct Server {
    pid: u32,
    child: Option<Child>,
    dir: Option<PathBuf>,
}

impl Server {
    async fn start(params: &Params) -> anyhow::Result<(Server, String)> {
        let bin = match &params.fawkes_bin {
            Some(bin) => bin.clone(),
            None => std::env::current_exe()?.with_file_name("fawkes"),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = std::env::temp_dir().join(format!("fawkes-soak-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join("fawkes.log"))?;
        let mut command = Command::new(&bin);
        command
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .current_dir(&dir)
            .env_remove("RUST_LOG")
            .env("FAWKES_DATA_DIR", &dir)
            .env("FAWKES_LOG__LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        match &params.database_url {
            Some(url) => command.env("DATABASE_URL", url),
            None => command.env_remove("DATABASE_URL"),
        };
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = Server {
            pid: child.id(),
            child: Some(child),
            dir: Some(dir),
        };
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + client::BOUND;
        loop {
            let health = http
                .get(format!("{base}/health"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok((server, base));
            }
            if server.exited() || Instant::now() > deadline {
                bail!("fawkes did not start:\n{}", server.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| !matches!(child.try_wait(), Ok(None)))
    }

    fn log_tail(&self) -> String {
        let Some(dir) = &self.dir else {
            return String::new();
        };
        let log = std::fs::read_to_string(dir.join("fawkes.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGTERM, as an orchestrator stops a node; the exit status, if it exits in time.
    async fn stop(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(45);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status.to_string());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        Some("did not exit within 45 s of SIGTERM; killed".to_owned())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub async fn run(
    url: &str,
    server_pid: Option<u32>,
    label: &str,
    params: &Params,
) -> anyhow::Result<SoakResult> {
    if params.members < 2 || params.members > 64 || params.rooms == 0 {
        bail!("soak needs at least one room of 2 to 64 members");
    }
    if params.rate <= 0.0 || params.rate > 40.0 {
        bail!("--rate must be in (0, 40] messages/s per member");
    }
    if params.presence_rate <= 0.0 || params.churners == 0 || params.observers == 0 {
        bail!("presence churn needs observers, churners and a positive --presence-rate");
    }
    if params.rest_rate <= 0.0 || params.rest_users == 0 {
        bail!("REST needs a positive --rest-rate and at least one --rest-users");
    }
    if params.sample_every == 0 || params.duration < 2 * params.sample_every {
        bail!("--duration must cover at least two samples");
    }
    let (mut server, base) = match server_pid {
        Some(pid) => (
            Server {
                pid,
                child: None,
                dir: None,
            },
            url.to_owned(),
        ),
        None => Server::start(params).await?,
    };
    let server_name = if server.child.is_some() {
        format!(
            "started by the run ({})",
            params.database_url.as_deref().map_or("SQLite", |u| {
                u.split("://").next().unwrap_or("database")
            })
        )
    } else {
        format!("pid {}", server.pid)
    };
    let stats = ProcStats::new(server.pid);
    stats.sample().context("the server process")?;
    let outcome = soak(&base, &mut server, &stats, label, &server_name, params).await;
    let exit = server.stop().await;
    if let Some(exit) = &exit {
        println!("server: {exit}");
    }
    outcome
}

async fn soak(
    base: &str,
    server: &mut Server,
    stats: &ProcStats,
    label: &str,
    server_name: &str,
    params: &Params,
) -> anyhow::Result<SoakResult> {
    let pid = std::process::id();
    let users = params.members + 1 + params.churners + params.rest_users;
    eprintln!("soak: registering {users} users");
    let mut sessions = Vec::with_capacity(users);
    let mut token_ttl = u64::MAX;
    for i in 0..users {
        let (session, ttl) = session(base, &format!("s{pid}u{i}"), i).await?;
        token_ttl = token_ttl.min(ttl);
        sessions.push(Arc::new(session));
    }
    let members: Vec<Arc<Session>> = sessions[..params.members].to_vec();
    let observer = sessions[params.members].clone();
    let churners: Vec<Arc<Session>> =
        sessions[params.members + 1..params.members + 1 + params.churners].to_vec();
    let rest_users: Vec<Arc<Session>> = sessions[params.members + 1 + params.churners..].to_vec();

    let slugs: Vec<String> = (0..params.rooms)
        .map(|i| format!("soak-{pid}-{i}"))
        .collect();
    let presence_slug = format!("soak-{pid}-presence");
    let owner = members[0].token();
    for slug in slugs.iter().chain([&presence_slug]) {
        client::create_room(&members[0].http, base, &owner, slug).await?;
    }
    let shared = Arc::new(Shared {
        base: base.to_owned(),
        address: client::server_addr(base).await?,
        members: params.members,
        slugs,
        presence_topic: format!("room:{presence_slug}"),
        churner_keys: churners.iter().map(|s| s.user_id.clone()).collect(),
        errors: Mutex::new(ErrorCounts::default()),
        counts: Counts::default(),
        ledger: Mutex::new(HashMap::new()),
        latencies: Mutex::new(Vec::new()),
    });

    let (phase, _) = watch::channel(Phase::Joining);
    let mut tasks = JoinSet::new();
    let chat_sockets = params.rooms * params.members;
    eprintln!(
        "soak: joining {chat_sockets} chat sockets and {} observers",
        params.observers
    );
    let period = Duration::from_secs_f64(1.0 / params.rate);
    let mut n = 0;
    for room in 0..params.rooms {
        for (member, session) in members.iter().enumerate() {
            let token = session.token();
            let (shared, phase) = (shared.clone(), phase.subscribe());
            // Spread the first posts evenly over one period.
            let offset = period.mul_f64((n as f64 * 0.618_034) % 1.0);
            tasks.spawn(chat_member(
                shared, room, member, n, token, period, offset, phase,
            ));
            n += 1;
        }
    }
    for _ in 0..params.observers {
        let (shared, phase) = (shared.clone(), phase.subscribe());
        tasks.spawn(observe(shared, n, observer.token(), phase));
        n += 1;
    }
    let expected = chat_sockets + params.observers;
    let deadline = Instant::now() + client::BOUND * 2;
    while shared.counts.joined.load(Ordering::Relaxed) < expected {
        let errors = shared.errors().total();
        if errors > 0 || Instant::now() > deadline {
            phase.send_replace(Phase::Done);
            tasks.abort_all();
            bail!(
                "only {} of {expected} sockets joined ({errors} errors: {:?})",
                shared.counts.joined.load(Ordering::Relaxed),
                shared.errors()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    phase.send_replace(Phase::Running);

    // Churners: each opens a socket of its own per turn, from addresses after the others'.
    let mut commands = Vec::with_capacity(params.churners);
    for (i, session) in churners.iter().enumerate() {
        let (send, receive) = mpsc::channel(1);
        commands.push(send);
        let (shared, session, phase) = (shared.clone(), session.clone(), phase.subscribe());
        let hold = Duration::from_secs_f64(params.hold);
        tasks.spawn(churn(shared, session, n + i, hold, receive, phase));
    }
    let churn_sched = {
        let (shared, mut phase) = (shared.clone(), phase.subscribe());
        let every = Duration::from_secs_f64(1.0 / params.presence_rate);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let mut next = 0usize;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        if commands[next % commands.len()].try_send(()).is_err() {
                            shared.counts.skipped.fetch_add(1, Ordering::Relaxed);
                        }
                        next += 1;
                    }
                    _ = phase.changed() => return,
                }
            }
        })
    };
    let rest = tokio::spawn(rest_load(
        shared.clone(),
        rest_users.clone(),
        params.rest_rate,
        phase.subscribe(),
    ));
    // Refresh at half the tokens' life, as a client does before they expire.
    let refresher = {
        let (shared, mut phase) = (shared.clone(), phase.subscribe());
        let sessions: Vec<Arc<Session>> = churners.iter().chain(&rest_users).cloned().collect();
        let every = Duration::from_secs((token_ttl / 2).max(30));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        for session in &sessions {
                            match session.refresh(&shared.base).await {
                                Ok(()) => { shared.counts.refreshes.fetch_add(1, Ordering::Relaxed); }
                                Err(failure) => shared.error(|e| failure.count(e)),
                            }
                        }
                    }
                    _ = phase.changed() => return,
                }
            }
        })
    };

    eprintln!(
        "soak: {} s of chat ({} msg/s), presence churn ({} joins/s), REST ({} req/s)",
        params.duration,
        params.rate * chat_sockets as f64,
        params.presence_rate,
        params.rest_rate
    );
    print_header();
    let started = Instant::now();
    let first = stats.sample()?;
    let open_files_start = stats.open_files().unwrap_or(0);
    let mut samples = vec![Sample {
        seconds: 0.0,
        rss_bytes: first.rss_bytes,
        cpu_fraction: 0.0,
        open_files: open_files_start,
        messages_sent: 0,
        deliveries: 0,
        rest_requests: 0,
        presence_cycles: 0,
        errors: shared.errors().total(),
    }];
    print_row(&samples[0]);
    let mut previous = (0.0, first.cpu_seconds);
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    let mut sample = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(params.sample_every),
        Duration::from_secs(params.sample_every),
    );
    let end = Duration::from_secs(params.duration);
    loop {
        tokio::select! {
            _ = sweep.tick() => shared.sweep(DELIVER_WITHIN),
            _ = sample.tick() => {
                if server.exited() {
                    shared.error(|e| e.server_exited += 1);
                    eprintln!("soak: the server exited:\n{}", server.log_tail());
                    break;
                }
                let Ok(now) = stats.sample() else {
                    shared.error(|e| e.server_exited += 1);
                    break;
                };
                let seconds = started.elapsed().as_secs_f64();
                let counts = &shared.counts;
                let row = Sample {
                    seconds,
                    rss_bytes: now.rss_bytes,
                    cpu_fraction: (now.cpu_seconds - previous.1) / (seconds - previous.0).max(1e-3),
                    open_files: stats.open_files().unwrap_or(0),
                    messages_sent: counts.sent.load(Ordering::Relaxed)
                        + counts.rest_post.load(Ordering::Relaxed),
                    deliveries: counts.deliveries.load(Ordering::Relaxed),
                    rest_requests: counts.rest_get.load(Ordering::Relaxed)
                        + counts.rest_post.load(Ordering::Relaxed),
                    presence_cycles: counts.leaves.load(Ordering::Relaxed),
                    errors: shared.errors().total(),
                };
                previous = (seconds, now.cpu_seconds);
                print_row(&row);
                samples.push(row);
                // The load ends with a sample, so the fit reaches the end.
                if started.elapsed() + Duration::from_millis(500) >= end {
                    break;
                }
            }
        }
    }
    let load_seconds = started.elapsed().as_secs_f64();
    phase.send_replace(Phase::Draining);
    eprintln!("soak: draining");
    // Let outstanding replies, deliveries and churn turns finish, bounded.
    let drain_deadline = Instant::now() + DELIVER_WITHIN + Duration::from_secs(5);
    while Instant::now() < drain_deadline && shared.ledger_len() > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = rest.await;
    let _ = churn_sched.await;
    let _ = refresher.await;
    // A churner mid-turn finishes it (bounded by its reply timeouts).
    let turn_deadline = Instant::now() + REPLY_WITHIN * 2 + Duration::from_secs_f64(params.hold);
    while Instant::now() < turn_deadline
        && shared.counts.joins.load(Ordering::Relaxed)
            > shared.counts.leaves.load(Ordering::Relaxed)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Diffs of the last turns reach the observers.
    let joins = shared.counts.joins.load(Ordering::Relaxed);
    let leaves = shared.counts.leaves.load(Ordering::Relaxed);
    let observers = params.observers as u64;
    let diff_deadline = Instant::now() + REPLY_WITHIN;
    while Instant::now() < diff_deadline
        && (shared.counts.join_diffs.load(Ordering::Relaxed) < joins * observers
            || shared.counts.leave_diffs.load(Ordering::Relaxed) < leaves * observers)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shared.sweep(Duration::ZERO);
    let last = stats.sample()?;
    let open_files_end = stats.open_files().unwrap_or(0);
    if server.exited() {
        shared.error(|e| e.server_exited += 1);
    }
    phase.send_replace(Phase::Done);
    let collect_deadline = Instant::now() + REPLY_WITHIN;
    while tokio::time::timeout_at(collect_deadline.into(), tasks.join_next())
        .await
        .ok()
        .flatten()
        .is_some()
    {}
    tasks.abort_all();

    let counts = &shared.counts;
    let missed = (joins * observers).saturating_sub(counts.join_diffs.load(Ordering::Relaxed))
        + (leaves * observers).saturating_sub(counts.leave_diffs.load(Ordering::Relaxed));
    if missed > 0 {
        shared.error(|e| e.presence_diffs_missed += missed);
    }
    let errors = shared.errors();
    let error_total = errors.total();
    let memory = memory(&samples, load_seconds, params);
    let mut latencies: Vec<u64> = shared
        .latencies
        .lock()
        .map(|l| l.iter().map(|&us| u64::from(us)).collect())
        .unwrap_or_default();
    Ok(SoakResult {
        scenario: "soak",
        label: label.to_owned(),
        server: server_name.to_owned(),
        duration_seconds: load_seconds,
        rooms: params.rooms,
        members: params.members,
        rate_per_member: params.rate,
        observers: params.observers,
        churners: params.churners,
        presence_rate: params.presence_rate,
        rest_rate: params.rest_rate,
        messages_sent: counts.sent.load(Ordering::Relaxed)
            + counts.rest_post.load(Ordering::Relaxed),
        messages_stored: counts.stored.load(Ordering::Relaxed),
        deliveries_expected: counts.expected.load(Ordering::Relaxed),
        deliveries: counts.deliveries.load(Ordering::Relaxed),
        late_deliveries: counts.late.load(Ordering::Relaxed),
        rest_get: counts.rest_get.load(Ordering::Relaxed),
        rest_post: counts.rest_post.load(Ordering::Relaxed),
        token_refreshes: counts.refreshes.load(Ordering::Relaxed),
        presence_joins: joins,
        presence_leaves: leaves,
        presence_cycles_skipped: counts.skipped.load(Ordering::Relaxed),
        presence_diffs: counts.join_diffs.load(Ordering::Relaxed)
            + counts.leave_diffs.load(Ordering::Relaxed),
        delivery_latency: Summary::of_micros(&mut latencies),
        server_cpu_seconds: last.cpu_seconds - first.cpu_seconds,
        open_files_start,
        open_files_end,
        samples,
        passed: error_total == 0 && memory.flat,
        errors,
        error_total,
        memory,
    })
}

/// Fits the RSS of the samples in the second half of the load.
fn memory(samples: &[Sample], load_seconds: f64, params: &Params) -> Memory {
    let from = load_seconds / 2.0;
    let fit: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.seconds >= from)
        .map(|s| (s.seconds, s.rss_bytes as f64))
        .collect();
    let mean = if fit.is_empty() {
        0.0
    } else {
        fit.iter().map(|(_, y)| y).sum::<f64>() / fit.len() as f64
    };
    let slope = least_squares_slope(&fit);
    let mib = 1024.0 * 1024.0;
    let slope_mib_per_hour = slope * 3600.0 / mib;
    let bound_mib_per_hour =
        (params.max_growth_percent / 100.0 * mean / mib).max(params.max_growth_mib_per_hour);
    Memory {
        rss_start_bytes: samples.first().map_or(0, |s| s.rss_bytes),
        rss_end_bytes: samples.last().map_or(0, |s| s.rss_bytes),
        rss_peak_bytes: samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0),
        fit_from_seconds: from,
        fit_samples: fit.len(),
        second_half_mean_bytes: mean,
        slope_mib_per_hour,
        bound_mib_per_hour,
        // Fewer than three points fit any line; that is no evidence of flatness.
        flat: fit.len() >= 3 && slope_mib_per_hour < bound_mib_per_hour,
    }
}

/// The slope of the least-squares line through `points`; 0 for fewer than two distinct x.
fn least_squares_slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mean_x = points.iter().map(|(x, _)| x).sum::<f64>() / n;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / n;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for (x, y) in points {
        covariance += (x - mean_x) * (y - mean_y);
        variance += (x - mean_x) * (x - mean_x);
    }
    if variance == 0.0 {
        0.0
    } else {
        covariance / variance
    }
}

fn print_header() {
    println!("    t_s  rss_MiB  cpu_%  fds  msgs_sent  deliveries  rest_reqs  presence  errors");
}

fn print_row(s: &Sample) {
    println!(
        "{:>7.0}  {:>7.1}  {:>5.1}  {:>3}  {:>9}  {:>10}  {:>9}  {:>8}  {:>6}",
        s.seconds,
        s.rss_bytes as f64 / (1024.0 * 1024.0),
        100.0 * s.cpu_fraction,
        s.open_files,
        s.messages_sent,
        s.deliveries,
        s.rest_requests,
        s.presence_cycles,
        s.errors
    );
}

pub fn print(r: &SoakResult) {
    let mib = |b: f64| b / (1024.0 * 1024.0);
    let m = &r.memory;
    println!(
        "scenario  label     duration_s  msgs_sent  stored  deliveries  undelivered  rest_reqs  presence_cycles  errors  rss_start_MiB  rss_end_MiB  rss_peak_MiB  slope_MiB/h  bound_MiB/h  delivery_p99_ms  server_cpu_%"
    );
    println!(
        "soak      {:<8}  {:>10.0}  {:>9}  {:>6}  {:>10}  {:>11}  {:>9}  {:>15}  {:>6}  {:>13.1}  {:>11.1}  {:>12.1}  {:>11.2}  {:>11.2}  {:>15.2}  {:>12.1}",
        r.label,
        r.duration_seconds,
        r.messages_sent,
        r.messages_stored,
        r.deliveries,
        r.errors.undelivered,
        r.rest_get + r.rest_post,
        r.presence_leaves,
        r.error_total,
        mib(m.rss_start_bytes as f64),
        mib(m.rss_end_bytes as f64),
        mib(m.rss_peak_bytes as f64),
        m.slope_mib_per_hour,
        m.bound_mib_per_hour,
        r.delivery_latency.p99_ms,
        100.0 * r.server_cpu_seconds / r.duration_seconds.max(1.0),
    );
    println!(
        "errors: {} ({})",
        r.error_total,
        serde_json::to_string(&r.errors).unwrap_or_default()
    );
    println!(
        "memory: RSS slope over the second half ({} samples from {:.0} s) {:+.2} MiB/h against a bound of {:.2} MiB/h: {}",
        m.fit_samples,
        m.fit_from_seconds,
        m.slope_mib_per_hour,
        m.bound_mib_per_hour,
        if m.flat { "flat" } else { "NOT flat" }
    );
    println!(
        "verdict: {}",
        if r.passed {
            "PASS (no errors, memory flat)"
        } else {
            "FAIL"
        }
    );
}

/// Outstanding replies of one socket: reference → (sent, the message it carries).
type Replies = HashMap<String, (Instant, Option<(usize, usize, u64)>)>;

/// Counts replies that are overdue as timeouts (their messages stay in the ledger).
fn expire(shared: &Shared, replies: &mut Replies) {
    let before = replies.len();
    replies.retain(|_, (sent, _)| sent.elapsed() < REPLY_WITHIN);
    let overdue = (before - replies.len()) as u64;
    if overdue > 0 {
        shared.error(|e| e.reply_timeouts += overdue);
    }
}

/// Handles a reply to one of this socket's own references; false if it was an error.
/// What one read from a long-lived socket gave.
enum Incoming {
    Frame(client::Frame),
    /// Not a Phoenix text frame (a ping, say): read on.
    Skip,
    /// The socket is gone; counted as an unexpected disconnect unless the run is over.
    Closed,
}

fn incoming(
    read: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    phase: &watch::Receiver<Phase>,
    shared: &Shared,
    who: &str,
    n: usize,
) -> Incoming {
    match read {
        Some(Ok(Message::Text(text))) => {
            client::parse_frame(&text).map_or(Incoming::Skip, Incoming::Frame)
        }
        Some(Ok(Message::Close(_)) | Err(_)) | None => {
            if *phase.borrow() != Phase::Done {
                eprintln!("soak: {who} socket {n} closed unexpectedly");
                shared.error(|e| e.unexpected_disconnects += 1);
            }
            Incoming::Closed
        }
        Some(Ok(_)) => Incoming::Skip,
    }
}

fn on_reply(shared: &Shared, replies: &mut Replies, frame: &client::Frame) -> Option<bool> {
    let reference = frame.reference.as_deref()?;
    let (_, message) = replies.remove(reference)?;
    let ok = frame.payload["status"] == "ok";
    match (ok, message) {
        (true, Some(key)) => shared.stored(key),
        (false, Some(key)) => shared.forget(key),
        _ => {}
    }
    if !ok {
        eprintln!("soak: error reply to {reference}: {}", frame.payload);
        shared.error(|e| e.channel_errors += 1);
    }
    Some(ok)
}

/// Opens socket `n`; a failure is counted.
async fn open(shared: &Shared, token: &str, n: usize) -> Option<Ws> {
    let url = client::socket_url(&shared.base, token);
    match client::open(&url, shared.address, client::SOAK_FIRST_CONNECTION + n).await {
        Ok(socket) => Some(socket),
        Err(e) => {
            eprintln!("soak: socket {n} did not open: {e}");
            shared.error(|e| e.connect_failures += 1);
            None
        }
    }
}

fn heartbeat(beats: &mut u64, replies: &mut Replies) -> Message {
    *beats += 1;
    replies.insert(format!("hb{beats}"), (Instant::now(), None));
    client::heartbeat(*beats)
}

/// A chat member: joined to its room for the whole run, posting at its rate and checking
/// off every message of the others it receives.
#[allow(clippy::too_many_arguments)]
async fn chat_member(
    shared: Arc<Shared>,
    room: usize,
    member: usize,
    n: usize,
    token: String,
    period: Duration,
    offset: Duration,
    mut phase: watch::Receiver<Phase>,
) {
    let topic = format!("room:{}", shared.slugs[room]);
    let Some(socket) = open(&shared, &token, n).await else {
        return;
    };
    let (mut sink, mut stream) = socket.split();
    let mut replies = Replies::new();
    replies.insert("j".to_owned(), (Instant::now(), None));
    let join = client::frame(Some("j"), Some("j"), &topic, "phx_join", json!({}));
    if sink.send(join).await.is_err() {
        shared.error(|e| e.unexpected_disconnects += 1);
        return;
    }
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
    // A member that falls behind sends fewer; the counts show it.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut sending = false;
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.tick().await;
    let mut check = tokio::time::interval(Duration::from_secs(1));
    let (mut seq, mut beats) = (0u64, 0u64);
    loop {
        tokio::select! {
            frame = stream.next() => {
                let frame = match incoming(frame, &phase, &shared, "chat", n) {
                    Incoming::Frame(frame) => frame,
                    Incoming::Skip => continue,
                    Incoming::Closed => return,
                };
                match frame.event.as_str() {
                    "phx_reply" => {
                        let answered = on_reply(&shared, &mut replies, &frame);
                        if answered == Some(true) && frame.reference.as_deref() == Some("j") {
                            shared.counts.joined.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    "new_msg" => {
                        if let Some(key) = parse_body(&frame.payload["body"])
                            && key.0 == room
                            && key.1 != member
                        {
                            shared.received(key, member);
                        }
                    }
                    "phx_error" | "phx_close" => {
                        eprintln!("soak: chat socket {n} got {}", frame.event);
                        shared.error(|e| e.channel_errors += 1);
                    }
                    _ => {}
                }
            }
            _ = ticker.tick(), if sending => {
                seq += 1;
                let key = (room, member, seq);
                shared.expect(key);
                let reference = format!("m{seq}");
                replies.insert(reference.clone(), (Instant::now(), Some(key)));
                let push = client::frame(Some("j"), Some(&reference), &topic, "new_msg",
                    json!({ "body": body(key) }));
                if sink.send(push).await.is_err() {
                    shared.forget(key);
                    shared.error(|e| e.unexpected_disconnects += 1);
                    return;
                }
                shared.counts.sent.fetch_add(1, Ordering::Relaxed);
            }
            _ = beat.tick() => {
                if sink.send(heartbeat(&mut beats, &mut replies)).await.is_err() {
                    shared.error(|e| e.unexpected_disconnects += 1);
                    return;
                }
            }
            _ = check.tick() => expire(&shared, &mut replies),
            changed = phase.changed() => {
                let now = if changed.is_err() { Phase::Done } else { *phase.borrow_and_update() };
                match now {
                    Phase::Joining => {}
                    Phase::Running => {
                        // The first posts, spread evenly over one period.
                        ticker.reset_after(offset);
                        sending = true;
                    }
                    Phase::Draining => sending = false,
                    Phase::Done => {
                        let _ = sink.send(Message::Close(None)).await;
                        return;
                    }
                }
            }
        }
    }
}

/// An observer of the presence room: joined for the whole run, counting the diffs that name
/// a churner.
async fn observe(shared: Arc<Shared>, n: usize, token: String, mut phase: watch::Receiver<Phase>) {
    let Some(socket) = open(&shared, &token, n).await else {
        return;
    };
    let (mut sink, mut stream) = socket.split();
    let mut replies = Replies::new();
    replies.insert("j".to_owned(), (Instant::now(), None));
    let join = client::frame(
        Some("j"),
        Some("j"),
        &shared.presence_topic,
        "phx_join",
        json!({}),
    );
    if sink.send(join).await.is_err() {
        shared.error(|e| e.unexpected_disconnects += 1);
        return;
    }
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.tick().await;
    let mut check = tokio::time::interval(Duration::from_secs(1));
    let mut beats = 0u64;
    loop {
        tokio::select! {
            frame = stream.next() => {
                let frame = match incoming(frame, &phase, &shared, "observer", n) {
                    Incoming::Frame(frame) => frame,
                    Incoming::Skip => continue,
                    Incoming::Closed => return,
                };
                match frame.event.as_str() {
                    "phx_reply" => {
                        let answered = on_reply(&shared, &mut replies, &frame);
                        if answered == Some(true) && frame.reference.as_deref() == Some("j") {
                            shared.counts.joined.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    "presence_diff" => {
                        for (kind, counter) in [
                            ("joins", &shared.counts.join_diffs),
                            ("leaves", &shared.counts.leave_diffs),
                        ] {
                            let Some(keys) = frame.payload[kind].as_object() else { continue };
                            let churners = keys.keys().filter(|k| shared.churner_keys.contains(*k)).count();
                            counter.fetch_add(churners as u64, Ordering::Relaxed);
                        }
                    }
                    "phx_error" | "phx_close" => {
                        shared.error(|e| e.channel_errors += 1);
                    }
                    _ => {}
                }
            }
            _ = beat.tick() => {
                if sink.send(heartbeat(&mut beats, &mut replies)).await.is_err() {
                    shared.error(|e| e.unexpected_disconnects += 1);
                    return;
                }
            }
            _ = check.tick() => expire(&shared, &mut replies),
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow_and_update() == Phase::Done {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
            }
        }
    }
}

/// A churner: on each command, a new socket with the session's current token joins the
/// presence room, stays `hold`, leaves, and closes.
async fn churn(
    shared: Arc<Shared>,
    session: Arc<Session>,
    n: usize,
    hold: Duration,
    mut commands: mpsc::Receiver<()>,
    mut phase: watch::Receiver<Phase>,
) {
    loop {
        tokio::select! {
            command = commands.recv() => {
                if command.is_none() {
                    return;
                }
                turn(&shared, &session.token(), n, hold).await;
            }
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow_and_update() != Phase::Running {
                    return;
                }
            }
        }
    }
}

async fn turn(shared: &Shared, token: &str, n: usize, hold: Duration) {
    let Some(socket) = open(shared, token, n).await else {
        return;
    };
    let (mut sink, mut stream) = socket.split();
    let topic = &shared.presence_topic;
    let join = client::frame(Some("j"), Some("j"), topic, "phx_join", json!({}));
    if sink.send(join).await.is_err() {
        shared.error(|e| e.unexpected_disconnects += 1);
        return;
    }
    if !await_reply(shared, &mut stream, "j").await {
        return;
    }
    shared.counts.joins.fetch_add(1, Ordering::Relaxed);
    // Stay joined, reading what the room sends; the socket must stay open.
    let until = tokio::time::Instant::now() + hold;
    while let Ok(frame) = tokio::time::timeout_at(until, stream.next()).await {
        if !matches!(
            frame,
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_)))
        ) {
            shared.error(|e| e.unexpected_disconnects += 1);
            return;
        }
    }
    let leave = client::frame(Some("j"), Some("l"), topic, "phx_leave", json!({}));
    if sink.send(leave).await.is_err() {
        shared.error(|e| e.unexpected_disconnects += 1);
        return;
    }
    if await_reply(shared, &mut stream, "l").await {
        shared.counts.leaves.fetch_add(1, Ordering::Relaxed);
    }
    close(sink).await;
}

async fn close(mut sink: SplitSink<Ws, Message>) {
    let _ = sink.send(Message::Close(None)).await;
    let _ = sink.close().await;
}

/// Reads until the reply to `reference`: true if `ok`; an error reply, a timeout or a closed
/// socket is counted.
async fn await_reply(shared: &Shared, stream: &mut SplitStream<Ws>, reference: &str) -> bool {
    let until = tokio::time::Instant::now() + REPLY_WITHIN;
    loop {
        match tokio::time::timeout_at(until, stream.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let Some(frame) = client::parse_frame(&text) else {
                    continue;
                };
                if frame.event == "phx_reply" && frame.reference.as_deref() == Some(reference) {
                    let ok = frame.payload["status"] == "ok";
                    if !ok {
                        eprintln!("soak: churner's {reference} refused: {}", frame.payload);
                        shared.error(|e| e.channel_errors += 1);
                    }
                    return ok;
                }
            }
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => {
                shared.error(|e| e.unexpected_disconnects += 1);
                return false;
            }
            Ok(Some(Ok(_))) => {}
            Err(_) => {
                shared.error(|e| e.reply_timeouts += 1);
                return false;
            }
        }
    }
}

/// REST at a fixed rate: GET a room's last 50 messages, then POST one to a room, in turn,
/// round-robin over the REST users and the rooms. Each call runs on its own task so a slow
/// answer never holds the rate back.
async fn rest_load(
    shared: Arc<Shared>,
    users: Vec<Arc<Session>>,
    rate: f64,
    mut phase: watch::Receiver<Phase>,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut calls = JoinSet::new();
    let mut n = 0usize;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let (shared, user) = (shared.clone(), users[n % users.len()].clone());
                let origin = shared.members + n % users.len();
                let room = (n / 2) % shared.slugs.len();
                let post = n % 2 == 1;
                let seq = n as u64;
                calls.spawn(async move { rest_call(&shared, &user, room, post.then_some((origin, seq))).await });
                n += 1;
            }
            Some(_) = calls.join_next() => {}
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow_and_update() != Phase::Running {
                    break;
                }
            }
        }
    }
    while calls.join_next().await.is_some() {}
}

async fn rest_call(shared: &Shared, user: &Session, room: usize, post: Option<(usize, u64)>) {
    let url = format!(
        "{}/api/v1/rooms/{}/messages",
        shared.base, shared.slugs[room]
    );
    let request = match post {
        Some((origin, seq)) => {
            let key = (room, origin, seq);
            shared.expect(key);
            user.http.post(url).json(&json!({ "body": body(key) }))
        }
        None => user.http.get(url).query(&[("limit", "50")]),
    };
    let outcome = request
        .bearer_auth(user.token())
        .timeout(REST_TIMEOUT)
        .send()
        .await;
    let failure = match outcome {
        Ok(response) if response.status().is_success() => {
            // The body must arrive whole too.
            match response.bytes().await {
                Ok(_) => None,
                Err(e) => Some(RestFailure::from(e)),
            }
        }
        Ok(response) => Some(RestFailure::Status(response.status().as_u16())),
        Err(e) => Some(RestFailure::from(e)),
    };
    let counter = if post.is_some() {
        &shared.counts.rest_post
    } else {
        &shared.counts.rest_get
    };
    counter.fetch_add(1, Ordering::Relaxed);
    match (failure, post) {
        (None, Some((origin, seq))) => shared.stored((room, origin, seq)),
        (None, None) => {}
        (Some(failure), post) => {
            if let Some((origin, seq)) = post {
                shared.forget((room, origin, seq));
            }
            shared.error(|e| failure.count(e));
        }
    }
}

/// `soak {room} {origin} {seq}`.
fn body((room, origin, seq): (usize, usize, u64)) -> String {
    format!("soak {room} {origin} {seq}")
}

fn parse_body(body: &Value) -> Option<(usize, usize, u64)> {
    let mut parts = body.as_str()?.strip_prefix("soak ")?.split(' ');
    let room = parts.next()?.parse().ok()?;
    let origin = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    Some((room, origin, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seconds: f64, rss_mib: f64) -> Sample {
        Sample {
            seconds,
            rss_bytes: (rss_mib * 1024.0 * 1024.0) as u64,
            cpu_fraction: 0.0,
            open_files: 0,
            messages_sent: 0,
            deliveries: 0,
            rest_requests: 0,
            presence_cycles: 0,
            errors: 0,
        }
    }

    fn params() -> Params {
        Params {
            duration: 100,
            sample_every: 10,
            rooms: 1,
            members: 2,
            rate: 1.0,
            observers: 1,
            churners: 1,
            presence_rate: 1.0,
            hold: 1.0,
            rest_rate: 1.0,
            rest_users: 1,
            max_growth_percent: 5.0,
            max_growth_mib_per_hour: 16.0,
            fawkes_bin: None,
            database_url: None,
        }
    }

    #[test]
    fn slope_of_a_line_is_its_slope() {
        let points: Vec<(f64, f64)> = (0..10)
            .map(|x| (f64::from(x), 3.0 * f64::from(x) + 7.0))
            .collect();
        assert!((least_squares_slope(&points) - 3.0).abs() < 1e-9);
        assert_eq!(least_squares_slope(&[(1.0, 5.0)]), 0.0);
        assert_eq!(least_squares_slope(&[(1.0, 5.0), (1.0, 6.0)]), 0.0);
    }

    #[test]
    fn memory_is_judged_on_the_second_half_only() {
        // A warm-up climb from 10 to 100 MiB, then flat: flat.
        let mut samples: Vec<Sample> = (0..5)
            .map(|i| sample(f64::from(i) * 10.0, 10.0 + 20.0 * f64::from(i)))
            .collect();
        samples.extend((5..=10).map(|i| sample(f64::from(i) * 10.0, 100.0)));
        let flat = memory(&samples, 100.0, &params());
        assert!(flat.flat, "{flat:?}");
        assert_eq!(flat.fit_samples, 6);
        assert_eq!(flat.slope_mib_per_hour, 0.0);
        // 100 MiB mean: the bound is max(5 MiB, 16 MiB) per hour.
        assert!((flat.bound_mib_per_hour - 16.0).abs() < 1e-9);

        // 0.01 MiB/s in the second half is 36 MiB/h: a leak.
        let leaking: Vec<Sample> = (0..=10)
            .map(|i| sample(f64::from(i) * 10.0, 100.0 + 0.1 * f64::from(i)))
            .collect();
        let leak = memory(&leaking, 100.0, &params());
        assert!(!leak.flat, "{leak:?}");
        assert!((leak.slope_mib_per_hour - 36.0).abs() < 1e-6);
    }

    #[test]
    fn too_few_samples_are_not_flat() {
        let samples = vec![sample(0.0, 10.0), sample(100.0, 10.0)];
        assert!(!memory(&samples, 100.0, &params()).flat);
    }

    #[test]
    fn bodies_name_room_origin_and_sequence() {
        assert_eq!(parse_body(&json!(body((3, 7, 42)))), Some((3, 7, 42)));
        assert_eq!(parse_body(&json!("bench 1 2 3")), None);
    }

    #[test]
    fn ledger_counts_each_receipt_once_and_sweeps_the_rest() {
        let shared = Shared {
            base: String::new(),
            address: SocketAddr::from(([127, 0, 0, 1], 1)),
            members: 3,
            slugs: vec!["a".into()],
            presence_topic: String::new(),
            churner_keys: HashSet::new(),
            errors: Mutex::new(ErrorCounts::default()),
            counts: Counts::default(),
            ledger: Mutex::new(HashMap::new()),
            latencies: Mutex::new(Vec::new()),
        };
        // Member 0 sends: members 1 and 2 must receive it.
        shared.expect((0, 0, 1));
        shared.stored((0, 0, 1));
        shared.received((0, 0, 1), 1);
        shared.received((0, 0, 1), 1);
        assert_eq!(shared.errors().duplicates, 1);
        shared.sweep(Duration::ZERO);
        assert_eq!(shared.errors().undelivered, 1);
        assert_eq!(shared.counts.expected.load(Ordering::Relaxed), 2);
        // A REST user (origin 3) sends: all three members must receive it.
        shared.expect((0, 3, 2));
        for member in 0..3 {
            shared.received((0, 3, 2), member);
        }
        assert_eq!(shared.ledger_len(), 0);
        assert_eq!(shared.counts.deliveries.load(Ordering::Relaxed), 4);
        assert_eq!(shared.errors().total(), 2);
    }
}
