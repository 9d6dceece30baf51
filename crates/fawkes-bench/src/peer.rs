//! The Node `ws` peer (`bench/peer/server.mjs`), started by the bench itself for `--peer` runs
//! so its process id is known and it is always stopped afterwards.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Peer {
    child: Child,
    pub pid: u32,
    pub base: String,
}

impl Peer {
    /// Installs the pinned `ws` if needed (`npm ci`), starts the server on `127.0.0.1:port` and
    /// waits, bounded, for it to listen. It inherits this process's raised open-file limit.
    pub async fn start(dir: &Path, port: u16) -> anyhow::Result<Peer> {
        if !dir.join("node_modules/ws/package.json").exists() {
            eprintln!("peer: npm ci in {}", dir.display());
            let status = tokio::time::timeout(
                Duration::from_secs(300),
                Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(dir)
                    .kill_on_drop(true)
                    .status(),
            )
            .await
            .context("npm ci took too long")?
            .context("running npm")?;
            if !status.success() {
                bail!("npm ci in {} failed: {status}", dir.display());
            }
        }
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(dir)
            .env("PORT", port.to_string())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting node (is Node.js installed?)")?;
        let pid = child.id().context("the peer exited at once")?;
        let stdout = child.stdout.take().context("peer stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .context("the peer did not start listening in time")??
            .unwrap_or_default();
        if !line.starts_with("listening") {
            bail!("the peer said {line:?} instead of listening");
        }
        Ok(Peer {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
