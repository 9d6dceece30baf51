//! A real `fawkes serve` process with its log captured to a file, for tests of what only a
//! process shows: its log output, signals and exit status.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct ServerProcess {
    child: Child,
    pub base: String,
    pub log_path: PathBuf,
    pub dir: tempfile::TempDir,
    port: u16,
    env: Vec<(String, String)>,
}

impl ServerProcess {
    /// Starts the binary on a free loopback port over a SQLite file in a temp folder, with
    /// `env` added, and waits until `/health` answers.
    pub async fn start(env: &[(&str, &str)]) -> ServerProcess {
        fawkes_sync::install_crypto_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log_path = dir.path().join("fawkes.log");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let child = spawn(port, &env, dir.path(), &log_path);
        let mut server = ServerProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log_path,
            dir,
            port,
            env,
        };
        server.wait_healthy().await;
        server
    }

    /// SIGKILL, as a crash or an OOM kill does (no drain, no goodbye), then the same binary
    /// again on the same port, folder (database, secret key) and environment; returns once
    /// `/health` answers.
    pub async fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(self.port, &self.env, self.dir.path(), &self.log_path);
        self.wait_healthy().await;
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    async fn wait_healthy(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let health = client.get(format!("{}/health", self.base)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "fawkes exited with {status} before answering:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "fawkes never answered:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, as an orchestrator does to stop a node.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, failing the test after `limit`.
    pub async fn exit_status(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "fawkes still runs after {limit:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fawkes serve` on `port` in `dir`, its log appended to `log_path`.
fn spawn(
    port: u16,
    env: &[(String, String)],
    dir: &std::path::Path,
    log_path: &std::path::Path,
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_fawkes"));
    command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .env("FAWKES_DATA_DIR", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .envs(env.iter().cloned());
    command.spawn().expect("fawkes starts")
}
