//! The server's memory and CPU, from /proc, so the load client's own cost never counts.

use anyhow::Context;

pub struct ProcStats {
    pid: u32,
}

pub struct Sample {
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
}

impl ProcStats {
    pub fn new(pid: u32) -> Self {
        Self { pid }
    }

    /// Files the server holds open (sockets included).
    pub fn open_files(&self) -> anyhow::Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .context("reading the server's open files")?
            .count())
    }

    pub fn sample(&self) -> anyhow::Result<Sample> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .context("reading the server's /proc status")?;
        let rss_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("no VmRSS")?;
        Ok(Sample {
            rss_bytes: rss_kib * 1024,
            cpu_seconds: cpu_seconds_in(&format!("/proc/{}/stat", self.pid))?,
        })
    }
}

/// User and system CPU-seconds from a `stat` file of /proc (a process's, or
/// `/proc/thread-self/stat` for the calling thread alone).
pub fn cpu_seconds_in(stat_path: &str) -> anyhow::Result<f64> {
    // USER_HZ is 100 on every Linux this runs on.
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat =
        std::fs::read_to_string(stat_path).with_context(|| format!("reading {stat_path}"))?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; 12 and 13 counting from after ')'.
    Ok((ticks(11) + ticks(12)) / TICKS_PER_SECOND)
}
