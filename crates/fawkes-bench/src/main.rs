//! `fawkes-bench`: opens many Phoenix-protocol connections to a Fawkes server on this machine
//! and measures what they cost it. Loopback only; every run is bounded in count and time.
//!
//! ```text
//! fawkes-bench idle   --url http://127.0.0.1:4000 --server-pid PID --connections 10000
//! fawkes-bench fanout --url http://127.0.0.1:4000 --server-pid PID --connections 10000 --repeats 20
//! ```

mod client;
mod proc_stats;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::json;

use client::Fleet;
use proc_stats::ProcStats;

#[derive(Parser)]
#[command(name = "fawkes-bench", about)]
struct Cli {
    /// The server's HTTP address; it must be on this machine.
    #[arg(long, default_value = "http://127.0.0.1:4000", global = true)]
    url: String,
    /// The server's process id, to read its memory and CPU from /proc.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Joined connections to open.
    #[arg(long, default_value_t = 1000, global = true)]
    connections: usize,
    /// Where to write the JSON result.
    #[arg(long, default_value = "bench/results", global = true)]
    out: String,
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
    },
    /// One message to N subscribers, repeated: time until the last one has it, and server CPU.
    Fanout {
        #[arg(long, default_value_t = 20)]
        repeats: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !is_loopback(&cli.url) {
        bail!("fawkes-bench only targets servers on this machine (127.0.0.0/8 or localhost)");
    }
    // One process may hold about 20,000 files here; raise the soft limit to the hard one.
    let limit = rlimit::increase_nofile_limit(u64::MAX).context("raising the open-file limit")?;
    if (cli.connections as u64) + 64 > limit {
        bail!(
            "{} connections need more than the {limit} open files this process may have; shard over processes",
            cli.connections
        );
    }
    let Some(server_pid) = cli.server_pid else {
        bail!("--server-pid is required: the server's memory and CPU are read from /proc");
    };
    let server = ProcStats::new(server_pid);
    let http = reqwest::Client::new();
    let token = client::sign_up(&http, &cli.url).await?;
    let before = server.sample()?;
    let started = Instant::now();
    let mut fleet = Fleet::connect(&cli.url, &token, cli.connections).await?;
    let connect_secs = started.elapsed().as_secs_f64();
    // Let the server settle allocations before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let joined = server.sample()?;
    let rss_per_connection =
        (joined.rss_bytes.saturating_sub(before.rss_bytes)) as f64 / cli.connections as f64;

    let result = match cli.scenario {
        Scenario::Idle { seconds } => {
            let idle_start = server.sample()?;
            fleet.keep_alive_for(Duration::from_secs(seconds)).await?;
            let idle_end = server.sample()?;
            let cpu = idle_end.cpu_seconds - idle_start.cpu_seconds;
            println!(
                "scenario      connections  connect_s  rss_before_MiB  rss_joined_MiB  rss_per_conn_KiB  idle_cpu_%"
            );
            println!(
                "idle          {:>11}  {:>9.1}  {:>14.1}  {:>14.1}  {:>16.2}  {:>10.2}",
                cli.connections,
                connect_secs,
                mib(before.rss_bytes),
                mib(joined.rss_bytes),
                rss_per_connection / 1024.0,
                100.0 * cpu / seconds as f64
            );
            json!({
                "scenario": "idle", "connections": cli.connections, "connect_seconds": connect_secs,
                "server_rss_before_bytes": before.rss_bytes, "server_rss_joined_bytes": joined.rss_bytes,
                "rss_per_connection_bytes": rss_per_connection, "idle_cpu_fraction": cpu / seconds as f64,
            })
        }
        Scenario::Fanout { repeats } => {
            let cpu_start = server.sample()?.cpu_seconds;
            let mut latencies = Vec::with_capacity(repeats);
            for n in 0..repeats {
                latencies.push(fleet.fan_out(&http, &cli.url, &token, n).await?);
            }
            let cpu = server.sample()?.cpu_seconds - cpu_start;
            latencies.sort_by(f64::total_cmp);
            let deliveries = (repeats * cli.connections) as f64;
            let p50 = percentile(&latencies, 0.50);
            let p99 = percentile(&latencies, 0.99);
            let cpu_per_million = cpu / deliveries * 1e6;
            println!(
                "scenario      connections  repeats  last_receipt_p50_ms  last_receipt_p99_ms  server_cpu_s_per_M_deliveries  rss_per_conn_KiB"
            );
            println!(
                "fanout        {:>11}  {:>7}  {:>19.1}  {:>19.1}  {:>29.2}  {:>16.2}",
                cli.connections,
                repeats,
                p50 * 1e3,
                p99 * 1e3,
                cpu_per_million,
                rss_per_connection / 1024.0
            );
            json!({
                "scenario": "fanout", "connections": cli.connections, "repeats": repeats,
                "last_receipt_seconds": latencies, "p50_seconds": p50, "p99_seconds": p99,
                "server_cpu_seconds": cpu, "deliveries": deliveries,
                "server_cpu_seconds_per_million_deliveries": cpu_per_million,
                "rss_per_connection_bytes": rss_per_connection,
            })
        }
    };
    std::fs::create_dir_all(&cli.out)?;
    let name = result["scenario"].as_str().unwrap_or("run");
    let path = format!("{}/{name}-{}.json", cli.out, cli.connections);
    std::fs::write(&path, serde_json::to_vec_pretty(&result)?)?;
    println!("wrote {path}");
    fleet.close().await;
    Ok(())
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

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}
