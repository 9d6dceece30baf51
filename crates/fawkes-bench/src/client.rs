//! The connections: each one a real WebSocket speaking Phoenix V2, joined to `room:lobby`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

/// Longest any single wait may take; a run never hangs.
const BOUND: Duration = Duration::from_secs(60);
/// Connections opened at once.
const CONNECT_CONCURRENCY: usize = 200;

/// Registers a throw-away account and returns its access token.
pub async fn sign_up(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let name = format!("bench{}", std::process::id());
    let body = json!({"email": format!("{name}@bench.invalid"), "username": name, "password": "bench-password-123"});
    let response = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&body)
        .send()
        .await?;
    let response = if response.status().as_u16() == 409 {
        let login = json!({"login": name, "password": "bench-password-123"});
        http.post(format!("{base}/api/v1/auth/login"))
            .json(&login)
            .send()
            .await?
    } else {
        response
    };
    let value: Value = response.json().await?;
    value["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access token in the sign-up answer")
}

/// All open connections and what they have received.
pub struct Fleet {
    tasks: JoinSet<()>,
    /// Latest fan-out tag each connection must see; the count of those that have.
    expected: watch::Sender<String>,
    received: Arc<AtomicUsize>,
    last_receipt: Arc<Mutex<Option<Instant>>>,
    size: usize,
}

impl Fleet {
    pub async fn connect(base: &str, token: &str, size: usize) -> anyhow::Result<Fleet> {
        let url = format!(
            "{}/socket/websocket?token={token}&vsn=2.0.0",
            base.replacen("http", "ws", 1)
        );
        let server: SocketAddr = tokio::net::lookup_host(
            base.split("://")
                .nth(1)
                .unwrap_or_default()
                .trim_end_matches('/'),
        )
        .await?
        .next()
        .context("server address")?;
        let (expected, _) = watch::channel(String::new());
        let received = Arc::new(AtomicUsize::new(0));
        let last_receipt = Arc::new(Mutex::new(None));
        let joined = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        let gate = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
        for n in 0..size {
            let permit = gate.clone().acquire_owned().await?;
            let (url, joined, received, last_receipt) = (
                url.clone(),
                joined.clone(),
                received.clone(),
                last_receipt.clone(),
            );
            let mut tags = expected.subscribe();
            let mut permit = Some(permit);
            tasks.spawn(async move {
                let stream = match open(&url, server, n).await {
                    Ok(stream) => stream,
                    Err(e) => {
                        eprintln!("connection {n} failed: {e}");
                        return;
                    }
                };
                let (mut sink, mut stream) = stream.split();
                let join = json!(["1", "1", "room:lobby", "phx_join", {}]).to_string();
                if sink.send(Message::text(join)).await.is_err() {
                    return;
                }
                let mut heartbeat = tokio::time::interval(Duration::from_secs(30));
                heartbeat.tick().await;
                let mut counted_join = false;
                loop {
                    tokio::select! {
                        frame = stream.next() => {
                            let Some(Ok(Message::Text(text))) = frame else {
                                if matches!(frame, Some(Ok(_))) { continue }
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
                            if !tag.is_empty() && text.contains("new_msg") && text.contains(&tag) {
                                *last_receipt.lock().await = Some(Instant::now());
                                received.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ = heartbeat.tick() => {
                            let beat = json!([null, "hb", "phoenix", "heartbeat", {}]).to_string();
                            if sink.send(Message::text(beat)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
        let deadline = Instant::now() + BOUND * 5;
        while joined.load(Ordering::Relaxed) < size {
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
            last_receipt,
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

    /// Posts one message and returns the seconds until the last connection received it.
    pub async fn fan_out(
        &mut self,
        http: &reqwest::Client,
        base: &str,
        token: &str,
        n: usize,
    ) -> anyhow::Result<f64> {
        let tag = format!("fanout-{}-{n}", std::process::id());
        self.received.store(0, Ordering::Relaxed);
        self.expected.send_replace(tag.clone());
        let sent = Instant::now();
        let response = http
            .post(format!("{base}/api/v1/rooms/lobby/messages"))
            .bearer_auth(token)
            .json(&json!({"body": tag}))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("posting failed: {}", response.status());
        }
        let deadline = sent + BOUND;
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
        let last = self.last_receipt.lock().await.unwrap_or(sent);
        Ok(last.duration_since(sent).as_secs_f64())
    }

    pub async fn close(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Opens connection `n` from source address 127.0.0.(2 + n / 20000), so 10,000s of
/// connections never run out of ephemeral ports on one address.
async fn open(
    url: &str,
    server: SocketAddr,
    n: usize,
) -> anyhow::Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>> {
    let source = Ipv4Addr::new(
        127,
        0,
        (n / 20_000 / 250) as u8,
        2 + (n / 20_000 % 250) as u8,
    );
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let stream = tokio::time::timeout(BOUND, socket.connect(server)).await??;
    stream.set_nodelay(true)?;
    let (ws, _) =
        tokio::time::timeout(BOUND, tokio_tungstenite::client_async(url, stream)).await??;
    Ok(ws)
}
