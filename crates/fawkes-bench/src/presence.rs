//! `presence`: observers stay joined to one room while churners join and leave it at a fixed
//! rate. Each churner is its own user, so the `presence_diff` an observer receives names the
//! churner by its key (the user id); the time from the churner's `phx_join` (or `phx_leave`)
//! to each observer's diff is the latency.
//!
//! Accounts: the observers share the run's account; churners are users `b{pid}p{i}`. The room
//! `bench-{pid}-presence` is created public over REST.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Account, BOUND, CONNECT_CONCURRENCY, HEARTBEAT, Ws};
use crate::proc_stats::ProcStats;
use crate::stats::Summary;

pub struct Params {
    pub observers: usize,
    pub churners: usize,
    /// Joins per second, over all churners.
    pub rate: f64,
    /// Seconds a churner stays joined before it leaves.
    pub hold: f64,
    pub seconds: u64,
}

#[derive(Debug, Serialize)]
pub struct PresenceResult {
    pub scenario: &'static str,
    pub label: String,
    pub observers: usize,
    pub churners: usize,
    pub rate_joins_per_second: f64,
    pub hold_seconds: f64,
    pub seconds: f64,
    pub joins: u64,
    pub leaves: u64,
    /// Cycles the scheduler could not start because that churner was still busy.
    pub cycles_skipped: u64,
    pub join_diffs_expected: u64,
    pub join_diffs: u64,
    pub leave_diffs_expected: u64,
    pub leave_diffs: u64,
    pub connections_dropped: usize,
    /// `phx_join` sent → an observer's `presence_diff` with the churner in `joins`.
    pub join_latency: Summary,
    /// `phx_leave` sent → an observer's `presence_diff` with the churner in `leaves`.
    pub leave_latency: Summary,
    pub server_cpu_seconds: f64,
    pub server_cpu_fraction: f64,
}

#[derive(Default)]
struct Counters {
    observers_joined: AtomicUsize,
    churners_open: AtomicUsize,
    failed: AtomicUsize,
    dropped: AtomicUsize,
    joins: AtomicU64,
    leaves: AtomicU64,
    cycles_done: AtomicU64,
    join_diffs: AtomicU64,
    leave_diffs: AtomicU64,
}

/// When each churner (by user id) last sent its join and its leave, in µs since the epoch.
#[derive(Default)]
struct Pending {
    joins: HashMap<String, u64>,
    leaves: HashMap<String, u64>,
}

struct Shared {
    counters: Counters,
    pending: Mutex<Pending>,
    epoch: Instant,
    topic: String,
}

impl Shared {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

pub async fn run(
    http: &reqwest::Client,
    base: &str,
    account: &Account,
    server: &ProcStats,
    label: &str,
    params: &Params,
) -> anyhow::Result<PresenceResult> {
    if params.observers == 0 || params.churners == 0 || params.rate <= 0.0 {
        bail!("presence needs observers, churners and a positive rate");
    }
    let pid = std::process::id();
    eprintln!("presence: registering {} churner users", params.churners);
    let churners = client::register_many(http, base, &format!("b{pid}p"), params.churners).await?;
    let slug = format!("bench-{pid}-presence");
    client::create_room(http, base, &account.token, &slug).await?;
    let shared = Arc::new(Shared {
        counters: Counters::default(),
        pending: Mutex::new(Pending::default()),
        epoch: Instant::now(),
        topic: format!("room:{slug}"),
    });
    let address = client::server_addr(base).await?;
    let (phase, _) = watch::channel(false);
    let mut tasks = JoinSet::new();

    eprintln!("presence: joining {} observers", params.observers);
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
    let url = client::socket_url(base, &account.token);
    for n in 0..params.observers {
        let permit = gate.clone().acquire_owned().await?;
        let (url, shared, done) = (url.clone(), shared.clone(), phase.subscribe());
        tasks.spawn(async move { observe(n, url, address, shared, done, permit).await });
    }
    let mut commands = Vec::with_capacity(params.churners);
    for (i, churner) in churners.iter().enumerate() {
        let (send, receive) = mpsc::channel(1);
        commands.push(send);
        let url = client::socket_url(base, &churner.token);
        let key = churner.user_id.clone();
        let hold = Duration::from_secs_f64(params.hold);
        let n = params.observers + i;
        let (shared, done) = (shared.clone(), phase.subscribe());
        tasks.spawn(async move {
            churn(n, url, address, key, hold, receive, shared, done).await;
            (Vec::new(), Vec::new())
        });
    }
    let counters = &shared.counters;
    let deadline = Instant::now() + BOUND * 2;
    while counters.observers_joined.load(Ordering::Relaxed) < params.observers
        || counters.churners_open.load(Ordering::Relaxed) < params.churners
    {
        if counters.failed.load(Ordering::Relaxed) > 0 || Instant::now() > deadline {
            phase.send_replace(true);
            tasks.abort_all();
            bail!(
                "{} of {} observers joined, {} of {} churners connected",
                counters.observers_joined.load(Ordering::Relaxed),
                params.observers,
                counters.churners_open.load(Ordering::Relaxed),
                params.churners
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    eprintln!(
        "presence: {} joins/s for {} s, each held {} s",
        params.rate, params.seconds, params.hold
    );
    let cpu_start = server.sample()?.cpu_seconds;
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / params.rate));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let (mut scheduled, mut skipped, mut next) = (0u64, 0u64, 0usize);
    while started.elapsed() < Duration::from_secs(params.seconds) {
        ticker.tick().await;
        match commands[next % commands.len()].try_send(()) {
            Ok(()) => scheduled += 1,
            Err(_) => skipped += 1,
        }
        next += 1;
    }
    let send_seconds = started.elapsed().as_secs_f64();
    let observers = params.observers as u64;
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < drain_deadline {
        let done = counters.cycles_done.load(Ordering::Relaxed) >= scheduled;
        let joins = counters.joins.load(Ordering::Relaxed) * observers;
        let leaves = counters.leaves.load(Ordering::Relaxed) * observers;
        if done
            && counters.join_diffs.load(Ordering::Relaxed) >= joins
            && counters.leave_diffs.load(Ordering::Relaxed) >= leaves
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = server.sample()?.cpu_seconds - cpu_start;
    phase.send_replace(true);
    drop(commands);

    let (mut join_latency, mut leave_latency) = (Vec::new(), Vec::new());
    let collect_deadline = Instant::now() + BOUND;
    while let Some(ended) = tokio::time::timeout_at(collect_deadline.into(), tasks.join_next())
        .await
        .ok()
        .flatten()
    {
        if let Ok((joins, leaves)) = ended {
            join_latency.extend(joins);
            leave_latency.extend(leaves);
        }
    }
    tasks.abort_all();

    let joins = counters.joins.load(Ordering::Relaxed);
    let leaves = counters.leaves.load(Ordering::Relaxed);
    Ok(PresenceResult {
        scenario: "presence",
        label: label.to_owned(),
        observers: params.observers,
        churners: params.churners,
        rate_joins_per_second: params.rate,
        hold_seconds: params.hold,
        seconds: send_seconds,
        joins,
        leaves,
        cycles_skipped: skipped,
        join_diffs_expected: joins * observers,
        join_diffs: counters.join_diffs.load(Ordering::Relaxed),
        leave_diffs_expected: leaves * observers,
        leave_diffs: counters.leave_diffs.load(Ordering::Relaxed),
        connections_dropped: counters.dropped.load(Ordering::Relaxed),
        join_latency: Summary::of_micros(&mut join_latency),
        leave_latency: Summary::of_micros(&mut leave_latency),
        server_cpu_seconds: cpu,
        server_cpu_fraction: cpu / elapsed,
    })
}

pub fn print(result: &PresenceResult) {
    println!(
        "scenario  label     observers  churners  joins/s  joins  skipped  diffs_lost  join_p50_ms  join_p99_ms  leave_p50_ms  leave_p99_ms  server_cpu_%"
    );
    let lost = (result.join_diffs_expected + result.leave_diffs_expected)
        .saturating_sub(result.join_diffs + result.leave_diffs);
    println!(
        "presence  {:<8}  {:>9}  {:>8}  {:>7.1}  {:>5}  {:>7}  {:>10}  {:>11.2}  {:>11.2}  {:>12.2}  {:>12.2}  {:>12.1}",
        result.label,
        result.observers,
        result.churners,
        result.joins as f64 / result.seconds,
        result.joins,
        result.cycles_skipped,
        lost,
        result.join_latency.p50_ms,
        result.join_latency.p99_ms,
        result.leave_latency.p50_ms,
        result.leave_latency.p99_ms,
        100.0 * result.server_cpu_fraction
    );
}

/// An observer: joined for the whole run, timing every diff that names a churner.
async fn observe(
    n: usize,
    url: String,
    address: std::net::SocketAddr,
    shared: Arc<Shared>,
    mut done: watch::Receiver<bool>,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> (Vec<u64>, Vec<u64>) {
    let (mut joins, mut leaves) = (Vec::new(), Vec::new());
    let counters = &shared.counters;
    let Ok(socket) = client::open(&url, address, n).await else {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        return (joins, leaves);
    };
    let (mut sink, mut stream) = socket.split();
    let join = client::frame(Some("1"), Some("1"), &shared.topic, "phx_join", json!({}));
    if sink.send(join).await.is_err() {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        return (joins, leaves);
    }
    let mut permit = Some(permit);
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.tick().await;
    let mut beats = 0;
    loop {
        tokio::select! {
            frame = stream.next() => {
                let Some(Ok(Message::Text(text))) = frame else {
                    if matches!(frame, Some(Ok(_))) { continue }
                    let counter = if permit.is_none() { &counters.dropped } else { &counters.failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                    return (joins, leaves);
                };
                if permit.is_some() {
                    if text.contains("\"phx_reply\"") && text.contains("\"ok\"") {
                        permit.take();
                        counters.observers_joined.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
                if !text.contains("\"presence_diff\"") {
                    continue;
                }
                let Some(frame) = client::parse_frame(&text) else { continue };
                let now = shared.now();
                let Ok(pending) = shared.pending.lock() else { return (joins, leaves) };
                for (kind, latencies, sent, counter) in [
                    ("joins", &mut joins, &pending.joins, &counters.join_diffs),
                    ("leaves", &mut leaves, &pending.leaves, &counters.leave_diffs),
                ] {
                    let Some(keys) = frame.payload[kind].as_object() else { continue };
                    for key in keys.keys() {
                        if let Some(&at) = sent.get(key) {
                            latencies.push(now.saturating_sub(at));
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            _ = beat.tick() => {
                beats += 1;
                if sink.send(client::heartbeat(beats)).await.is_err() {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    return (joins, leaves);
                }
            }
            _ = done.changed() => return (joins, leaves),
        }
    }
}

/// A churner: connected for the whole run; on each command it joins, stays `hold`, and leaves.
#[allow(clippy::too_many_arguments)]
async fn churn(
    n: usize,
    url: String,
    address: std::net::SocketAddr,
    key: String,
    hold: Duration,
    mut commands: mpsc::Receiver<()>,
    shared: Arc<Shared>,
    mut done: watch::Receiver<bool>,
) {
    let counters = &shared.counters;
    let Ok(socket) = client::open(&url, address, n).await else {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    counters.churners_open.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = socket.split();
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.tick().await;
    let mut beats = 0;
    let mut cycle = 0u64;
    loop {
        tokio::select! {
            command = commands.recv() => {
                if command.is_none() {
                    return;
                }
                cycle += 1;
                let ok = join_hold_leave(&mut sink, &mut stream, &shared, &key, cycle, hold).await;
                counters.cycles_done.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            frame = stream.next() => {
                if !matches!(frame, Some(Ok(_))) {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            _ = beat.tick() => {
                beats += 1;
                if sink.send(client::heartbeat(beats)).await.is_err() {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            _ = done.changed() => return,
        }
    }
}

/// One cycle; false if the socket is gone or a reply never came.
async fn join_hold_leave(
    sink: &mut SplitSink<Ws, Message>,
    stream: &mut SplitStream<Ws>,
    shared: &Shared,
    key: &str,
    cycle: u64,
    hold: Duration,
) -> bool {
    let counters = &shared.counters;
    let join_ref = format!("j{cycle}");
    if let Ok(mut pending) = shared.pending.lock() {
        pending.joins.insert(key.to_owned(), shared.now());
    }
    let join = client::frame(
        Some(&join_ref),
        Some(&join_ref),
        &shared.topic,
        "phx_join",
        json!({}),
    );
    if sink.send(join).await.is_err() || !await_reply(stream, &join_ref).await {
        return false;
    }
    counters.joins.fetch_add(1, Ordering::Relaxed);
    // Stay joined, reading (and dropping) what the room sends.
    let until = tokio::time::Instant::now() + hold;
    while let Ok(frame) = tokio::time::timeout_at(until, stream.next()).await {
        if !matches!(frame, Some(Ok(_))) {
            return false;
        }
    }
    let leave_ref = format!("l{cycle}");
    if let Ok(mut pending) = shared.pending.lock() {
        pending.leaves.insert(key.to_owned(), shared.now());
    }
    let leave = client::frame(
        Some(&join_ref),
        Some(&leave_ref),
        &shared.topic,
        "phx_leave",
        json!({}),
    );
    if sink.send(leave).await.is_err() || !await_reply(stream, &leave_ref).await {
        return false;
    }
    counters.leaves.fetch_add(1, Ordering::Relaxed);
    true
}

/// Reads until the `ok` reply to `reference`, bounded.
async fn await_reply(stream: &mut SplitStream<Ws>, reference: &str) -> bool {
    let until = tokio::time::Instant::now() + BOUND;
    loop {
        match tokio::time::timeout_at(until, stream.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                if !text.contains("\"phx_reply\"") {
                    continue;
                }
                if let Some(frame) = client::parse_frame(&text)
                    && frame.reference.as_deref() == Some(reference)
                {
                    return frame.payload["status"] == "ok";
                }
            }
            Ok(Some(Ok(_))) => continue,
            _ => return false,
        }
    }
}
