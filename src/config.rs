//! Configuration: defaults < `fawkes.toml` (or `--config FILE`) < `FAWKES_*` environment (and
//! `DATABASE_URL`) < command-line flags.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scheduled_backup::KIND as BACKUP_KIND;

/// Where the server runs; `prod` refuses unsafe defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Env {
    Dev,
    Prod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The effective configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub env: Env,
    /// Address to listen on.
    pub bind: String,
    /// `sqlite://…`, `postgres://…` or `mysql://…`; empty means a SQLite file in `data_dir`.
    pub database_url: String,
    /// Folder for the default SQLite database and the generated secret key.
    pub data_dir: PathBuf,
    /// Signs access tokens. Unset: generated once and kept in `data_dir` (refused in prod).
    pub secret_key: Option<String>,
    /// Apply pending migrations when `serve` starts.
    pub auto_migrate: bool,
    /// This node's name in logs and in `GET /api/v1/admin/nodes`.
    pub node_name: String,
    /// The cluster this node belongs to: nodes hear only their own cluster on a shared bus
    /// server (letters, digits and `_`).
    pub cluster_name: String,
    /// Pub/sub backend joining the nodes: `local` (one node), `postgres` (LISTEN/NOTIFY on the
    /// database), `redis://…` or `nats://…`.
    pub pubsub: String,
    /// Origins allowed by CORS; `*` for any.
    pub cors_origins: Vec<String>,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub socket: SocketSection,
    pub presence: PresenceSection,
    pub jobs: JobsSection,
    pub metrics: MetricsSection,
    pub rate_limit: RateLimitSection,
    pub shutdown: ShutdownSection,
    pub cache: CacheSection,
    pub backup: BackupSection,
    /// Published namespaces that services push to over `POST /api/v1/broadcast`
    /// (`notification:*` is always one).
    pub topics: Vec<TopicConfig>,
    /// Outbound sinks (`[[sinks]]`): signed webhooks and Firebase mirrors fed by jobs.
    pub sinks: Vec<fawkes_sync::SinkConfig>,
}

/// One published namespace.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// `name:*`
    pub pattern: String,
    /// `anyone`, `authenticated`, `owner` (a topic segment equals the user id) or `role:<role>`.
    pub join: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocketSection {
    /// Close a socket that sent nothing for this long (clients heartbeat every 30 s).
    pub idle_timeout_secs: u64,
    pub max_channels_per_connection: usize,
    /// Larger frames close the connection with code 1009.
    pub max_frame_bytes: usize,
    /// Frames queued for one slow client before it is disconnected.
    pub outbound_queue: usize,
    /// Origins allowed to open sockets; empty allows any. Requests without Origin always pass.
    pub allowed_origins: Vec<String>,
    /// Let sockets without a token connect and read public rooms.
    pub allow_guests: bool,
    /// How long a LongPoll GET is held open waiting for frames.
    pub longpoll_window_secs: u64,
    /// Client events one socket may send per second (heartbeats aside); 0 turns the limit off.
    pub events_per_second: u32,
    /// Events a socket may send at once before the per-second rate applies.
    pub event_burst: u32,
    /// Refused events in a row after which the socket is closed (1008).
    pub max_refused_in_a_row: u32,
    /// `presence_update` events one socket may send per second (0: no limit), and at once.
    pub presence_updates_per_second: u32,
    pub presence_update_burst: u32,
}

impl Default for SocketSection {
    fn default() -> Self {
        let defaults = fawkes_channels::SocketConfig::default();
        Self {
            idle_timeout_secs: defaults.idle_timeout.as_secs(),
            max_channels_per_connection: defaults.max_channels,
            max_frame_bytes: defaults.max_frame_bytes,
            outbound_queue: defaults.outbound_queue,
            allowed_origins: Vec::new(),
            allow_guests: false,
            longpoll_window_secs: defaults.longpoll_window.as_secs(),
            events_per_second: defaults.events_per_second,
            event_burst: defaults.event_burst,
            max_refused_in_a_row: defaults.max_refused_in_a_row,
            presence_updates_per_second: 1,
            presence_update_burst: 5,
        }
    }
}

/// `/metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// When set, a scrape must send `Authorization: Bearer <token>`; unset, `/metrics` is open
    /// (keep it off the public network then).
    pub token: Option<String>,
}

/// The in-memory caches: sessions and accounts (authentication), rooms, each room's newest
/// messages, usernames.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSection {
    /// Longest an entry is kept. Changes (logout, revocation, role, deactivation) drop it on
    /// every node at once through the bus; this bounds staleness if that message is lost.
    /// 0 turns the cache off.
    pub ttl_secs: u64,
    /// Entries kept in each cache.
    pub max_entries: u64,
}

impl Default for CacheSection {
    fn default() -> Self {
        let defaults = fawkes_domain::accounts::CacheSettings::default();
        Self {
            ttl_secs: defaults.ttl.as_secs(),
            max_entries: defaults.max_entries,
        }
    }
}

/// What happens on SIGTERM (or Ctrl-C).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSection {
    /// Live sockets are closed with 1012 spread evenly over this many seconds, so their
    /// clients reconnect to the other nodes gradually.
    pub drain_window_secs: u64,
    /// The process exits after this many seconds even if connections or requests remain.
    pub deadline_secs: u64,
}

impl Default for ShutdownSection {
    fn default() -> Self {
        Self {
            drain_window_secs: 10,
            deadline_secs: 30,
        }
    }
}

/// Recurring backups, taken by the job worker (so by one node of a cluster per slot).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupSection {
    /// Folder the recurring backups go to; unset turns them off. With several nodes, a folder
    /// they all see (any node's worker may take the slot).
    pub dir: Option<PathBuf>,
    /// When to take one: a cron expression in UTC.
    pub schedule: String,
    /// How many backups to keep: after each new one, older ones beyond this are deleted.
    pub keep: usize,
}

impl Default for BackupSection {
    fn default() -> Self {
        Self {
            dir: None,
            schedule: "0 2 * * *".to_owned(),
            keep: 7,
        }
    }
}

/// HTTP rate limits. Socket events have theirs in `[socket]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSection {
    /// Login, register and refresh attempts per client IP per `auth_period_secs`; 0 turns the
    /// limit off. Over it: 429 with `Retry-After`.
    pub auth_attempts: u32,
    pub auth_period_secs: u64,
    /// REST writes (POST, PUT, PATCH, DELETE) per signed-in user per `writes_period_secs`; 0
    /// turns the limit off.
    pub writes: u32,
    pub writes_period_secs: u64,
    /// Behind a proxy you run: take the client IP from the last `X-Forwarded-For` entry.
    pub trust_forwarded_for: bool,
    /// Count in this Redis so the limits hold across every node. Unset: the `pubsub` URL when
    /// that is Redis, otherwise each node counts for itself.
    pub redis_url: Option<String>,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        Self {
            auth_attempts: 20,
            auth_period_secs: 60,
            writes: 300,
            writes_period_secs: 60,
            trust_forwarded_for: false,
            redis_url: None,
        }
    }
}

/// Presence across nodes (used when a bus joins several nodes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceSection {
    /// How often each node announces its presence clock.
    pub heartbeat_ms: u64,
    /// A node unheard of for this long is gone: its users leave everyone's presence.
    pub node_timeout_secs: u64,
}

impl Default for PresenceSection {
    fn default() -> Self {
        Self {
            heartbeat_ms: 1000,
            node_timeout_secs: 15,
        }
    }
}

/// The background job worker (`fawkes-jobs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsSection {
    /// Run the worker on this node (enqueueing works either way).
    pub enabled: bool,
    /// The queues this node runs, each with how many of its jobs may run at once.
    pub queues: BTreeMap<String, usize>,
    /// How often an idle queue looks for due jobs.
    pub poll_interval_ms: u64,
    /// How long a running job is held without its lease being renewed (renewed every third);
    /// a job whose node died runs again after this.
    pub lease_secs: u64,
    /// At shutdown, how long running jobs may finish before they are given back.
    pub shutdown_grace_secs: u64,
    /// The first retry waits about this long; each next one twice as long …
    pub backoff_base_ms: u64,
    /// … up to this.
    pub backoff_cap_secs: u64,
    /// Recurring jobs (`[[jobs.cron]]` name, schedule, kind, queue, args). The default is the
    /// housekeeping jobs and the sinks' reconciliation; a file's list replaces it.
    pub cron: Vec<fawkes_jobs::CronJob>,
    /// Registers the job kinds that only tests use (`test_record`, `test_noop`). Never in
    /// production: a `test_record` job appends to any file its arguments name.
    pub test_kinds: bool,
}

/// The recurring jobs a node runs unless the configuration names its own.
fn default_cron() -> Vec<fawkes_jobs::CronJob> {
    let entry = |name: &str, schedule: &str, kind: &str, queue: &str| fawkes_jobs::CronJob {
        name: name.to_owned(),
        schedule: schedule.to_owned(),
        kind: kind.to_owned(),
        queue: queue.to_owned(),
        args: serde_json::json!({}),
    };
    use fawkes_domain::housekeeping::{PRUNE_JOBS, PRUNE_NOTIFICATIONS, PURGE_SESSIONS};
    vec![
        entry(PURGE_SESSIONS, "17 3 * * *", PURGE_SESSIONS, "default"),
        entry(PRUNE_JOBS, "27 3 * * *", PRUNE_JOBS, "default"),
        entry(
            PRUNE_NOTIFICATIONS,
            "37 3 * * *",
            PRUNE_NOTIFICATIONS,
            "default",
        ),
        // A safety net: reconciliation is also scheduled whenever a sink misses a delivery.
        entry(
            fawkes_sync::RECONCILE_KIND,
            "*/5 * * * *",
            fawkes_sync::RECONCILE_KIND,
            fawkes_sync::QUEUE,
        ),
    ]
}

impl Default for JobsSection {
    fn default() -> Self {
        let defaults = fawkes_jobs::WorkerConfig::default();
        let mut queues = defaults.queues;
        // Notifications (`notify` jobs) run on a queue of their own.
        queues.insert(fawkes_domain::notifications::QUEUE.to_owned(), 5);
        // Sink deliveries (`sink_deliver`, `sink_reconcile`) too: a slow sink never holds up
        // other jobs.
        queues.insert(fawkes_sync::QUEUE.to_owned(), 5);
        Self {
            enabled: true,
            queues,
            poll_interval_ms: defaults.poll_interval.as_millis() as u64,
            lease_secs: defaults.lease.as_secs(),
            shutdown_grace_secs: defaults.shutdown_grace.as_secs(),
            backoff_base_ms: defaults.backoff.base.as_millis() as u64,
            backoff_cap_secs: defaults.backoff.cap.as_secs(),
            cron: default_cron(),
            test_kinds: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `fawkes=debug,info`. `RUST_LOG` wins when set.
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub issuer: String,
    pub audience: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    /// Mark the pages' sign-in, CSRF and device cookies `Secure`: on whenever browsers reach
    /// Fawkes over HTTPS, also through a TLS-terminating proxy.
    pub secure_cookies: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            env: Env::Dev,
            bind: "127.0.0.1:4000".to_owned(),
            database_url: String::new(),
            data_dir: PathBuf::from("fawkes_data"),
            secret_key: None,
            auto_migrate: true,
            node_name: "fawkes@localhost".to_owned(),
            cluster_name: "fawkes".to_owned(),
            pubsub: "local".to_owned(),
            cors_origins: Vec::new(),
            log: LogConfig::default(),
            auth: AuthConfig::default(),
            http: HttpConfig::default(),
            database: DatabaseConfig::default(),
            socket: SocketSection::default(),
            presence: PresenceSection::default(),
            jobs: JobsSection::default(),
            metrics: MetricsSection::default(),
            rate_limit: RateLimitSection::default(),
            shutdown: ShutdownSection::default(),
            cache: CacheSection::default(),
            backup: BackupSection::default(),
            topics: vec![TopicConfig {
                pattern: "transaction:*".to_owned(),
                join: "owner".to_owned(),
            }],
            sinks: Vec::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".to_owned(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            issuer: "fawkes".to_owned(),
            audience: "fawkes".to_owned(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            secure_cookies: false,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 1,
            acquire_timeout_secs: 5,
        }
    }
}

/// The pub/sub backend joining the nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusKind {
    Local,
    Postgres,
    Redis(String),
    Nats(String),
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Source(#[from] config::ConfigError),
    #[error(
        "no secret key: set FAWKES_SECRET_KEY (or `secret_key` in fawkes.toml) to at least 32 random characters; \
         production (--env prod) never generates one"
    )]
    MissingSecret,
    #[error("the secret key is too short: use at least 32 characters")]
    ShortSecret,
    #[error("cannot keep the generated secret key in {path}: {source}")]
    SecretFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unsupported pub/sub backend {0:?}: use local, postgres, redis://… or nats://…")]
    PubSub(String),
    #[error("the postgres pub/sub backend needs a PostgreSQL database_url")]
    PubSubNeedsPostgres,
    #[error(
        "invalid topic namespace {pattern:?} (join {join:?}): the pattern is `name:*`, join is \
         anyone, authenticated, owner or role:<admin|user|affiliate>"
    )]
    Topic { pattern: String, join: String },
    #[error("backup: {0}")]
    Backup(&'static str),
    #[error("jobs: {0}")]
    Jobs(#[from] fawkes_jobs::Error),
    #[error("sinks: {0}")]
    Sinks(#[from] fawkes_sync::Error),
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub env: Option<Env>,
    pub bind: Option<String>,
    pub database_url: Option<String>,
}

/// Where configuration comes from, so tests can supply their own environment.
pub struct Sources<'a> {
    /// An explicit file (`--config`); it must exist. Without it `fawkes.toml` is read if present.
    pub file: Option<&'a Path>,
    /// The process environment.
    pub env: HashMap<String, String>,
    pub overrides: Overrides,
}

impl Sources<'_> {
    pub fn from_process(file: Option<&Path>, overrides: Overrides) -> Sources<'_> {
        Sources {
            file,
            env: std::env::vars().collect(),
            overrides,
        }
    }
}

impl Config {
    pub fn load(sources: Sources<'_>) -> Result<Config, ConfigError> {
        let file = match sources.file {
            Some(path) => config::File::from(path).required(true),
            None => config::File::with_name("fawkes.toml").required(false),
        };
        // Only variables naming a configuration key count: others that share the prefix (the
        // test suite's FAWKES_TEST_*, say) are not configuration and must not be refused as such.
        let known = known_keys();
        let fawkes_env: HashMap<String, String> = sources
            .env
            .iter()
            .filter(|(key, _)| {
                key.strip_prefix("FAWKES_")
                    .map(|rest| rest.split("__").next().unwrap_or_default().to_lowercase())
                    .is_some_and(|top| known.contains(&top))
            })
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let mut config: Config = config::Config::builder()
            .add_source(file.format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("FAWKES")
                    .prefix_separator("_")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("cors_origins")
                    .with_list_parse_key("socket.allowed_origins")
                    .try_parsing(true)
                    .ignore_empty(true)
                    .source(Some(fawkes_env.into_iter().collect())),
            )
            .build()?
            .try_deserialize()?;
        if !sources.env.contains_key("FAWKES_DATABASE_URL")
            && let Some(url) = sources.env.get("DATABASE_URL").filter(|u| !u.is_empty())
        {
            config.database_url = url.clone();
        }
        let Overrides {
            env,
            bind,
            database_url,
        } = sources.overrides;
        config.env = env.unwrap_or(config.env);
        config.bind = bind.unwrap_or(config.bind);
        config.database_url = database_url.unwrap_or(config.database_url);
        if config.database_url.is_empty() {
            config.database_url =
                format!("sqlite://{}", config.data_dir.join("fawkes.db").display());
        }
        config.bus_kind()?;
        config.topic_rules()?;
        if config.backup.keep == 0 {
            return Err(ConfigError::Backup("keep must be at least 1"));
        }
        fawkes_jobs::check_cron(&config.worker_config().cron)?;
        fawkes_sync::check(&config.sinks)?;
        Ok(config)
    }

    /// The key that signs tokens. Without one configured, development generates a random key
    /// once and keeps it in the data folder so tokens survive restarts; production refuses.
    pub fn signing_secret(&self) -> Result<Vec<u8>, ConfigError> {
        if let Some(secret) = self.secret_key.as_deref().filter(|s| !s.is_empty()) {
            if secret.len() < 32 {
                return Err(ConfigError::ShortSecret);
            }
            return Ok(secret.as_bytes().to_vec());
        }
        if self.env == Env::Prod {
            return Err(ConfigError::MissingSecret);
        }
        let path = self.data_dir.join("secret_key");
        let file_error = |source| ConfigError::SecretFile {
            path: path.clone(),
            source,
        };
        if let Ok(existing) = std::fs::read_to_string(&path) {
            let existing = existing.trim();
            if existing.len() >= 32 {
                return Ok(existing.as_bytes().to_vec());
            }
        }
        std::fs::create_dir_all(&self.data_dir).map_err(file_error)?;
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        let secret = hex::encode(bytes);
        write_private(&path, &secret).map_err(file_error)?;
        tracing::warn!(
            path = %path.display(),
            "no secret key configured: generated one and saved it; set FAWKES_SECRET_KEY in production"
        );
        Ok(secret.into_bytes())
    }

    /// The configuration as TOML with secrets masked, for `fawkes config`.
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.secret_key.is_some() {
            shown.secret_key = Some("***".to_owned());
        }
        shown.rate_limit.redis_url = shown
            .rate_limit
            .redis_url
            .as_deref()
            .map(fawkes_data::connect::redact_url);
        if shown.metrics.token.is_some() {
            shown.metrics.token = Some("***".to_owned());
        }
        shown.database_url = fawkes_data::connect::redact_url(&shown.database_url);
        shown.sinks = shown.sinks.iter().map(|s| s.masked()).collect();
        shown.pubsub = fawkes_data::connect::redact_url(&shown.pubsub);
        toml::to_string_pretty(&shown).unwrap_or_default()
    }

    /// Which pub/sub backend the configuration names, checked.
    pub fn bus_kind(&self) -> Result<BusKind, ConfigError> {
        let pubsub = self.pubsub.trim();
        let is_postgres = self.database_url.starts_with("postgres");
        match pubsub {
            "local" | "" => Ok(BusKind::Local),
            "postgres" | "postgresql" if is_postgres => Ok(BusKind::Postgres),
            "postgres" | "postgresql" => Err(ConfigError::PubSubNeedsPostgres),
            url if url.starts_with("redis://") || url.starts_with("rediss://") => {
                Ok(BusKind::Redis(url.to_owned()))
            }
            url if url.starts_with("nats://") || url.starts_with("tls://") => {
                Ok(BusKind::Nats(url.to_owned()))
            }
            other => Err(ConfigError::PubSub(other.to_owned())),
        }
    }

    /// The published namespaces, checked.
    pub fn topic_rules(&self) -> Result<Vec<fawkes_domain::publishing::TopicRule>, ConfigError> {
        self.topics
            .iter()
            .map(|t| {
                fawkes_domain::publishing::TopicRule::new(&t.pattern, &t.join).ok_or_else(|| {
                    ConfigError::Topic {
                        pattern: t.pattern.clone(),
                        join: t.join.clone(),
                    }
                })
            })
            .collect()
    }

    pub fn auth_settings(&self, secret: Vec<u8>) -> fawkes_domain::accounts::AuthSettings {
        fawkes_domain::accounts::AuthSettings {
            secret,
            issuer: self.auth.issuer.clone(),
            audience: self.auth.audience.clone(),
            access_ttl: Duration::from_secs(self.auth.access_token_ttl_secs),
            refresh_ttl: Duration::from_secs(self.auth.refresh_token_ttl_secs),
            cache: fawkes_domain::accounts::CacheSettings {
                ttl: Duration::from_secs(self.cache.ttl_secs),
                max_entries: self.cache.max_entries,
            },
        }
    }

    pub fn http_settings(&self) -> fawkes_web::HttpSettings {
        fawkes_web::HttpSettings {
            cors_origins: self.cors_origins.clone(),
            body_limit: self.http.body_limit_bytes,
            request_timeout: Duration::from_secs(self.http.request_timeout_secs),
            secure_cookies: self.http.secure_cookies,
            socket: fawkes_channels::SocketConfig {
                idle_timeout: Duration::from_secs(self.socket.idle_timeout_secs),
                max_channels: self.socket.max_channels_per_connection,
                max_frame_bytes: self.socket.max_frame_bytes,
                outbound_queue: self.socket.outbound_queue,
                allowed_origins: self.socket.allowed_origins.clone(),
                longpoll_window: Duration::from_secs(self.socket.longpoll_window_secs),
                events_per_second: self.socket.events_per_second,
                event_burst: self.socket.event_burst,
                max_refused_in_a_row: self.socket.max_refused_in_a_row,
            },
            allow_guests: self.socket.allow_guests,
            presence_updates: (self.socket.presence_updates_per_second > 0).then_some((
                self.socket.presence_updates_per_second,
                self.socket.presence_update_burst,
            )),
        }
    }

    pub fn rate_limit_settings(&self) -> fawkes_web::ratelimit::RateLimitSettings {
        use fawkes_web::ratelimit::Allowance;
        let limits = &self.rate_limit;
        let allowance = |count: u32, secs: u64| {
            (count > 0).then_some(Allowance {
                count,
                period: Duration::from_secs(secs.max(1)),
            })
        };
        let redis_url =
            limits
                .redis_url
                .clone()
                .filter(|u| !u.is_empty())
                .or(match self.bus_kind() {
                    Ok(BusKind::Redis(url)) => Some(url),
                    _ => None,
                });
        fawkes_web::ratelimit::RateLimitSettings {
            auth: allowance(limits.auth_attempts, limits.auth_period_secs),
            writes: allowance(limits.writes, limits.writes_period_secs),
            trust_forwarded_for: limits.trust_forwarded_for,
            redis_url,
            cluster: self.cluster_name.clone(),
        }
    }

    /// The job worker's settings for this node.
    pub fn worker_config(&self) -> fawkes_jobs::WorkerConfig {
        let jobs = &self.jobs;
        fawkes_jobs::WorkerConfig {
            node: self.node_name.clone(),
            queues: jobs.queues.clone(),
            poll_interval: Duration::from_millis(jobs.poll_interval_ms.max(10)),
            lease: Duration::from_secs(jobs.lease_secs.max(1)),
            shutdown_grace: Duration::from_secs(jobs.shutdown_grace_secs),
            backoff: fawkes_jobs::Backoff {
                base: Duration::from_millis(jobs.backoff_base_ms),
                cap: Duration::from_secs(jobs.backoff_cap_secs),
            },
            cron: self.cron(),
        }
    }

    /// The recurring jobs: the `[jobs]` list, plus the backup when `[backup] dir` is set (a
    /// `[[jobs.cron]]` entry named `backup` takes its place).
    fn cron(&self) -> Vec<fawkes_jobs::CronJob> {
        let mut cron = self.jobs.cron.clone();
        if self.backup.dir.is_some() && !cron.iter().any(|job| job.name == BACKUP_KIND) {
            cron.push(fawkes_jobs::CronJob {
                name: BACKUP_KIND.to_owned(),
                schedule: self.backup.schedule.clone(),
                kind: BACKUP_KIND.to_owned(),
                queue: fawkes_jobs::DEFAULT_QUEUE.to_owned(),
                args: serde_json::json!({}),
            });
        }
        cron
    }

    pub fn pool_options(&self) -> fawkes_data::PoolOptions {
        fawkes_data::PoolOptions {
            max_connections: self.database.max_connections,
            min_connections: self.database.min_connections,
            acquire_timeout: Duration::from_secs(self.database.acquire_timeout_secs),
        }
    }
}

/// The top-level configuration keys.
fn known_keys() -> Vec<String> {
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(map)) => map
            .keys()
            .cloned()
            .chain(["secret_key".to_owned()])
            .collect(),
        _ => Vec::new(),
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(
        env: &[(&str, &str)],
        file: Option<&Path>,
        overrides: Overrides,
    ) -> Result<Config, ConfigError> {
        Config::load(Sources {
            file,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            overrides,
        })
    }

    #[test]
    fn defaults_use_sqlite_in_the_data_folder() {
        let config = load(&[], None, Overrides::default()).ok();
        let config = config.as_ref();
        assert_eq!(config.map(|c| c.bind.as_str()), Some("127.0.0.1:4000"));
        assert_eq!(
            config.map(|c| c.database_url.as_str()),
            Some("sqlite://fawkes_data/fawkes.db")
        );
    }

    #[test]
    fn file_then_env_then_flags_each_win() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("f.toml");
        std::fs::write(
            &file,
            "bind = \"0.0.0.0:1\"\nnode_name = \"from-file\"\n[auth]\naccess_token_ttl_secs = 60\n[http]\nbody_limit_bytes = 10\n",
        )?;
        let env = [
            ("FAWKES_BIND", "0.0.0.0:2"),
            ("FAWKES_AUTH__ACCESS_TOKEN_TTL_SECS", "120"),
            ("FAWKES_CORS_ORIGINS", "https://a.example,https://b.example"),
            ("DATABASE_URL", "postgres://u:p@h/db"),
            ("FAWKES_TEST_POSTGRES_URL", "not configuration"),
        ];
        let config = load(&env, Some(&file), Overrides::default())?;
        assert_eq!(config.bind, "0.0.0.0:2");
        assert_eq!(config.node_name, "from-file");
        assert_eq!(config.auth.access_token_ttl_secs, 120);
        assert_eq!(config.http.body_limit_bytes, 10);
        assert_eq!(
            config.cors_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(config.database_url, "postgres://u:p@h/db");
        let flags = Overrides {
            bind: Some("127.0.0.1:3".into()),
            database_url: Some("sqlite://x.db".into()),
            env: Some(Env::Prod),
        };
        let config = load(&env, Some(&file), flags)?;
        assert_eq!(config.bind, "127.0.0.1:3");
        assert_eq!(config.database_url, "sqlite://x.db");
        assert_eq!(config.env, Env::Prod);
        Ok(())
    }

    #[test]
    fn unknown_keys_and_backends_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("f.toml");
        std::fs::write(&file, "bnid = \"typo\"\n")?;
        assert!(load(&[], Some(&file), Overrides::default()).is_err());
        assert!(matches!(
            load(
                &[("FAWKES_PUBSUB", "kafka://x")],
                None,
                Overrides::default()
            ),
            Err(ConfigError::PubSub(_))
        ));
        assert!(matches!(
            load(&[("FAWKES_PUBSUB", "postgres")], None, Overrides::default()),
            Err(ConfigError::PubSubNeedsPostgres)
        ));
        let redis = load(
            &[("FAWKES_PUBSUB", "redis://127.0.0.1:6379")],
            None,
            Overrides::default(),
        )?;
        assert_eq!(
            redis.bus_kind()?,
            BusKind::Redis("redis://127.0.0.1:6379".into())
        );
        Ok(())
    }

    #[test]
    fn production_requires_a_secret_and_development_keeps_one()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let first = config.signing_secret()?;
        assert_eq!(config.signing_secret()?, first, "the generated key is kept");
        config.env = Env::Prod;
        config.secret_key = None;
        let path = dir.path().join("elsewhere");
        config.data_dir = path;
        assert!(matches!(
            config.signing_secret(),
            Err(ConfigError::MissingSecret)
        ));
        config.secret_key = Some("short".into());
        assert!(matches!(
            config.signing_secret(),
            Err(ConfigError::ShortSecret)
        ));
        Ok(())
    }

    #[test]
    fn jobs_come_from_file_and_environment() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("f.toml");
        std::fs::write(
            &file,
            "[jobs]\nlease_secs = 30\n[jobs.queues]\ndefault = 4\nmailers = 2\n\
             [[jobs.cron]]\nname = \"prune\"\nschedule = \"0 3 * * *\"\nkind = \"prune_jobs\"\n",
        )?;
        let env = [
            ("FAWKES_JOBS__POLL_INTERVAL_MS", "250"),
            ("FAWKES_JOBS__QUEUES__MAILERS", "5"),
        ];
        let config = load(&env, Some(&file), Overrides::default())?;
        let worker = config.worker_config();
        assert_eq!(worker.lease, Duration::from_secs(30));
        assert_eq!(worker.poll_interval, Duration::from_millis(250));
        assert_eq!(worker.queues.get("default"), Some(&4));
        assert_eq!(worker.queues.get("mailers"), Some(&5));
        assert_eq!(worker.cron.len(), 1);
        assert_eq!(worker.cron[0].queue, "default");
        assert!(config.to_masked_toml().contains("prune_jobs"));
        std::fs::write(
            &file,
            "[[jobs.cron]]\nname = \"bad\"\nschedule = \"every day\"\nkind = \"k\"\n",
        )?;
        assert!(matches!(
            load(&[], Some(&file), Overrides::default()),
            Err(ConfigError::Jobs(_))
        ));
        Ok(())
    }

    #[test]
    fn a_backup_folder_schedules_the_backup_job() -> Result<(), Box<dyn std::error::Error>> {
        let unset = load(&[], None, Overrides::default())?;
        assert!(
            unset
                .worker_config()
                .cron
                .iter()
                .all(|j| j.kind != BACKUP_KIND)
        );
        let env = [
            ("FAWKES_BACKUP__DIR", "/var/backups/fawkes"),
            ("FAWKES_BACKUP__SCHEDULE", "30 1 * * *"),
        ];
        let config = load(&env, None, Overrides::default())?;
        let cron = config.worker_config().cron;
        let backup: Vec<_> = cron.iter().filter(|j| j.kind == BACKUP_KIND).collect();
        assert_eq!(backup.len(), 1, "{cron:?}");
        assert_eq!(backup[0].schedule, "30 1 * * *");
        // The housekeeping defaults stay.
        assert!(cron.len() > 1);
        let bad_schedule = [
            ("FAWKES_BACKUP__DIR", "/b"),
            ("FAWKES_BACKUP__SCHEDULE", "daily"),
        ];
        assert!(matches!(
            load(&bad_schedule, None, Overrides::default()),
            Err(ConfigError::Jobs(_))
        ));
        let keep_none = [("FAWKES_BACKUP__DIR", "/b"), ("FAWKES_BACKUP__KEEP", "0")];
        assert!(matches!(
            load(&keep_none, None, Overrides::default()),
            Err(ConfigError::Backup(_))
        ));
        Ok(())
    }

    #[test]
    fn sinks_come_from_the_file_checked_and_masked() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("f.toml");
        std::fs::write(
            &file,
            "[[sinks]]\nname = \"hooks\"\nkind = \"webhook\"\nurl = \"https://h.example/in\"\n\
             secret = \"whsec-hunter2\"\nevents = [\"comment.*\"]\n\
             [[sinks]]\nname = \"fb\"\nkind = \"firebase\"\nurl = \"https://x.firebaseio.com\"\n\
             auth = \"token-hunter3\"\ncooldown_secs = 5\n",
        )?;
        let config = load(&[], Some(&file), Overrides::default())?;
        assert_eq!(config.sinks.len(), 2);
        assert_eq!(config.sinks[1].cooldown_secs, 5);
        assert_eq!(config.sinks[1].mirror, ["comments", "presence"]);
        let shown = config.to_masked_toml();
        assert!(
            shown.contains("hooks") && !shown.contains("hunter2") && !shown.contains("hunter3")
        );
        std::fs::write(
            &file,
            "[[sinks]]\nname = \"hooks\"\nkind = \"webhook\"\nurl = \"https://h.example/in\"\n",
        )?;
        assert!(
            matches!(
                load(&[], Some(&file), Overrides::default()),
                Err(ConfigError::Sinks(_))
            ),
            "a webhook without a secret is refused"
        );
        Ok(())
    }

    #[test]
    fn printed_configuration_masks_secrets() {
        let config = Config {
            secret_key: Some("x".repeat(40)),
            database_url: "postgres://app:hunter2@db/fawkes".into(),
            pubsub: "redis://:bus-password@redis:6379".into(),
            metrics: MetricsSection {
                token: Some("scrape-token-42".into()),
            },
            ..Config::default()
        };
        let shown = config.to_masked_toml();
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("scrape-token-42"));
        assert!(!shown.contains("bus-password"));
        assert!(!shown.contains(&"x".repeat(40)));
        assert!(shown.contains("***"));
    }
}
