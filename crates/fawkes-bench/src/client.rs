//! The connections: each one a real WebSocket speaking Phoenix V2 JSON. What every scenario
//! shares: accounts, the target (Fawkes or the Node peer), opening a socket from a spread of
//! source addresses, and the idle/fan-out fleet joined to [`FLEET_TOPIC`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::{Mutex, PoisonError};
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Longest any single wait may take; a run never hangs.
pub const BOUND: Duration = Duration::from_secs(60);
/// Connections opened at once.
pub const CONNECT_CONCURRENCY: usize = 200;
/// Phoenix clients heartbeat every 30 s.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// Registrations run at once (each costs the server an Argon2id hash).
const REGISTER_CONCURRENCY: usize = 4;

pub type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A signed-up account.
#[derive(Clone)]
pub struct Account {
    pub user_id: String,
    pub token: String,
}

/// Registers `username` (or logs in, if it exists from an earlier run) and returns its token.
pub async fn register(
    http: &reqwest::Client,
    base: &str,
    username: &str,
) -> anyhow::Result<Account> {
    let password = "bench-password-123";
    let body = json!({"email": format!("{username}@bench.invalid"), "username": username,
        "password": password, "device_id": format!("{username}-device")});
    let response = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&body)
        .timeout(BOUND)
        .send()
        .await?;
    let response = if response.status().as_u16() == 409 {
        let login = json!({"login": username, "password": password});
        http.post(format!("{base}/api/v1/auth/login"))
            .json(&login)
            .timeout(BOUND)
            .send()
            .await?
    } else {
        response
    };
    let status = response.status();
    let value: Value = response.json().await?;
    if !status.is_success() {
        bail!("signing up {username} failed: {status} {value}");
    }
    Ok(Account {
        user_id: value["user"]["id"]
            .as_str()
            .context("no user id in the sign-up answer")?
            .to_owned(),
        token: value["access_token"]
            .as_str()
            .context("no access token in the sign-up answer")?
            .to_owned(),
    })
}

/// The run's own account, `bench{pid}`.
pub async fn sign_up(http: &reqwest::Client, base: &str) -> anyhow::Result<Account> {
    register(http, base, &format!("bench{}", std::process::id())).await
}

/// `n` accounts `{prefix}{i}`, a few registrations at a time.
pub async fn register_many(
    http: &reqwest::Client,
    base: &str,
    prefix: &str,
    n: usize,
) -> anyhow::Result<Vec<Account>> {
    let results: Vec<(usize, anyhow::Result<Account>)> = futures_util::stream::iter(
        (0..n).map(|i| async move { (i, register(http, base, &format!("{prefix}{i}")).await) }),
    )
    .buffer_unordered(REGISTER_CONCURRENCY)
    .collect()
    .await;
    let mut accounts = vec![None; n];
    for (i, account) in results {
        accounts[i] = Some(account?);
    }
    Ok(accounts.into_iter().flatten().collect())
}

/// Creates a public room owned by `token`'s account.
pub async fn create_room(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    slug: &str,
) -> anyhow::Result<()> {
    let response = http
        .post(format!("{base}/api/v1/rooms"))
        .bearer_auth(token)
        .json(&json!({"slug": slug, "name": slug, "is_private": false}))
        .timeout(BOUND)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!(
            "creating room {slug} failed: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// The topic the idle and fan-out fleets join: a video's comment thread, which stores and
/// broadcasts like a room but tracks no presence. In a room every join would also send each
/// member a `presence_diff` and the joiner the whole presence state (O(N²) frames for N
/// members): that cost is what the presence scenario measures, not idle memory or fan-out.
pub const FLEET_TOPIC: &str = "comments:bench";
/// The event a fleet broadcast arrives as.
const FLEET_EVENT: &str = "new_comment";

/// The scenario a fleet is for, which picks its source addresses.
#[derive(Clone, Copy)]
pub enum FleetRun {
    Idle,
    Fanout,
}

/// What a fleet connects to and how a broadcast is made there.
pub enum Target {
    /// Fawkes: sockets carry the token; a broadcast is a comment posted over REST (stored,
    /// then sent as `new_comment` to everyone in [`FLEET_TOPIC`]).
    Fawkes { base: String, token: String },
    /// The Node `ws` peer (`bench/peer`): a broadcast is `POST /broadcast`.
    Peer { base: String },
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Fawkes { .. } => "fawkes",
            Target::Peer { .. } => "peer",
        }
    }

    pub fn base(&self) -> &str {
        match self {
            Target::Fawkes { base, .. } | Target::Peer { base } => base,
        }
    }

    /// The first connection number of this target's fleet for `run`. Each target and each run
    /// has source addresses of its own: `bench/full.sh` runs them a minute apart or less, and
    /// the sockets of a finished run hold their ports in TIME_WAIT for 60 s.
    fn first_connection(&self, run: FleetRun) -> usize {
        let target = match self {
            Target::Fawkes { .. } => 0,
            Target::Peer { .. } => PEER_FIRST_CONNECTION,
        };
        let run = match run {
            FleetRun::Idle => 0,
            FleetRun::Fanout => 25 * CONNECTIONS_PER_ADDRESS,
        };
        target + run
    }

    fn socket_url(&self) -> String {
        let token = match self {
            Target::Fawkes { token, .. } => token.as_str(),
            Target::Peer { .. } => "none",
        };
        socket_url(self.base(), token)
    }

    /// Sends one `new_comment` carrying `tag` to every connection joined to [`FLEET_TOPIC`].
    pub async fn broadcast(&self, http: &reqwest::Client, tag: &str) -> anyhow::Result<()> {
        let request = match self {
            Target::Fawkes { base, token } => http
                .post(format!("{base}/api/v1/videos/bench/comments"))
                .bearer_auth(token)
                .json(&json!({"content": tag})),
            Target::Peer { base } => http.post(format!("{base}/broadcast")).json(
                &json!({"topic": FLEET_TOPIC, "event": FLEET_EVENT, "payload": {"content": tag}}),
            ),
        };
        let response = request.timeout(BOUND).send().await?;
        if !response.status().is_success() {
            bail!("broadcasting failed: {}", response.status());
        }
        Ok(())
    }
}

pub fn socket_url(base: &str, token: &str) -> String {
    format!(
        "{}/socket/websocket?token={token}&vsn=2.0.0",
        base.replacen("http", "ws", 1)
    )
}

/// The socket address of `http://host:port`.
pub async fn server_addr(base: &str) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(
        base.split("://")
            .nth(1)
            .unwrap_or_default()
            .trim_end_matches('/'),
    )
    .await?
    .next()
    .context("server address")
}

/// A Phoenix V2 JSON frame.
pub fn frame(
    join_ref: Option<&str>,
    reference: Option<&str>,
    topic: &str,
    event: &str,
    payload: Value,
) -> Message {
    Message::text(json!([join_ref, reference, topic, event, payload]).to_string())
}

pub fn heartbeat(reference: u64) -> Message {
    frame(
        None,
        Some(&format!("hb{reference}")),
        "phoenix",
        "heartbeat",
        json!({}),
    )
}

/// A received frame's parts, for the few frames a scenario has to look into.
pub struct Frame {
    pub reference: Option<String>,
    pub event: String,
    pub payload: Value,
}

pub fn parse_frame(text: &str) -> Option<Frame> {
    let Value::Array(mut parts) = serde_json::from_str(text).ok()? else {
        return None;
    };
    if parts.len() != 5 {
        return None;
    }
    let payload = parts.pop()?;
    let event = parts.pop()?.as_str()?.to_owned();
    parts.pop(); // topic
    let reference = parts.pop()?.as_str().map(str::to_owned);
    Some(Frame {
        reference,
        event,
        payload,
    })
}

/// All open connections and what they have received.
pub struct Fleet {
    tasks: JoinSet<()>,
    /// Latest fan-out tag each connection must see; the count of those that have.
    expected: watch::Sender<String>,
    received: Arc<AtomicUsize>,
    /// When the latest expected message arrived.
    received_at: Arc<Mutex<Option<Instant>>>,
    size: usize,
}

impl Fleet {
    /// Opens `size` connections and joins each to [`FLEET_TOPIC`].
    pub async fn connect(target: &Target, size: usize, run: FleetRun) -> anyhow::Result<Fleet> {
        Self::connect_numbered(target, size, target.first_connection(run)).await
    }

    /// Like [`Fleet::connect`], numbering the connections from `first`: the shards of a
    /// cluster run each take their own range, so they use their own source addresses.
    pub async fn connect_numbered(
        target: &Target,
        size: usize,
        first: usize,
    ) -> anyhow::Result<Fleet> {
        let url = target.socket_url();
        let server = server_addr(target.base()).await?;
        let (expected, _) = watch::channel(String::new());
        let received = Arc::new(AtomicUsize::new(0));
        let received_at = Arc::new(Mutex::new(None));
        let joined = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        let gate = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
        for n in 0..size {
            let permit = gate.clone().acquire_owned().await?;
            if failed.load(Ordering::Relaxed) > 0 {
                break;
            }
            let (url, joined, failed, received, received_at) = (
                url.clone(),
                joined.clone(),
                failed.clone(),
                received.clone(),
                received_at.clone(),
            );
            let mut tags = expected.subscribe();
            let mut permit = Some(permit);
            tasks.spawn(async move {
                let stream = match open(&url, server, first + n).await {
                    Ok(stream) => stream,
                    Err(e) => {
                        eprintln!("connection {n} failed: {e}");
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
                let (mut sink, mut stream) = stream.split();
                let join = frame(Some("1"), Some("1"), FLEET_TOPIC, "phx_join", json!({}));
                if sink.send(join).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let mut beat = tokio::time::interval(HEARTBEAT);
                beat.tick().await;
                let mut beats = 0;
                let mut counted_join = false;
                loop {
                    tokio::select! {
                        frame = stream.next() => {
                            let Some(Ok(Message::Text(text))) = frame else {
                                if matches!(frame, Some(Ok(_))) { continue }
                                if !counted_join {
                                    failed.fetch_add(1, Ordering::Relaxed);
                                }
                                return;
                            };
                            if !counted_join && text.contains("phx_reply") && text.contains("\"1\"") {
                                counted_join = true;
                                joined.fetch_add(1, Ordering::Relaxed);
                                // Joined: let the next connection start.
                                permit.take();
                                continue;
                            }
                            let tag = tags.borrow_and_update().clone();
                            if !tag.is_empty() && text.contains(FLEET_EVENT) && text.contains(&tag) {
                                *received_at.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
                                received.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ = beat.tick() => {
                            beats += 1;
                            if sink.send(heartbeat(beats)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
        let deadline = Instant::now() + BOUND * 5;
        while joined.load(Ordering::Relaxed) < size {
            let failures = failed.load(Ordering::Relaxed);
            if failures > 0 {
                bail!(
                    "{failures} connections failed to join ({} joined)",
                    joined.load(Ordering::Relaxed)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "only {} of {size} connections joined in time",
                    joined.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Fleet {
            tasks,
            expected,
            received,
            received_at,
            size,
        })
    }

    /// Keeps the connections open (heartbeating) for `period`.
    pub async fn keep_alive_for(&mut self, period: Duration) -> anyhow::Result<()> {
        tokio::time::sleep(period).await;
        // A connection's task ends only when its socket does.
        let mut dropped = 0;
        while let Some(ended) = self.tasks.try_join_next() {
            dropped += usize::from(ended.is_ok());
        }
        if dropped > 0 {
            bail!("{dropped} of {} connections dropped while idle", self.size);
        }
        Ok(())
    }

    /// Broadcasts one message and returns the seconds until the last connection received it.
    pub async fn fan_out(
        &mut self,
        http: &reqwest::Client,
        target: &Target,
        n: usize,
    ) -> anyhow::Result<f64> {
        let tag = format!("fanout-{}-{n}", std::process::id());
        self.expect(&tag);
        let sent = Instant::now();
        target.broadcast(http, &tag).await?;
        let last = self.last_receipt(sent + BOUND).await?;
        Ok(last.map_or(0.0, |last| last.duration_since(sent).as_secs_f64()))
    }

    /// From now on, counts the connections that receive a `new_comment` carrying `tag`.
    pub fn expect(&self, tag: &str) {
        self.received.store(0, Ordering::Relaxed);
        *self
            .received_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.expected.send_replace(tag.to_owned());
    }

    /// Waits until every connection has the expected message and returns when the last one got
    /// it (`None` for an empty fleet); fails at `deadline`.
    pub async fn last_receipt(&self, deadline: Instant) -> anyhow::Result<Option<Instant>> {
        while self.received.load(Ordering::Relaxed) < self.size {
            if Instant::now() > deadline {
                bail!(
                    "only {} of {} received the message in time",
                    self.received.load(Ordering::Relaxed),
                    self.size
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(*self
            .received_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }

    pub async fn close(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Opens connection `n` from source address 127.0.0.(2 + n / 20000), so 10,000s of
/// connections never run out of ephemeral ports on one address.
pub async fn open(url: &str, server: SocketAddr, n: usize) -> anyhow::Result<Ws> {
    let source = source_address(n);
    let socket = TcpSocket::new_v4()?;
    // Lets the next run take ports whose last connection is still in TIME_WAIT (both sockets
    // must carry the flag), so runs can follow each other without a minute's pause.
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let stream = tokio::time::timeout(BOUND, socket.connect(server)).await??;
    stream.set_nodelay(true)?;
    // tungstenite reserves 128 KiB per socket for reading by default: 12 GiB for the 95,000
    // connections of a cluster run. Frames here are small.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let handshake = tokio_tungstenite::client_async_with_config(url, stream, Some(config));
    let (ws, _) = tokio::time::timeout(BOUND, handshake).await??;
    Ok(ws)
}

/// Connections from one source address: below the 28,232 ports of Linux's default ephemeral
/// range.
const CONNECTIONS_PER_ADDRESS: usize = 20_000;
/// The first connection number of the Node peer's fleets (127.0.0.127 on).
const PEER_FIRST_CONNECTION: usize = 125 * CONNECTIONS_PER_ADDRESS;
/// The first connection number of the soak's sockets (127.0.0.202 on): an hour-long soak must
/// not lose its sockets to ports another run's closed connections hold in TIME_WAIT.
pub const SOAK_FIRST_CONNECTION: usize = 200 * CONNECTIONS_PER_ADDRESS;

fn source_address(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        0,
        (n / CONNECTIONS_PER_ADDRESS / 250) as u8,
        2 + (n / CONNECTIONS_PER_ADDRESS % 250) as u8,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_change_every_20000_connections() {
        assert_eq!(source_address(0), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(source_address(19_999), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(source_address(20_000), Ipv4Addr::new(127, 0, 0, 3));
        assert_eq!(source_address(20_000 * 250), Ipv4Addr::new(127, 0, 1, 2));
    }

    #[test]
    fn frames_round_trip() {
        let Message::Text(text) = frame(
            Some("1"),
            Some("7"),
            "room:a",
            "new_msg",
            json!({"body": "x"}),
        ) else {
            panic!("text frame");
        };
        assert_eq!(
            text.as_str(),
            r#"["1","7","room:a","new_msg",{"body":"x"}]"#
        );
        let parsed = parse_frame(&text).expect("a frame");
        assert_eq!(parsed.reference.as_deref(), Some("7"));
        assert_eq!(parsed.event, "new_msg");
        assert_eq!(parsed.payload["body"], "x");
        let broadcast = parse_frame(r#"[null,null,"room:a","new_msg",{}]"#).expect("a frame");
        assert_eq!(broadcast.reference, None);
        assert!(parse_frame("[1,2]").is_none() && parse_frame("nope").is_none());
    }
}
