//! The cluster scenario: several `fawkes` nodes of one cluster on this machine, each holding its
//! share of the connections. One process may hold only about 20,000 open files here, so the
//! connections come from shard processes (this binary's hidden `shard` command), one per node,
//! which this process drives over their stdin and stdout, one JSON object per line.
//!
//! It measures what the idle and fan-out scenarios measure on one node, summed over the nodes:
//! memory per connection and idle CPU, then the time until a comment posted on one node has
//! reached every subscriber on all of them (through the cluster's bus), and CPU per delivery.

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::client::{self, BOUND, Fleet, Target};
use crate::proc_stats::ProcStats;
use crate::{FanoutResult, IdleResult};

#[derive(Args)]
pub struct Params {
    /// The nodes' HTTP addresses, comma-separated; all on this machine, all of one cluster.
    #[arg(long, value_delimiter = ',', required = true)]
    pub nodes: Vec<String>,
    /// The nodes' process ids, in the same order.
    #[arg(long, value_delimiter = ',', required = true)]
    pub node_pids: Vec<u32>,
    /// How long to watch the idle cluster.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Broadcasts to send, each posted on the next node in turn.
    #[arg(long, default_value_t = 20)]
    pub repeats: usize,
}

/// What the coordinator asks a shard to do.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ShardCommand {
    /// Count the connections that receive a `new_comment` carrying `tag`.
    Expect { tag: String },
    /// Answer once every connection has the expected message.
    AwaitReceipts,
    /// Keep the connections heartbeating for `seconds`, then answer.
    KeepAlive { seconds: u64 },
}

/// What a shard answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ShardReport {
    Joined,
    Expecting,
    /// When the last connection got the message, in microseconds since the Unix epoch: the
    /// shards are other processes, so only the system clock is shared.
    Received {
        last_unix_micros: u128,
    },
    KeptAlive,
}

/// The idle and fan-out results of one node, summed over the cluster's nodes.
#[derive(Debug, Serialize)]
pub struct ClusterResult {
    pub scenario: &'static str,
    pub nodes: usize,
    pub idle: IdleResult,
    pub fanout: FanoutResult,
}

/// The hidden `shard` command: `connections` connections to one node, numbered from `first` (so
/// each shard has its own source addresses), driven by the coordinator's commands on stdin.
pub async fn shard(
    url: &str,
    token: String,
    connections: usize,
    first: usize,
) -> anyhow::Result<()> {
    let target = Target::Fawkes {
        base: url.to_owned(),
        token,
    };
    let mut fleet = Fleet::connect_numbered(&target, connections, first).await?;
    let mut out = tokio::io::stdout();
    say(&mut out, &ShardReport::Joined).await?;
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    let outcome = async {
        while let Some(line) = commands.next_line().await? {
            let command: ShardCommand =
                serde_json::from_str(&line).context("a coordinator command")?;
            let report = match command {
                ShardCommand::Expect { tag } => {
                    fleet.expect(&tag);
                    ShardReport::Expecting
                }
                ShardCommand::AwaitReceipts => {
                    let last = fleet.last_receipt(Instant::now() + BOUND).await?;
                    let ago = last.map_or(Duration::ZERO, |last| last.elapsed());
                    ShardReport::Received {
                        last_unix_micros: unix_micros() - ago.as_micros(),
                    }
                }
                ShardCommand::KeepAlive { seconds } => {
                    fleet.keep_alive_for(Duration::from_secs(seconds)).await?;
                    ShardReport::KeptAlive
                }
            };
            say(&mut out, &report).await?;
        }
        anyhow::Ok(())
    }
    .await;
    // Stdin closed (or a command failed): the run is over.
    fleet.close().await;
    outcome
}

async fn say(out: &mut tokio::io::Stdout, report: &ShardReport) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(report)?;
    line.push(b'\n');
    out.write_all(&line).await?;
    out.flush().await?;
    Ok(())
}

fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros()
}

/// One shard process and its pipes.
struct Shard {
    node: usize,
    child: Child,
    commands: Option<ChildStdin>,
    reports: Lines<BufReader<ChildStdout>>,
}

impl Shard {
    fn spawn(
        node: usize,
        url: &str,
        token: &str,
        connections: usize,
        first: usize,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("this program's path")?;
        let mut child = Command::new(exe)
            .args(["--url", url, "--connections", &connections.to_string()])
            .args(["shard", "--token", token])
            .args(["--first-connection", &first.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting a shard process")?;
        let commands = child.stdin.take().context("the shard's stdin")?;
        let reports = child.stdout.take().context("the shard's stdout")?;
        Ok(Self {
            node,
            child,
            commands: Some(commands),
            reports: BufReader::new(reports).lines(),
        })
    }

    async fn send(&mut self, command: &ShardCommand) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(command)?;
        line.push(b'\n');
        let commands = self.commands.as_mut().context("the shard was closed")?;
        commands
            .write_all(&line)
            .await
            .with_context(|| format!("shard {} is gone", self.node))
    }

    /// The shard's next report, within `bound`.
    async fn report(&mut self, bound: Duration) -> anyhow::Result<ShardReport> {
        let line = tokio::time::timeout(bound, self.reports.next_line())
            .await
            .with_context(|| format!("shard {} did not answer in time", self.node))??;
        let Some(line) = line else {
            bail!("shard {} ended (its error is above)", self.node);
        };
        serde_json::from_str(&line).with_context(|| format!("shard {} said {line:?}", self.node))
    }

    async fn close(mut self) {
        // Closing stdin ends the shard's run; it closes its connections and exits.
        self.commands.take();
        if tokio::time::timeout(BOUND, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Sends `command` to every shard, then waits for each one's report.
async fn all(
    shards: &mut [Shard],
    command: &ShardCommand,
    bound: Duration,
) -> anyhow::Result<Vec<ShardReport>> {
    for shard in shards.iter_mut() {
        shard.send(command).await?;
    }
    let mut reports = Vec::with_capacity(shards.len());
    for shard in shards.iter_mut() {
        reports.push(shard.report(bound).await?);
    }
    Ok(reports)
}

/// How many of `connections` go to node `i` of `nodes`: as even as it gets.
fn share(connections: usize, nodes: usize, i: usize) -> usize {
    connections / nodes + usize::from(i < connections % nodes)
}

pub async fn run(params: &Params, connections: usize) -> anyhow::Result<ClusterResult> {
    if params.nodes.is_empty() || params.nodes.len() != params.node_pids.len() {
        bail!("give one --node-pids entry for each of the --nodes");
    }
    if let Some(url) = params.nodes.iter().find(|url| !crate::is_loopback(url)) {
        bail!("{url} is not on this machine");
    }
    let http = reqwest::Client::new();
    // One database behind all the nodes: the account works on each of them.
    let account = client::sign_up(&http, &params.nodes[0]).await?;
    let run = Run {
        params,
        connections,
        http,
        token: account.token,
        nodes: params
            .node_pids
            .iter()
            .map(|&pid| ProcStats::new(pid))
            .collect(),
    };
    let (rss_before, _) = run.sample()?;
    let started = Instant::now();
    let mut shards = Vec::with_capacity(params.nodes.len());
    let mut first = 0;
    for (i, url) in params.nodes.iter().enumerate() {
        let size = share(connections, params.nodes.len(), i);
        shards.push(Shard::spawn(i, url, &run.token, size, first)?);
        first += size;
    }
    let outcome = run.measure(&mut shards, started, rss_before).await;
    for shard in shards {
        shard.close().await;
    }
    outcome
}

/// What one cluster run works with.
struct Run<'a> {
    params: &'a Params,
    connections: usize,
    http: reqwest::Client,
    token: String,
    nodes: Vec<ProcStats>,
}

impl Run<'_> {
    /// Memory and CPU of all the nodes together.
    fn sample(&self) -> anyhow::Result<(u64, f64)> {
        let mut total = (0, 0.0);
        for node in &self.nodes {
            let sample = node.sample()?;
            total.0 += sample.rss_bytes;
            total.1 += sample.cpu_seconds;
        }
        Ok(total)
    }

    async fn measure(
        &self,
        shards: &mut [Shard],
        started: Instant,
        rss_before: u64,
    ) -> anyhow::Result<ClusterResult> {
        let params = self.params;
        for shard in shards.iter_mut() {
            shard.report(BOUND * 6).await?;
        }
        let connect_seconds = started.elapsed().as_secs_f64();
        // Let the nodes settle allocations before measuring.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (rss_joined, idle_cpu_start) = self.sample()?;

        let keep_alive = ShardCommand::KeepAlive {
            seconds: params.seconds,
        };
        all(
            shards,
            &keep_alive,
            Duration::from_secs(params.seconds) + BOUND,
        )
        .await?;
        let (_, idle_cpu_end) = self.sample()?;

        let (_, cpu_start) = self.sample()?;
        let mut latencies = Vec::with_capacity(params.repeats);
        for n in 0..params.repeats {
            let tag = format!("cluster-{}-{n}", std::process::id());
            all(shards, &ShardCommand::Expect { tag: tag.clone() }, BOUND).await?;
            let target = Target::Fawkes {
                base: params.nodes[n % params.nodes.len()].clone(),
                token: self.token.clone(),
            };
            let sent = unix_micros();
            target.broadcast(&self.http, &tag).await?;
            let mut last = sent;
            for report in all(shards, &ShardCommand::AwaitReceipts, BOUND * 2).await? {
                let ShardReport::Received { last_unix_micros } = report else {
                    bail!("a shard answered {report:?} to await_receipts");
                };
                last = last.max(last_unix_micros);
            }
            latencies.push((last - sent) as f64 / 1e6);
        }
        let (_, cpu_end) = self.sample()?;
        latencies.sort_by(f64::total_cmp);
        let cpu = cpu_end - cpu_start;
        let rss_per_connection_bytes =
            rss_joined.saturating_sub(rss_before) as f64 / self.connections as f64;
        Ok(ClusterResult {
            scenario: "cluster",
            nodes: params.nodes.len(),
            idle: IdleResult {
                scenario: "idle",
                target: "fawkes",
                connections: self.connections,
                connect_seconds,
                server_rss_before_bytes: rss_before,
                server_rss_joined_bytes: rss_joined,
                rss_per_connection_bytes,
                idle_seconds: params.seconds,
                idle_cpu_fraction: (idle_cpu_end - idle_cpu_start) / params.seconds.max(1) as f64,
            },
            fanout: FanoutResult::new(
                "fawkes",
                self.connections,
                latencies,
                cpu,
                rss_per_connection_bytes,
            ),
        })
    }
}

/// The idle and fan-out rows, for all the nodes together.
pub fn print(r: &ClusterResult) {
    println!(
        "cluster of {} nodes (memory and CPU summed over them)",
        r.nodes
    );
    crate::print_idle_header();
    crate::print_idle_row(&r.idle);
    crate::print_fanout_header();
    crate::print_fanout_row(&r.fanout);
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_shared_evenly_over_the_nodes() {
        let shares: Vec<usize> = (0..5).map(|i| share(95_002, 5, i)).collect();
        assert_eq!(shares, [19_001, 19_001, 19_000, 19_000, 19_000]);
        assert_eq!(shares.iter().sum::<usize>(), 95_002);
    }

    #[test]
    fn commands_and_reports_are_one_json_line_each() {
        let command =
            serde_json::to_string(&ShardCommand::Expect { tag: "t".into() }).expect("json");
        assert_eq!(command, r#"{"expect":{"tag":"t"}}"#);
        let report: ShardReport =
            serde_json::from_str(r#"{"received":{"last_unix_micros":12}}"#).expect("a report");
        assert!(matches!(
            report,
            ShardReport::Received {
                last_unix_micros: 12
            }
        ));
        let joined: ShardReport = serde_json::from_str(r#""joined""#).expect("a report");
        assert!(matches!(joined, ShardReport::Joined));
    }
}
