//! The `fawkes` command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fawkes::Config;
use fawkes::config::{Env, LogFormat, Overrides, Sources};
use fawkes::server::{self, Server};
use fawkes_domain::accounts::CreateUser;
use fawkes_domain::{Actor, Role};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Fawkes: a real-time application server.
#[derive(Parser)]
#[command(name = "fawkes", version, about)]
struct Cli {
    /// Configuration file (default: ./fawkes.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (env FAWKES_BIND).
    #[arg(long, global = true, value_name = "ADDR")]
    bind: Option<String>,
    /// Database URL: sqlite://…, postgres://… or mysql://… (env DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// `prod` refuses to start without a configured secret key (env FAWKES_ENV).
    #[arg(long, global = true, value_enum)]
    env: Option<Env>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve {
        /// Do not apply pending migrations at start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Print the effective configuration, secrets masked.
    Config,
    /// Print the OpenAPI document.
    Openapi,
    /// Write a consistent copy of the database to PATH while the server runs (SQLite: a database
    /// file; PostgreSQL: pg_dump's custom format; MySQL/MariaDB: mysqldump's SQL).
    Backup {
        /// Where to write it; an existing file is never overwritten.
        path: PathBuf,
    },
    /// Restore a backup made by `fawkes backup` into the configured database, which must be empty.
    Restore { path: PathBuf },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
        #[arg(long, value_parser = ["admin", "user", "affiliate"], default_value = "user")]
        role: String,
    },
}

fn main() -> anyhow::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fix_malloc_mmap_threshold();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

/// glibc raises its mmap threshold to the size of any mapped block that is freed (up to 32 MiB);
/// from then on blocks of that size come from the heap of the thread that asked, and stay there
/// once freed. Each Argon2id hash takes a 19 MiB block on a blocking-pool thread, so a server
/// kept about 19 MiB per thread that ever hashed: 272 MiB of RSS after 16 sign-ups, against
/// 38 MiB with the threshold fixed. Setting it turns the raising off, so such blocks are mapped
/// and unmapped each time.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fix_malloc_mmap_threshold() {
    // glibc's own starting value.
    const THRESHOLD: libc::c_int = 128 * 1024;
    // SAFETY: mallopt takes plain integers and changes only malloc's own parameters; it returns
    // 0 on a value it refuses, and the default then stays. glibc marks it unsafe to call while
    // another thread may be initialising malloc; this runs first thing in `main`, before the
    // runtime or any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let overrides = Overrides {
        env: cli.env,
        bind: cli.bind,
        database_url: cli.database_url,
    };
    let mut config = Config::load(Sources::from_process(cli.config.as_deref(), overrides))?;
    init_logging(&config);
    match cli.command.unwrap_or(Command::Serve { no_migrate: false }) {
        Command::Serve { no_migrate } => {
            config.auto_migrate &= !no_migrate;
            serve(&config).await
        }
        Command::Migrate => {
            let db = server::open_database(&config).await?;
            server::migrate(&db).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    username,
                    password,
                    role,
                },
        } => {
            let server = build_for_cli(&config).await?;
            let input = CreateUser {
                email,
                username,
                password,
                role: Role::parse(&role),
            };
            let user = server
                .domain
                .accounts
                .create_user(&Actor::System, input)
                .await
                .map_err(|e| anyhow::anyhow!("{e}: {}", describe(&e)))?;
            println!(
                "created {} ({}) with role {}, id {}",
                user.username, user.email, user.role, user.id
            );
            Ok(())
        }
        Command::Config => {
            print!("{}", config.to_masked_toml());
            Ok(())
        }
        Command::Openapi => {
            println!("{}", fawkes_web::openapi_json());
            Ok(())
        }
        Command::Backup { path } => {
            fawkes::backup::backup(&config, &path).await?;
            println!("backed up to {}", path.display());
            Ok(())
        }
        Command::Restore { path } => {
            fawkes::backup::restore(&config, &path).await?;
            println!(
                "restored {}; `fawkes migrate` (or the next start) brings it up to this version",
                path.display()
            );
            Ok(())
        }
    }
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    // Every socket is a file: take all the open files the system allows this process.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let server = Server::build(config).await?;
    let listener = Server::bind(&config.bind).await?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, node = %config.node_name, database = %fawkes_data::connect::redact_url(&config.database_url), "fawkes listening on http://{addr}");
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    server.serve(listener, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The CLI's account commands run the same actions as the API, over a migrated database.
async fn build_for_cli(config: &Config) -> anyhow::Result<Server> {
    let db = server::open_database(config).await?;
    server::migrate(&db).await?;
    Ok(Server::with_database(config, db, config.signing_secret()?))
}

fn describe(error: &fawkes_domain::DomainError) -> String {
    match error {
        fawkes_domain::DomainError::Validation(fields) => fields
            .iter()
            .map(|(field, messages)| format!("{field}: {}", messages.join(", ")))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: no new connections; draining sockets and in-flight requests");
    shutdown.cancel();
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // The builder's default reports a failed log write with `eprintln!`, which panics when
        // stderr is gone (a log collector that died, a closed pipe): the request being logged
        // would die with it. A lost log line must not cost a request.
        .log_internal_errors(false);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}
