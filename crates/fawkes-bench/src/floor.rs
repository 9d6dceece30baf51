//! The kernel's floor under fan-out: what one small write to a loopback TCP connection costs,
//! with no server, no WebSocket and no runtime. One thread writes a frame to each of N
//! connections that it holds both ends of, round after round, and its own CPU clock is read
//! from /proc. On loopback the receiving side's TCP work runs inside the sender's system call,
//! and the fan-out scenario charges it to the server the same way, so no server whose
//! deliveries are one write each can deliver more per CPU-second than this.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::proc_stats::cpu_seconds_in;

/// Writing stops once the thread has used this much CPU (enough for 100 Hz ticks to be
/// precise to 0.3 %) or after [`MAX_WALL`].
const MIN_CPU_SECONDS: f64 = 3.0;
const MAX_WALL: Duration = Duration::from_secs(60);
/// The connections' own addresses, which no other scenario uses: a run right after a fan-out
/// finds none of their ports held by its closed connections.
const LISTEN: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 253);
const SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 252);

/// Bytes written to one connection at most: well inside its receiver's buffer, which nobody
/// reads, so no write ever blocks.
const MAX_BYTES_PER_CONNECTION: usize = 32 * 1024;

#[derive(Debug, Serialize)]
pub struct FloorResult {
    pub scenario: &'static str,
    pub connections: usize,
    pub frame_bytes: usize,
    pub writes: u64,
    pub cpu_seconds: f64,
    pub cpu_us_per_write: f64,
    pub writes_per_cpu_second: f64,
}

pub async fn run(connections: usize, frame_bytes: usize) -> anyhow::Result<FloorResult> {
    if connections == 0 || frame_bytes == 0 || frame_bytes > 4096 {
        bail!("floor needs at least one connection and a frame of 1 to 4096 bytes");
    }
    let listener = TcpListener::bind((LISTEN, 0)).context("listening on loopback")?;
    let address = listener.local_addr()?;
    // Both ends stay open; only the accepted ends (the server's side) are written.
    let mut pairs = Vec::with_capacity(connections);
    for _ in 0..connections {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::new(IpAddr::V4(SOURCE), 0))?;
        let reader = socket
            .connect(address)
            .await
            .context("connecting on loopback")?;
        let (writer, _) = listener.accept()?;
        writer.set_nodelay(true)?;
        pairs.push((writer, reader));
    }
    let frame = vec![b'x'; frame_bytes];
    let started = Instant::now();
    let cpu_start = cpu_seconds_in("/proc/thread-self/stat")?;
    let mut writes = 0u64;
    let mut cpu = 0.0;
    for _ in 0..MAX_BYTES_PER_CONNECTION / frame_bytes {
        for (writer, _) in &mut pairs {
            writer.write_all(&frame)?;
        }
        writes += connections as u64;
        cpu = cpu_seconds_in("/proc/thread-self/stat")? - cpu_start;
        if cpu >= MIN_CPU_SECONDS || started.elapsed() > MAX_WALL {
            break;
        }
    }
    Ok(FloorResult {
        scenario: "floor",
        connections,
        frame_bytes,
        writes,
        cpu_seconds: cpu,
        cpu_us_per_write: 1e6 * cpu / writes as f64,
        writes_per_cpu_second: writes as f64 / cpu.max(f64::MIN_POSITIVE),
    })
}

pub fn print(result: &FloorResult) {
    println!("scenario  connections  frame_bytes  writes     cpu_us_per_write  writes_per_cpu_s");
    println!(
        "floor     {:>11}  {:>11}  {:>9}  {:>16.2}  {:>16.0}",
        result.connections,
        result.frame_bytes,
        result.writes,
        result.cpu_us_per_write,
        result.writes_per_cpu_second
    );
}
