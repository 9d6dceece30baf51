//! `chat`: M public rooms of K members each; every member posts `new_msg` on its channel at a
//! fixed rate. Each body carries the sender and its send time, so every other member's receipt
//! gives an end-to-end latency (push → stored → broadcast → received); the sender's `ok` reply
//! gives the time to stored.
//!
//! Accounts: K users `b{pid}m{j}`, member j of every room being user j (one socket per room and
//! member). Rooms `bench-{pid}-{i}` are created public by user 0 over REST.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, BOUND, CONNECT_CONCURRENCY, HEARTBEAT};
use crate::proc_stats::ProcStats;
use crate::stalls::{StallMeter, Stalls};
use crate::stats::Summary;

pub struct Params {
    pub rooms: usize,
    pub members: usize,
    /// Messages per second each member posts.
    pub rate: f64,
    pub seconds: u64,
}

#[derive(Debug, Serialize)]
pub struct ChatResult {
    pub scenario: &'static str,
    pub label: String,
    pub rooms: usize,
    pub members: usize,
    pub connections: usize,
    pub rate_per_member: f64,
    pub seconds: f64,
    pub messages_sent: u64,
    pub messages_stored: u64,
    pub messages_refused: u64,
    /// The first refusal's reason, if any.
    pub first_refusal: Option<String>,
    pub deliveries_expected: u64,
    pub deliveries: u64,
    pub deliveries_lost: u64,
    pub connections_dropped: usize,
    pub stored_per_second: f64,
    pub deliveries_per_second: f64,
    /// Push → another member's receipt of the `new_msg` broadcast.
    pub delivery_latency: Summary,
    /// Push → the sender's `ok` reply (the message is stored).
    pub stored_latency: Summary,
    pub server_cpu_seconds: f64,
    /// Server CPU-seconds per wall-second over the sending and draining phase (1.0 = one core).
    pub server_cpu_fraction: f64,
    pub server_cpu_ms_per_message: f64,
    /// How late a 1 ms sleep woke in this process while sending and draining: the machine's
    /// own stalls, which every message in flight waits out too.
    pub machine_stalls: Stalls,
}

/// What the connections count together.
#[derive(Default)]
struct Counters {
    joined: AtomicUsize,
    failed: AtomicUsize,
    dropped: AtomicUsize,
    sent: AtomicU64,
    stored: AtomicU64,
    refused: AtomicU64,
    received: AtomicU64,
    first_refusal: std::sync::Mutex<Option<String>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Joining,
    Sending,
    Draining,
    Done,
}

/// One connection's latencies, in microseconds.
struct Latencies {
    delivery: Vec<u64>,
    stored: Vec<u64>,
}

pub async fn run(
    http: &reqwest::Client,
    base: &str,
    server: &ProcStats,
    label: &str,
    params: &Params,
) -> anyhow::Result<ChatResult> {
    if params.members < 2 || params.rooms == 0 {
        bail!("chat needs at least one room of at least two members");
    }
    if params.rate <= 0.0 || params.rate > 40.0 {
        bail!(
            "--rate must be in (0, 40] messages/s per member (the server refuses more than 50/s per socket)"
        );
    }
    let pid = std::process::id();
    eprintln!("chat: registering {} users", params.members);
    let accounts = client::register_many(http, base, &format!("b{pid}m"), params.members).await?;
    eprintln!("chat: creating {} rooms", params.rooms);
    let owner = &accounts[0].token;
    let slugs: Vec<String> = (0..params.rooms)
        .map(|i| format!("bench-{pid}-{i}"))
        .collect();
    let created: Vec<anyhow::Result<()>> = futures_util::stream::iter(
        slugs
            .iter()
            .map(|slug| client::create_room(http, base, owner, slug)),
    )
    .buffer_unordered(8)
    .collect()
    .await;
    created.into_iter().collect::<anyhow::Result<Vec<()>>>()?;

    let size = params.rooms * params.members;
    eprintln!("chat: joining {size} connections");
    let address = client::server_addr(base).await?;
    let counters = Arc::new(Counters::default());
    let (phase, _) = watch::channel(Phase::Joining);
    let epoch = Instant::now();
    let period = Duration::from_secs_f64(1.0 / params.rate);
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for n in 0..size {
        let permit = gate.clone().acquire_owned().await?;
        if counters.failed.load(Ordering::Relaxed) > 0 {
            break;
        }
        let (room, member) = (n / params.members, n % params.members);
        let url = client::socket_url(base, &accounts[member].token);
        let topic = format!("room:{}", slugs[room]);
        // Spread the members' first posts evenly over one period.
        let phase_offset = period.mul_f64((n as f64 * 0.618_034) % 1.0);
        let connection = Connection {
            n,
            topic,
            counters: counters.clone(),
            phase: phase.subscribe(),
            epoch,
            period,
            phase_offset,
        };
        tasks.spawn(async move { connection.run(url, address, permit).await });
    }
    let deadline = Instant::now() + BOUND * 5;
    while counters.joined.load(Ordering::Relaxed) < size {
        let failed = counters.failed.load(Ordering::Relaxed);
        if failed > 0 || Instant::now() > deadline {
            phase.send_replace(Phase::Done);
            tasks.abort_all();
            bail!(
                "only {} of {size} connections joined ({failed} failed)",
                counters.joined.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the joins' presence traffic settle.
    tokio::time::sleep(Duration::from_secs(1)).await;

    eprintln!(
        "chat: posting for {} s at {} msg/s per member",
        params.seconds, params.rate
    );
    let cpu_start = server.sample()?.cpu_seconds;
    let stall_meter = StallMeter::start();
    let started = Instant::now();
    phase.send_replace(Phase::Sending);
    tokio::time::sleep(Duration::from_secs(params.seconds)).await;
    phase.send_replace(Phase::Draining);
    let send_seconds = started.elapsed().as_secs_f64();
    // Wait, bounded, for the outstanding replies and their broadcasts.
    let others = (params.members - 1) as u64;
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sent = counters.sent.load(Ordering::Relaxed);
        let answered =
            counters.stored.load(Ordering::Relaxed) + counters.refused.load(Ordering::Relaxed);
        let expected = counters.stored.load(Ordering::Relaxed) * others;
        if (answered >= sent && counters.received.load(Ordering::Relaxed) >= expected)
            || Instant::now() > drain_deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = server.sample()?.cpu_seconds - cpu_start;
    let machine_stalls = stall_meter.stop();
    phase.send_replace(Phase::Done);

    let mut delivery = Vec::new();
    let mut stored = Vec::new();
    let collect_deadline = Instant::now() + BOUND;
    while let Some(ended) = tokio::time::timeout_at(collect_deadline.into(), tasks.join_next())
        .await
        .ok()
        .flatten()
    {
        if let Ok(latencies) = ended {
            delivery.extend(latencies.delivery);
            stored.extend(latencies.stored);
        }
    }
    tasks.abort_all();

    let messages_stored = counters.stored.load(Ordering::Relaxed);
    let deliveries = counters.received.load(Ordering::Relaxed);
    let deliveries_expected = messages_stored * others;
    let first_refusal = counters
        .first_refusal
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    Ok(ChatResult {
        scenario: "chat",
        label: label.to_owned(),
        rooms: params.rooms,
        members: params.members,
        connections: size,
        rate_per_member: params.rate,
        seconds: send_seconds,
        messages_sent: counters.sent.load(Ordering::Relaxed),
        messages_stored,
        messages_refused: counters.refused.load(Ordering::Relaxed),
        first_refusal,
        deliveries_expected,
        deliveries,
        deliveries_lost: deliveries_expected.saturating_sub(deliveries),
        connections_dropped: counters.dropped.load(Ordering::Relaxed),
        stored_per_second: messages_stored as f64 / send_seconds,
        deliveries_per_second: deliveries as f64 / send_seconds,
        delivery_latency: Summary::of_micros(&mut delivery),
        stored_latency: Summary::of_micros(&mut stored),
        server_cpu_seconds: cpu,
        server_cpu_fraction: cpu / elapsed,
        server_cpu_ms_per_message: 1e3 * cpu / messages_stored.max(1) as f64,
        machine_stalls,
    })
}

pub fn print(result: &ChatResult) {
    println!(
        "scenario  label     rooms  members  msg/s_stored  deliveries/s  lost  refused  p50_ms  p99_ms  p99.9_ms  stored_p99_ms  server_cpu_%  stalls>10ms  stall_max_ms"
    );
    println!(
        "chat      {:<8}  {:>5}  {:>7}  {:>12.0}  {:>12.0}  {:>4}  {:>7}  {:>6.2}  {:>6.2}  {:>8.2}  {:>13.2}  {:>12.1}  {:>11}  {:>12.1}",
        result.label,
        result.rooms,
        result.members,
        result.stored_per_second,
        result.deliveries_per_second,
        result.deliveries_lost,
        result.messages_refused,
        result.delivery_latency.p50_ms,
        result.delivery_latency.p99_ms,
        result.delivery_latency.p999_ms,
        result.stored_latency.p99_ms,
        100.0 * result.server_cpu_fraction,
        result.machine_stalls.count,
        result.machine_stalls.max_ms
    );
    if let Some(reason) = &result.first_refusal {
        println!("first refusal: {reason}");
    }
}

struct Connection {
    n: usize,
    topic: String,
    counters: Arc<Counters>,
    phase: watch::Receiver<Phase>,
    epoch: Instant,
    period: Duration,
    phase_offset: Duration,
}

impl Connection {
    async fn run(
        mut self,
        url: String,
        address: std::net::SocketAddr,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Latencies {
        let mut latencies = Latencies {
            delivery: Vec::new(),
            stored: Vec::new(),
        };
        let mut permit = Some(permit);
        let socket = match client::open(&url, address, self.n).await {
            Ok(socket) => socket,
            Err(e) => {
                eprintln!("connection {} failed: {e}", self.n);
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                return latencies;
            }
        };
        let (mut sink, mut stream) = socket.split();
        let join = client::frame(Some("1"), Some("1"), &self.topic, "phx_join", json!({}));
        if sink.send(join).await.is_err() {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            return latencies;
        }
        let mut joined = false;
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.tick().await;
        let mut beats = 0;
        let mut ticker: Option<tokio::time::Interval> = None;
        let mut seq: u64 = 0;
        loop {
            tokio::select! {
                frame = stream.next() => {
                    let Some(Ok(Message::Text(text))) = frame else {
                        if matches!(frame, Some(Ok(_))) { continue }
                        let counter = if joined { &self.counters.dropped } else { &self.counters.failed };
                        counter.fetch_add(1, Ordering::Relaxed);
                        return latencies;
                    };
                    if !(text.contains("\"new_msg\"") || text.contains("\"phx_reply\"")) {
                        continue;
                    }
                    let Some(frame) = client::parse_frame(&text) else { continue };
                    let now = self.epoch.elapsed().as_micros() as u64;
                    match (frame.event.as_str(), frame.reference.as_deref()) {
                        ("phx_reply", Some("1")) if !joined => {
                            if frame.payload["status"] != "ok" {
                                eprintln!("join of {} refused: {}", self.topic, frame.payload);
                                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                                return latencies;
                            }
                            joined = true;
                            self.counters.joined.fetch_add(1, Ordering::Relaxed);
                            permit.take();
                        }
                        ("phx_reply", Some(r)) if r.starts_with('m') => {
                            if frame.payload["status"] == "ok" {
                                self.counters.stored.fetch_add(1, Ordering::Relaxed);
                                if let Some((_, _, sent)) = parse_body(&frame.payload["response"]["body"]) {
                                    latencies.stored.push(now.saturating_sub(sent));
                                }
                            } else {
                                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                                if let Ok(mut first) = self.counters.first_refusal.lock() {
                                    first.get_or_insert_with(|| frame.payload["response"].to_string());
                                }
                            }
                        }
                        ("new_msg", None) => {
                            if let Some((sender, _, sent)) = parse_body(&frame.payload["body"])
                                && sender != self.n
                            {
                                self.counters.received.fetch_add(1, Ordering::Relaxed);
                                latencies.delivery.push(now.saturating_sub(sent));
                            }
                        }
                        _ => {}
                    }
                }
                _ = beat.tick() => {
                    beats += 1;
                    if sink.send(client::heartbeat(beats)).await.is_err() {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                        return latencies;
                    }
                }
                changed = self.phase.changed() => {
                    if changed.is_err() {
                        return latencies;
                    }
                    match *self.phase.borrow_and_update() {
                        Phase::Sending => {
                            let mut interval = tokio::time::interval_at(
                                tokio::time::Instant::now() + self.phase_offset,
                                self.period,
                            );
                            // A client that falls behind sends fewer, and the report shows it.
                            interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
                            ticker = Some(interval);
                        }
                        Phase::Draining => ticker = None,
                        Phase::Done => return latencies,
                        Phase::Joining => {}
                    }
                }
                _ = next_tick(&mut ticker), if ticker.is_some() => {
                    seq += 1;
                    let sent = self.epoch.elapsed().as_micros() as u64;
                    let body = format!("bench {} {seq} {sent}", self.n);
                    let push = client::frame(Some("1"), Some(&format!("m{seq}")), &self.topic, "new_msg", json!({"body": body}));
                    if sink.send(push).await.is_err() {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                        return latencies;
                    }
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The ticker's next tick, or never without one.
async fn next_tick(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// `bench {sender} {seq} {sent_micros}` → its three numbers.
fn parse_body(body: &serde_json::Value) -> Option<(usize, u64, u64)> {
    let mut parts = body.as_str()?.strip_prefix("bench ")?.split(' ');
    let sender = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    Some((sender, seq, sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_sender_sequence_and_send_time() {
        assert_eq!(
            parse_body(&json!("bench 12 3 456789")),
            Some((12, 3, 456789))
        );
        assert_eq!(parse_body(&json!("hello")), None);
        assert_eq!(parse_body(&json!(7)), None);
    }
}
