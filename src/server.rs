//! Wiring: database, bus, domain and HTTP into one running server.

use fawkes_data::{Migrator, MigratorTrait, sea_orm::DatabaseConnection};
use fawkes_domain::Domain;
use fawkes_pubsub::{Backend, PubSub};
use fawkes_web::AppState;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::config::BusKind;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Connect(#[from] fawkes_data::ConnectError),
    #[error("migration failed: {0}")]
    Migrate(fawkes_data::sea_orm::DbErr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the configured database.
pub async fn open_database(config: &Config) -> Result<DatabaseConnection, ServerError> {
    Ok(fawkes_data::connect(&config.database_url, &config.pool_options()).await?)
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), ServerError> {
    Migrator::up(db, None).await.map_err(ServerError::Migrate)
}

/// Joins this node's bus to the others through the configured backend (checked at load).
fn connect_bus(config: &Config, db: &DatabaseConnection, bus: &PubSub) {
    let backend = match config.bus_kind() {
        Ok(BusKind::Redis(url)) => Backend::Redis(url),
        Ok(BusKind::Nats(url)) => Backend::Nats(url),
        Ok(BusKind::Postgres) => Backend::Postgres(db.get_postgres_connection_pool().clone()),
        Ok(BusKind::Local) | Err(_) => return,
    };
    // A bus URL may carry a password.
    let url = fawkes_data::connect::redact_url(&config.pubsub);
    tracing::info!(node = %config.node_name, bus = %url, "joining the other nodes through the bus");
    bus.connect_remote_as(backend, &config.cluster_name);
}

/// With several nodes, presence is replicated between them.
fn replicate_presence(config: &Config, domain: &Domain) {
    if !matches!(config.bus_kind(), Ok(BusKind::Local) | Err(_)) {
        let settings = fawkes_presence::ReplicationSettings {
            heartbeat: std::time::Duration::from_millis(config.presence.heartbeat_ms.max(50)),
            node_timeout: std::time::Duration::from_secs(config.presence.node_timeout_secs.max(1)),
        };
        domain.presence.start_replication(settings);
    }
}

/// A server ready to accept connections.
pub struct Server {
    pub domain: Domain,
    pub db: DatabaseConnection,
    pub endpoint: fawkes_channels::Endpoint,
    /// Job handlers by kind: register more before [`Server::serve`] starts the worker.
    pub jobs: fawkes_jobs::Registry,
    /// The worker's settings; `None` when this node runs no worker.
    worker: Option<fawkes_jobs::WorkerConfig>,
    pub metrics: std::sync::Arc<fawkes_web::Metrics>,
    limits: std::sync::Arc<fawkes_web::ratelimit::RateLimits>,
    drain_window: Duration,
    deadline: Duration,
    router: axum::Router,
}

impl Server {
    /// Connects, migrates (unless turned off) and builds the application.
    pub async fn build(config: &Config) -> Result<Server, ServerError> {
        let secret = config.signing_secret()?;
        let db = open_database(config).await?;
        if config.auto_migrate {
            migrate(&db).await?;
        }
        Ok(Self::with_database(config, db, secret))
    }

    /// Builds the application over an open, migrated database.
    pub fn with_database(config: &Config, mut db: DatabaseConnection, secret: Vec<u8>) -> Server {
        let metrics = fawkes_web::Metrics::new(config.metrics.token.as_deref());
        // Set before the connection is cloned anywhere: clones share the callback.
        let observer = metrics.clone();
        db.set_metric_callback(move |info| {
            observer.database_query(info.elapsed, &info.statement.sql, info.failed);
        });
        // Checked when the configuration was loaded.
        let topics = config.topic_rules().unwrap_or_default();
        let bus = PubSub::new();
        connect_bus(config, &db, &bus);
        let endpoint = fawkes_channels::Endpoint::new(bus.clone());
        let page_signer = fawkes_live::Signer::new(&secret);
        let domain = Domain::new(db.clone(), bus, config.auth_settings(secret), topics);
        let node_name = config.node_name.clone();
        let stats = endpoint.stats().clone();
        domain.presence.set_node_info(move || {
            use std::sync::atomic::Ordering::Relaxed;
            serde_json::json!({
                "name": node_name,
                "connections": stats.connections.load(Relaxed),
                "joined_channels": stats.joined_channels.load(Relaxed),
            })
        });
        replicate_presence(config, &domain);
        let state = AppState {
            domain: std::sync::Arc::new(domain.clone()),
            db: db.clone(),
            endpoint: endpoint.clone(),
            metrics: metrics.clone(),
            limits: fawkes_web::ratelimit::RateLimits::new(
                &config.rate_limit_settings(),
                metrics.clone(),
            ),
        };
        let limits = state.limits.clone();
        let router = fawkes_web::app(state, &config.http_settings(), page_signer);
        // The domain's own job kinds.
        let jobs = fawkes_jobs::Registry::new();
        jobs.register(
            fawkes_domain::notifications::JOB_KIND,
            domain.notifications.clone(),
        );
        let housekeeping = fawkes_domain::housekeeping::Housekeeping::new(db.clone());
        for kind in fawkes_domain::housekeeping::KINDS {
            jobs.register(kind, housekeeping.clone());
        }
        // Outbound sinks: actions enqueue for the configured ones, this node delivers.
        domain.sinks.configure(config.sinks.clone());
        let mirror = std::sync::Arc::new(domain.mirror.clone());
        match fawkes_sync::Sinks::new(db.clone(), config.sinks.clone(), mirror) {
            Ok(sinks) => sinks.register(&jobs),
            Err(e) => {
                tracing::error!(error = %e, "outbound sinks cannot start; their deliveries wait")
            }
        }
        crate::scheduled_backup::register(&jobs, config);
        if config.jobs.test_kinds {
            tracing::warn!("jobs.test_kinds is on: test-only job kinds are registered");
            crate::test_jobs::register(&jobs);
        }
        Server {
            domain,
            db,
            endpoint,
            jobs,
            worker: config.jobs.enabled.then(|| config.worker_config()),
            metrics,
            limits,
            drain_window: Duration::from_secs(config.shutdown.drain_window_secs),
            deadline: Duration::from_secs(config.shutdown.deadline_secs.max(1)),
            router,
        }
    }

    /// Binds the configured address.
    pub async fn bind(addr: &str) -> Result<TcpListener, ServerError> {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: addr.to_owned(),
                source,
            })
    }

    /// Serves until `shutdown` is cancelled, then drains: no new connections, live sockets
    /// closed with 1012 over the drain window, in-flight requests finished, and the job worker
    /// (which runs alongside with the handlers registered in [`Server::jobs`]) lets running
    /// jobs finish within its grace period and gives back the rest. Returns when all of that is
    /// done or the shutdown deadline has passed, whichever comes first.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), ServerError> {
        let worker = match self.worker {
            Some(config) => match fawkes_jobs::Worker::new(self.db.clone(), self.jobs, config) {
                Ok(worker) => Some(worker.spawn(shutdown.clone())),
                Err(e) => {
                    tracing::error!(error = %e, "the job worker cannot start");
                    None
                }
            },
            None => None,
        };
        let metrics = self.metrics.clone();
        let limits = self.limits.clone();
        let upkeep_stop = shutdown.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        metrics.upkeep();
                        limits.housekeeping();
                    }
                    () = upkeep_stop.cancelled() => break,
                }
            }
        });
        let app = self
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        // Stops accepting at once and waits for in-flight requests; upgraded sockets are not
        // requests any more, so they are drained separately.
        let http = async {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .await;
            // An error ended the serving rather than a signal: the sockets and the worker stop too.
            shutdown.cancel();
            served
        };
        let endpoint = self.endpoint.clone();
        let window = self.drain_window;
        let sockets = async {
            shutdown.cancelled().await;
            endpoint.drain(window).await;
        };
        // The worker stops by itself once `shutdown` is cancelled, within its own grace period.
        let jobs = async {
            if let Some(worker) = worker
                && let Err(e) = worker.await
            {
                tracing::error!(error = %e, "the job worker ended abnormally");
            }
        };
        let drained = async {
            let (served, (), ()) = tokio::join!(http, sockets, jobs);
            served
        };
        tokio::pin!(drained);
        let deadline = self.deadline;
        tokio::select! {
            served = &mut drained => served?,
            () = async { shutdown.cancelled().await; tokio::time::sleep(deadline).await } => {
                tracing::warn!(
                    sockets = self.endpoint.live_connections(),
                    ?deadline,
                    "drain deadline reached; stopping with connections still open"
                );
            }
        }
        Ok(())
    }
}
