//! `fawkes-bench`: opens many Phoenix-protocol connections to a Fawkes server on this machine
//! and measures what they cost it. Loopback only; every run is bounded in count and time.
//!
//! ```text
//! fawkes-bench idle     --server-pid PID --connections 10000 [--peer]
//! fawkes-bench fanout   --server-pid PID --connections 10000 --repeats 20 [--peer]
//! fawkes-bench chat     --server-pid PID --rooms 200 --members 10 --rate 1 --label sqlite
//! fawkes-bench presence --server-pid PID --observers 1000 --churners 100 --rate 50
//! fawkes-bench jobs     --database-url postgres://… --count 5000 --concurrency 10
//! fawkes-bench soak     --duration 3600
//! fawkes-bench cluster  --nodes http://127.0.0.1:4001,… --node-pids P1,… --connections 95000
//! fawkes-bench floor    --connections 9000 --frame-bytes 300
//! ```

mod chat;
mod client;
mod cluster;
mod floor;
mod jobs;
mod peer;
mod presence;
mod proc_stats;
mod soak;
mod stalls;
mod stats;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use client::{Fleet, FleetRun, Target};
use proc_stats::ProcStats;
use stats::{percentile, ratio};

#[derive(Parser)]
#[command(name = "fawkes-bench", about)]
struct Cli {
    /// The server's HTTP address; it must be on this machine.
    #[arg(long, default_value = "http://127.0.0.1:4000", global = true)]
    url: String,
    /// The server's process id, to read its memory and CPU from /proc.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Joined connections to open (idle, fanout).
    #[arg(long, default_value_t = 1000, global = true)]
    connections: usize,
    /// Where to write the JSON result.
    #[arg(long, default_value = "bench/results", global = true)]
    out: String,
    /// A name for this run's setup, e.g. the database (`sqlite`, `postgres`); part of the
    /// result's file name.
    #[arg(long, default_value = "", global = true)]
    label: String,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// N idle joined connections: server memory per connection and idle CPU.
    Idle {
        /// How long to watch the idle server.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[command(flatten)]
        peer: PeerArgs,
    },
    /// One message to N subscribers, repeated: time until the last one has it, and server CPU.
    Fanout {
        #[arg(long, default_value_t = 20)]
        repeats: usize,
        #[command(flatten)]
        peer: PeerArgs,
    },
    /// M rooms of K members each posting `new_msg` at a fixed rate: end-to-end latency.
    Chat {
        #[arg(long, default_value_t = 20)]
        rooms: usize,
        #[arg(long, default_value_t = 10)]
        members: usize,
        /// Messages per second each member posts.
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// N no-op jobs enqueued, then drained by the job worker: jobs per second on a database
    /// (needs no server).
    Jobs(jobs::Params),
    /// Churners joining and leaving a room while observers watch: `presence_diff` latency.
    Presence {
        #[arg(long, default_value_t = 100)]
        observers: usize,
        #[arg(long, default_value_t = 20)]
        churners: usize,
        /// Joins per second over all churners.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// Seconds each churner stays joined.
        #[arg(long, default_value_t = 1.0)]
        hold: f64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Chat, presence churn and REST at once for `--duration`, sampling the server: fails (exit
    /// status 1) on any error or when its memory is not flat.
    Soak(soak::Params),
    /// The idle and fan-out measures over a cluster of nodes on this machine, with the
    /// connections opened by one shard process per node.
    Cluster(cluster::Params),
    /// The kernel's cost of one small write to each of N loopback TCP connections, with no
    /// server: the least CPU a delivery can cost when each is its own write (needs no server).
    Floor {
        /// Bytes per write; the fan-out scenario's frames are about 300.
        #[arg(long, default_value_t = 300)]
        frame_bytes: usize,
    },
    /// One shard of a cluster run: `--connections` connections to `--url`, driven by the
    /// cluster command over stdin and stdout.
    #[command(hide = true)]
    Shard {
        #[arg(long)]
        token: String,
        /// The number of this shard's first connection, which picks its source addresses.
        #[arg(long)]
        first_connection: usize,
    },
}

#[derive(Args)]
struct PeerArgs {
    /// Run the same scenario against the Node `ws` peer too, and print the ratio Fawkes/peer.
    #[arg(long)]
    peer: bool,
    /// The peer's folder (package.json, lockfile, server.mjs).
    #[arg(long, default_value = "bench/peer")]
    peer_dir: PathBuf,
    /// The peer's port on 127.0.0.1.
    #[arg(long, default_value_t = 4100)]
    peer_port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Fails harmlessly when a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    if let Scenario::Jobs(params) = &cli.scenario {
        let result = jobs::run(params).await?;
        jobs::print(&result);
        save(
            &result,
            result_path(&cli.out, "jobs", &result_label(&cli.label, params), ""),
        )?;
        return Ok(());
    }
    if let Scenario::Floor { frame_bytes } = &cli.scenario {
        let limit =
            rlimit::increase_nofile_limit(u64::MAX).context("raising the open-file limit")?;
        if 2 * cli.connections as u64 + 64 > limit {
            bail!(
                "floor holds both ends of each connection: at most {} here",
                (limit - 64) / 2
            );
        }
        let result = floor::run(cli.connections, *frame_bytes).await?;
        floor::print(&result);
        let size = format!("-{}", cli.connections);
        save(&result, result_path(&cli.out, "floor", &cli.label, &size))?;
        return Ok(());
    }
    if !is_loopback(&cli.url) {
        bail!("fawkes-bench only targets servers on this machine (127.0.0.0/8 or localhost)");
    }
    if let Scenario::Soak(params) = &cli.scenario {
        rlimit::increase_nofile_limit(u64::MAX).context("raising the open-file limit")?;
        let result = soak::run(&cli.url, cli.server_pid, &cli.label, params).await?;
        soak::print(&result);
        let size = format!("-{}s", params.duration);
        save(&result, result_path(&cli.out, "soak", &cli.label, &size))?;
        if !result.passed {
            bail!(
                "soak failed: {} errors, memory {}",
                result.error_total,
                if result.memory.flat {
                    "flat"
                } else {
                    "not flat"
                }
            );
        }
        return Ok(());
    }
    // One process may hold about 20,000 files here; raise the soft limit to the hard one.
    let limit = rlimit::increase_nofile_limit(u64::MAX).context("raising the open-file limit")?;
    match &cli.scenario {
        Scenario::Cluster(params) => {
            let result = cluster::run(params, cli.connections).await?;
            cluster::print(&result);
            let size = format!("-{}x{}", params.nodes.len(), cli.connections);
            save(&result, result_path(&cli.out, "cluster", &cli.label, &size))?;
            return Ok(());
        }
        Scenario::Shard {
            token,
            first_connection,
        } => {
            if (cli.connections as u64) + 64 > limit {
                bail!("{} connections are too many for one shard", cli.connections);
            }
            return cluster::shard(&cli.url, token.clone(), cli.connections, *first_connection)
                .await;
        }
        _ => {}
    }
    let sockets = match &cli.scenario {
        Scenario::Idle { .. } | Scenario::Fanout { .. } => cli.connections,
        Scenario::Jobs(_)
        | Scenario::Soak(_)
        | Scenario::Cluster(_)
        | Scenario::Shard { .. }
        | Scenario::Floor { .. } => 0,
        Scenario::Chat { rooms, members, .. } => rooms * members,
        Scenario::Presence {
            observers,
            churners,
            ..
        } => observers + churners,
    };
    if (sockets as u64) + 64 > limit {
        bail!(
            "{sockets} connections need more than the {limit} open files this process may have; shard over processes"
        );
    }
    let Some(server_pid) = cli.server_pid else {
        bail!("--server-pid is required: the server's memory and CPU are read from /proc");
    };
    let server = ProcStats::new(server_pid);
    server.sample().context("the --server-pid process")?;
    let http = reqwest::Client::new();
    let account = client::sign_up(&http, &cli.url).await?;
    let fawkes = Target::Fawkes {
        base: cli.url.clone(),
        token: account.token.clone(),
    };

    let label = cli.label.as_str();
    let (name, json) = match cli.scenario {
        Scenario::Idle { seconds, peer } => {
            let ours = idle(&fawkes, &server, cli.connections, seconds).await?;
            print_idle_header();
            print_idle_row(&ours);
            if peer.peer {
                let node = peer::Peer::start(&peer.peer_dir, peer.peer_port).await?;
                let target = Target::Peer {
                    base: node.base.clone(),
                };
                let theirs =
                    idle(&target, &ProcStats::new(node.pid), cli.connections, seconds).await;
                node.stop().await;
                let theirs = theirs?;
                let compared = IdleComparison::new(ours, theirs);
                print_idle_row(&compared.peer);
                println!(
                    "fawkes/peer   rss_per_conn {:.2}   idle_cpu {:.2}",
                    compared.ratios.rss_per_connection, compared.ratios.idle_cpu
                );
                ("idle-vs-peer".to_owned(), serde_json::to_value(&compared)?)
            } else {
                ("idle".to_owned(), serde_json::to_value(&ours)?)
            }
        }
        Scenario::Fanout { repeats, peer } => {
            let ours = fanout(&http, &fawkes, &server, cli.connections, repeats).await?;
            print_fanout_header();
            print_fanout_row(&ours);
            if peer.peer {
                let node = peer::Peer::start(&peer.peer_dir, peer.peer_port).await?;
                let target = Target::Peer {
                    base: node.base.clone(),
                };
                let stats = ProcStats::new(node.pid);
                let theirs = fanout(&http, &target, &stats, cli.connections, repeats).await;
                node.stop().await;
                let theirs = theirs?;
                let compared = FanoutComparison::new(ours, theirs);
                print_fanout_row(&compared.peer);
                println!(
                    "fawkes/peer   last_receipt_p50 {:.2}   last_receipt_p99 {:.2}   cpu_per_M_deliveries {:.2}   rss_per_conn {:.2}",
                    compared.ratios.last_receipt_p50,
                    compared.ratios.last_receipt_p99,
                    compared.ratios.cpu_per_million_deliveries,
                    compared.ratios.rss_per_connection
                );
                (
                    "fanout-vs-peer".to_owned(),
                    serde_json::to_value(&compared)?,
                )
            } else {
                ("fanout".to_owned(), serde_json::to_value(&ours)?)
            }
        }
        Scenario::Chat {
            rooms,
            members,
            rate,
            seconds,
        } => {
            let params = chat::Params {
                rooms,
                members,
                rate,
                seconds,
            };
            let result = chat::run(&http, &cli.url, &server, label, &params).await?;
            chat::print(&result);
            (
                format!("chat-{rooms}x{members}"),
                serde_json::to_value(&result)?,
            )
        }
        Scenario::Presence {
            observers,
            churners,
            rate,
            hold,
            seconds,
        } => {
            let params = presence::Params {
                observers,
                churners,
                rate,
                hold,
                seconds,
            };
            let result = presence::run(&http, &cli.url, &account, &server, label, &params).await?;
            presence::print(&result);
            (
                format!("presence-{observers}"),
                serde_json::to_value(&result)?,
            )
        }
        Scenario::Jobs(_)
        | Scenario::Soak(_)
        | Scenario::Cluster(_)
        | Scenario::Shard { .. }
        | Scenario::Floor { .. } => {
            bail!("the jobs, soak, cluster and floor scenarios are handled above")
        }
    };
    let size = match name.as_str() {
        "idle" | "fanout" | "idle-vs-peer" | "fanout-vs-peer" => format!("-{}", cli.connections),
        _ => String::new(),
    };
    save(&json, result_path(&cli.out, &name, label, &size))?;
    Ok(())
}

/// The jobs scenario's label: the one given, else the database's scheme.
fn result_label(label: &str, params: &jobs::Params) -> String {
    if label.is_empty() {
        params
            .database_url
            .split("://")
            .next()
            .unwrap_or_default()
            .to_owned()
    } else {
        label.to_owned()
    }
}

/// Writes a result as JSON to `path`, making its folder, and says where.
fn save(result: &impl Serialize, path: PathBuf) -> anyhow::Result<()> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    std::fs::write(&path, serde_json::to_vec_pretty(result)?)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// `{out}/{scenario}[-{label}]{size}.json`
fn result_path(out: &str, name: &str, label: &str, size: &str) -> PathBuf {
    let label = if label.is_empty() {
        String::new()
    } else {
        format!("-{label}")
    };
    PathBuf::from(out).join(format!("{name}{label}{size}.json"))
}

#[derive(Debug, Serialize)]
struct IdleResult {
    scenario: &'static str,
    target: &'static str,
    connections: usize,
    connect_seconds: f64,
    server_rss_before_bytes: u64,
    server_rss_joined_bytes: u64,
    rss_per_connection_bytes: f64,
    idle_seconds: u64,
    idle_cpu_fraction: f64,
}

#[derive(Debug, Serialize)]
struct FanoutResult {
    scenario: &'static str,
    target: &'static str,
    connections: usize,
    repeats: usize,
    last_receipt_seconds: Vec<f64>,
    p50_seconds: f64,
    p99_seconds: f64,
    server_cpu_seconds: f64,
    deliveries: f64,
    server_cpu_seconds_per_million_deliveries: f64,
    rss_per_connection_bytes: f64,
}

/// Fawkes and the peer from the same run; each ratio is Fawkes / peer (below 1: Fawkes uses
/// less, or is faster).
#[derive(Debug, Serialize)]
struct IdleComparison {
    scenario: &'static str,
    fawkes: IdleResult,
    peer: IdleResult,
    ratios: IdleRatios,
}

#[derive(Debug, Serialize)]
struct IdleRatios {
    rss_per_connection: f64,
    idle_cpu: f64,
}

impl IdleComparison {
    fn new(fawkes: IdleResult, peer: IdleResult) -> Self {
        let ratios = IdleRatios {
            rss_per_connection: ratio(
                fawkes.rss_per_connection_bytes,
                peer.rss_per_connection_bytes,
            ),
            idle_cpu: ratio(fawkes.idle_cpu_fraction, peer.idle_cpu_fraction),
        };
        Self {
            scenario: "idle-vs-peer",
            fawkes,
            peer,
            ratios,
        }
    }
}

#[derive(Debug, Serialize)]
struct FanoutComparison {
    scenario: &'static str,
    fawkes: FanoutResult,
    peer: FanoutResult,
    ratios: FanoutRatios,
}

#[derive(Debug, Serialize)]
struct FanoutRatios {
    last_receipt_p50: f64,
    last_receipt_p99: f64,
    cpu_per_million_deliveries: f64,
    rss_per_connection: f64,
}

impl FanoutComparison {
    fn new(fawkes: FanoutResult, peer: FanoutResult) -> Self {
        let ratios = FanoutRatios {
            last_receipt_p50: ratio(fawkes.p50_seconds, peer.p50_seconds),
            last_receipt_p99: ratio(fawkes.p99_seconds, peer.p99_seconds),
            cpu_per_million_deliveries: ratio(
                fawkes.server_cpu_seconds_per_million_deliveries,
                peer.server_cpu_seconds_per_million_deliveries,
            ),
            rss_per_connection: ratio(
                fawkes.rss_per_connection_bytes,
                peer.rss_per_connection_bytes,
            ),
        };
        Self {
            scenario: "fanout-vs-peer",
            fawkes,
            peer,
            ratios,
        }
    }
}

/// Opens the fleet and returns it with the server's RSS before and after, and the connect time.
async fn join_fleet(
    target: &Target,
    server: &ProcStats,
    connections: usize,
    run: FleetRun,
) -> anyhow::Result<(Fleet, u64, u64, f64)> {
    let before = server.sample()?;
    let started = Instant::now();
    let fleet = Fleet::connect(target, connections, run).await?;
    let connect_secs = started.elapsed().as_secs_f64();
    // Let the server settle allocations before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let joined = server.sample()?;
    Ok((fleet, before.rss_bytes, joined.rss_bytes, connect_secs))
}

async fn idle(
    target: &Target,
    server: &ProcStats,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<IdleResult> {
    let (mut fleet, before, joined, connect_seconds) =
        join_fleet(target, server, connections, FleetRun::Idle).await?;
    let idle_start = server.sample()?;
    let kept = fleet.keep_alive_for(Duration::from_secs(seconds)).await;
    let idle_end = server.sample()?;
    fleet.close().await;
    kept?;
    let cpu = idle_end.cpu_seconds - idle_start.cpu_seconds;
    Ok(IdleResult {
        scenario: "idle",
        target: target.name(),
        connections,
        connect_seconds,
        server_rss_before_bytes: before,
        server_rss_joined_bytes: joined,
        rss_per_connection_bytes: joined.saturating_sub(before) as f64 / connections as f64,
        idle_seconds: seconds,
        idle_cpu_fraction: cpu / seconds.max(1) as f64,
    })
}

async fn fanout(
    http: &reqwest::Client,
    target: &Target,
    server: &ProcStats,
    connections: usize,
    repeats: usize,
) -> anyhow::Result<FanoutResult> {
    let (mut fleet, before, joined, _) =
        join_fleet(target, server, connections, FleetRun::Fanout).await?;
    let cpu_start = server.sample()?.cpu_seconds;
    let mut latencies = Vec::with_capacity(repeats);
    for n in 0..repeats {
        match fleet.fan_out(http, target, n).await {
            Ok(latency) => latencies.push(latency),
            Err(e) => {
                fleet.close().await;
                return Err(e);
            }
        }
    }
    let cpu = server.sample()?.cpu_seconds - cpu_start;
    fleet.close().await;
    latencies.sort_by(f64::total_cmp);
    let rss_per_connection = joined.saturating_sub(before) as f64 / connections as f64;
    Ok(FanoutResult::new(
        target.name(),
        connections,
        latencies,
        cpu,
        rss_per_connection,
    ))
}

impl FanoutResult {
    /// The result of broadcasts to `connections` subscribers that reached the last one after
    /// `latencies` seconds (sorted) and cost the server `cpu` seconds.
    fn new(
        target: &'static str,
        connections: usize,
        latencies: Vec<f64>,
        cpu: f64,
        rss_per_connection_bytes: f64,
    ) -> Self {
        let deliveries = (latencies.len() * connections) as f64;
        Self {
            scenario: "fanout",
            target,
            connections,
            repeats: latencies.len(),
            p50_seconds: percentile(&latencies, 0.50),
            p99_seconds: percentile(&latencies, 0.99),
            last_receipt_seconds: latencies,
            server_cpu_seconds: cpu,
            deliveries,
            server_cpu_seconds_per_million_deliveries: cpu / deliveries * 1e6,
            rss_per_connection_bytes,
        }
    }
}

fn print_idle_header() {
    println!(
        "scenario  target  connections  connect_s  rss_before_MiB  rss_joined_MiB  rss_per_conn_KiB  idle_cpu_%"
    );
}

fn print_idle_row(r: &IdleResult) {
    println!(
        "idle      {:<6}  {:>11}  {:>9.1}  {:>14.1}  {:>14.1}  {:>16.2}  {:>10.2}",
        r.target,
        r.connections,
        r.connect_seconds,
        mib(r.server_rss_before_bytes),
        mib(r.server_rss_joined_bytes),
        r.rss_per_connection_bytes / 1024.0,
        100.0 * r.idle_cpu_fraction
    );
}

fn print_fanout_header() {
    println!(
        "scenario  target  connections  repeats  last_receipt_p50_ms  last_receipt_p99_ms  server_cpu_s_per_M_deliveries  rss_per_conn_KiB"
    );
}

fn print_fanout_row(r: &FanoutResult) {
    println!(
        "fanout    {:<6}  {:>11}  {:>7}  {:>19.1}  {:>19.1}  {:>29.2}  {:>16.2}",
        r.target,
        r.connections,
        r.repeats,
        r.p50_seconds * 1e3,
        r.p99_seconds * 1e3,
        r.server_cpu_seconds_per_million_deliveries,
        r.rss_per_connection_bytes / 1024.0
    );
}

fn is_loopback(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or_default()
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    host == "localhost" || host.starts_with("127.")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn keys(value: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = value
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }

    fn idle_result(target: &'static str, rss: f64) -> IdleResult {
        IdleResult {
            scenario: "idle",
            target,
            connections: 10,
            connect_seconds: 1.0,
            server_rss_before_bytes: 1000,
            server_rss_joined_bytes: 2000,
            rss_per_connection_bytes: rss,
            idle_seconds: 10,
            idle_cpu_fraction: 0.0,
        }
    }

    fn fanout_result(target: &'static str, p50: f64, cpu: f64) -> FanoutResult {
        FanoutResult {
            scenario: "fanout",
            target,
            connections: 10,
            repeats: 2,
            last_receipt_seconds: vec![p50, p50],
            p50_seconds: p50,
            p99_seconds: p50,
            server_cpu_seconds: cpu,
            deliveries: 20.0,
            server_cpu_seconds_per_million_deliveries: cpu / 20.0 * 1e6,
            rss_per_connection_bytes: 100.0,
        }
    }

    #[test]
    fn only_loopback_urls_are_allowed() {
        assert!(is_loopback("http://127.0.0.1:4000"));
        assert!(is_loopback("http://localhost:4000/"));
        assert!(!is_loopback("http://10.0.0.1:4000"));
        assert!(!is_loopback("http://example.com"));
    }

    #[test]
    fn idle_json_keeps_its_fields() {
        let json = serde_json::to_value(idle_result("fawkes", 100.0)).expect("json");
        assert_eq!(
            keys(&json),
            [
                "connect_seconds",
                "connections",
                "idle_cpu_fraction",
                "idle_seconds",
                "rss_per_connection_bytes",
                "scenario",
                "server_rss_before_bytes",
                "server_rss_joined_bytes",
                "target"
            ]
        );
    }

    #[test]
    fn fanout_json_keeps_its_fields() {
        let json = serde_json::to_value(fanout_result("fawkes", 0.1, 1.0)).expect("json");
        assert_eq!(
            keys(&json),
            [
                "connections",
                "deliveries",
                "last_receipt_seconds",
                "p50_seconds",
                "p99_seconds",
                "repeats",
                "rss_per_connection_bytes",
                "scenario",
                "server_cpu_seconds",
                "server_cpu_seconds_per_million_deliveries",
                "target"
            ]
        );
    }

    #[test]
    fn cluster_json_holds_the_idle_and_fanout_figures_of_all_nodes() {
        let cluster = cluster::ClusterResult {
            scenario: "cluster",
            nodes: 5,
            idle: idle_result("fawkes", 100.0),
            fanout: fanout_result("fawkes", 0.1, 1.0),
        };
        let json = serde_json::to_value(&cluster).expect("json");
        assert_eq!(keys(&json), ["fanout", "idle", "nodes", "scenario"]);
        assert_eq!(json["idle"]["rss_per_connection_bytes"], 100.0);
        assert_eq!(json["fanout"]["p99_seconds"], 0.1);
    }

    #[test]
    fn comparisons_hold_both_runs_and_fawkes_over_peer_ratios() {
        let idle = IdleComparison::new(idle_result("fawkes", 100.0), idle_result("peer", 400.0));
        let json = serde_json::to_value(&idle).expect("json");
        assert_eq!(keys(&json), ["fawkes", "peer", "ratios", "scenario"]);
        assert_eq!(json["ratios"]["rss_per_connection"], 0.25);
        // 0/0 has no ratio: JSON null, not a made-up number.
        assert_eq!(json["ratios"]["idle_cpu"], Value::Null);
        assert_eq!(json["peer"]["target"], "peer");

        let fanout = FanoutComparison::new(
            fanout_result("fawkes", 0.1, 1.0),
            fanout_result("peer", 0.2, 4.0),
        );
        let json = serde_json::to_value(&fanout).expect("json");
        assert_eq!(json["ratios"]["last_receipt_p50"], 0.5);
        assert_eq!(json["ratios"]["cpu_per_million_deliveries"], 0.25);
        assert_eq!(json["ratios"]["rss_per_connection"], 1.0);
    }

    #[test]
    fn chat_and_presence_json_carry_their_summaries() {
        let summary = stats::Summary::of_micros(&mut [3000, 1000, 2000]);
        let chat = chat::ChatResult {
            scenario: "chat",
            label: "sqlite".into(),
            rooms: 2,
            members: 3,
            connections: 6,
            rate_per_member: 1.0,
            seconds: 1.0,
            messages_sent: 6,
            messages_stored: 6,
            messages_refused: 0,
            first_refusal: None,
            deliveries_expected: 12,
            deliveries: 12,
            deliveries_lost: 0,
            connections_dropped: 0,
            stored_per_second: 6.0,
            deliveries_per_second: 12.0,
            delivery_latency: summary.clone(),
            stored_latency: summary.clone(),
            server_cpu_seconds: 0.1,
            server_cpu_fraction: 0.1,
            server_cpu_ms_per_message: 16.0,
            machine_stalls: stalls::Stalls {
                max_ms: 12.5,
                count: 1,
                total_ms: 12.5,
            },
        };
        let json = serde_json::to_value(&chat).expect("json");
        assert_eq!(
            keys(&json["delivery_latency"]),
            ["count", "max_ms", "mean_ms", "p50_ms", "p999_ms", "p99_ms"]
        );
        assert_eq!(json["delivery_latency"]["p50_ms"], 2.0);
        assert_eq!(json["first_refusal"], Value::Null);
        assert_eq!(json["machine_stalls"]["count"], 1);
        for key in [
            "stored_per_second",
            "deliveries_per_second",
            "deliveries_lost",
            "server_cpu_fraction",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }

        let presence = presence::PresenceResult {
            scenario: "presence",
            label: String::new(),
            observers: 3,
            churners: 2,
            rate_joins_per_second: 1.0,
            hold_seconds: 1.0,
            seconds: 1.0,
            joins: 1,
            leaves: 1,
            cycles_skipped: 0,
            join_diffs_expected: 3,
            join_diffs: 3,
            leave_diffs_expected: 3,
            leave_diffs: 3,
            connections_dropped: 0,
            join_latency: summary.clone(),
            leave_latency: summary,
            server_cpu_seconds: 0.0,
            server_cpu_fraction: 0.0,
        };
        let json = serde_json::to_value(&presence).expect("json");
        assert_eq!(json["join_latency"]["count"], 3);
        assert!(json.get("leave_latency").is_some());
    }

    #[test]
    fn result_files_are_named_by_scenario_label_and_size() {
        assert_eq!(
            result_path("bench/results", "chat-20x10", "postgres", ""),
            PathBuf::from("bench/results/chat-20x10-postgres.json")
        );
        assert_eq!(
            result_path("out", "idle", "", "-1000"),
            PathBuf::from("out/idle-1000.json")
        );
    }
}
