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
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_fawkes"));
        command
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .env_remove("DATABASE_URL")
            .env("FAWKES_DATA_DIR", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("fawkes starts");
        let mut server = ServerProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log_path,
            dir,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let health = client.get(format!("{}/health", server.base)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "fawkes exited with {status} before answering:\n{}",
                    server.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "fawkes never answered:\n{}",
                server.log()
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
