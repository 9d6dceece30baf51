//! HTTP rate limits: attempts per client IP on the auth endpoints, writes per user on the REST
//! API.
//!
//! On one node a limit is governor's GCRA, in memory. With a Redis URL the count is kept in
//! Redis, so every node sees the same count for an IP or a user; should Redis not answer, the
//! node falls back to its own count rather than refusing everyone or letting everything through.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::OnceCell;

use crate::AppState;
use crate::error::ApiError;
use crate::metrics::{Limit, Metrics};

/// `count` events per `period` (0 turns the limit off). The whole count may be spent at once;
/// after `period` without events it is whole again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub count: u32,
    pub period: Duration,
}

/// The limits from configuration.
#[derive(Debug, Clone, Default)]
pub struct RateLimitSettings {
    /// Login, register and refresh attempts per client IP.
    pub auth: Option<Allowance>,
    /// REST writes (POST, PUT, PATCH, DELETE) per signed-in user.
    pub writes: Option<Allowance>,
    /// Take the client IP from the last `X-Forwarded-For` entry (the one the proxy in front
    /// added) instead of the TCP peer. Only behind a proxy you run: clients can send the header.
    pub trust_forwarded_for: bool,
    /// Count in this Redis, shared by every node.
    pub redis_url: Option<String>,
    /// Keeps the counts of clusters sharing one Redis apart.
    pub cluster: String,
}

/// The limits of one server.
pub struct RateLimits {
    auth: Option<Limiter>,
    writes: Option<Limiter>,
    trust_forwarded_for: bool,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings, metrics: Arc<Metrics>) -> Arc<Self> {
        let redis = settings
            .redis_url
            .as_deref()
            .filter(|url| !url.is_empty())
            .and_then(|url| match redis::Client::open(url) {
                Ok(client) => Some(Arc::new(SharedCounts {
                    client,
                    connection: OnceCell::new(),
                    cluster: settings.cluster.clone(),
                })),
                Err(error) => {
                    tracing::error!(%error, "invalid rate-limit Redis URL; limits stay per node");
                    None
                }
            });
        let limiter = |name, allowance: Option<Allowance>| {
            allowance.and_then(|a| Limiter::new(name, a, redis.clone()))
        };
        Arc::new(Self {
            auth: limiter(Limit::Auth, settings.auth),
            writes: limiter(Limit::Write, settings.writes),
            trust_forwarded_for: settings.trust_forwarded_for,
            metrics,
        })
    }

    /// Drops the in-memory state of keys that are back to a full allowance, so the maps do not
    /// grow with every IP ever seen.
    pub fn housekeeping(&self) {
        for limiter in [&self.auth, &self.writes].into_iter().flatten() {
            limiter.local.retain_recent();
            limiter.local.shrink_to_fit();
        }
    }

    /// One auth attempt from `ip`.
    pub(crate) async fn auth_attempt(&self, ip: IpAddr) -> Result<(), ApiError> {
        match &self.auth {
            Some(limiter) => self.check(limiter, &ip.to_string()).await,
            None => Ok(()),
        }
    }

    /// One REST write by `user`.
    pub(crate) async fn write(&self, user: &str) -> Result<(), ApiError> {
        match &self.writes {
            Some(limiter) => self.check(limiter, user).await,
            None => Ok(()),
        }
    }

    async fn check(&self, limiter: &Limiter, key: &str) -> Result<(), ApiError> {
        let Err(retry_after) = limiter.check(key).await else {
            return Ok(());
        };
        self.metrics.rate_limited(limiter.name);
        // Whole seconds, rounded up: a client that waits that long is let through.
        let secs = retry_after.as_millis().div_ceil(1000).max(1);
        let secs = u64::try_from(secs).unwrap_or(u64::MAX);
        let message = match limiter.name {
            Limit::Auth => "too many attempts from this address; try again later",
            _ => "too many changes; slow down",
        };
        let mut error = ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            message,
        );
        error.details = Some(serde_json::json!({ "retry_after_secs": secs }));
        error.retry_after = Some(secs);
        Err(error)
    }

    /// The client's address: the TCP peer, or behind a trusted proxy the address that proxy
    /// saw (the last `X-Forwarded-For` entry; the ones before it are whatever the client sent).
    fn client_ip(&self, parts: &Parts) -> Option<IpAddr> {
        if self.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
                .next_back();
            if forwarded.is_some() {
                return forwarded;
            }
        }
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
    }
}

/// One limit: its in-memory count and, when configured, the shared one.
struct Limiter {
    name: Limit,
    allowance: Allowance,
    local: DefaultKeyedRateLimiter<String>,
    shared: Option<Arc<SharedCounts>>,
}

impl Limiter {
    fn new(name: Limit, allowance: Allowance, shared: Option<Arc<SharedCounts>>) -> Option<Self> {
        let count = NonZeroU32::new(allowance.count)?;
        let quota = Quota::with_period(allowance.period / count.get())?.allow_burst(count);
        Some(Self {
            name,
            allowance,
            local: DefaultKeyedRateLimiter::keyed(quota),
            shared,
        })
    }

    /// `Err(wait)` when the key has no allowance left.
    async fn check(&self, key: &str) -> Result<(), Duration> {
        if let Some(shared) = &self.shared {
            match shared.hit(self.name, key, self.allowance).await {
                Ok(outcome) => return outcome,
                Err(error) => {
                    tracing::warn!(%error, "rate-limit Redis unavailable; counting on this node");
                }
            }
        }
        self.local
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Counts kept in Redis: a fixed window per key that starts with its first hit and expires
/// `period` later, so a key is refused after `count` hits and whole again once the window ends.
struct SharedCounts {
    client: redis::Client,
    connection: OnceCell<redis::aio::ConnectionManager>,
    cluster: String,
}

/// INCR and PEXPIRE in one step, so a key can never be left counting without an expiry.
const WINDOW_SCRIPT: &str = r"
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {hits, ttl}
";

/// How long a limit check waits for Redis before counting locally.
const REDIS_WAIT: Duration = Duration::from_millis(500);

impl SharedCounts {
    async fn hit(
        &self,
        limit: Limit,
        key: &str,
        allowance: Allowance,
    ) -> Result<Result<(), Duration>, redis::RedisError> {
        let work = async {
            let connection = self
                .connection
                .get_or_try_init(|| redis::aio::ConnectionManager::new(self.client.clone()))
                .await?;
            let mut connection = connection.clone();
            let period_ms = u64::try_from(allowance.period.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            let (hits, ttl_ms): (u64, i64) = redis::Script::new(WINDOW_SCRIPT)
                .key(format!(
                    "fawkes_rl:{}:{}:{key}",
                    self.cluster,
                    limit.label()
                ))
                .arg(period_ms)
                .invoke_async(&mut connection)
                .await?;
            Ok(if hits <= u64::from(allowance.count) {
                Ok(())
            } else {
                Err(Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0)))
            })
        };
        tokio::time::timeout(REDIS_WAIT, work)
            .await
            .unwrap_or_else(|_| {
                Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "no answer in time",
                )))
            })
    }
}

/// An attempt at login, registration or refresh, counted against the client's IP before the
/// handler runs; over the limit the request is answered 429 with `Retry-After`.
pub struct AuthAttempt;

impl FromRequestParts<AppState> for AuthAttempt {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let limits = &state.limits;
        if let Some(ip) = limits.client_ip(parts) {
            limits.auth_attempt(ip).await?;
        }
        Ok(AuthAttempt)
    }
}
