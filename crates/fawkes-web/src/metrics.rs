//! Prometheus metrics at `/metrics`.
//!
//! Each server has its own recorder rather than the process-wide one, so several servers in one
//! process (the tests, the two-node tests) never mix their figures. Request metrics are recorded
//! as requests finish; everything the crates already count in atomics (sockets, frames, fan-out,
//! presence, bus, pool) is read only when Prometheus scrapes, so no hot path pays for metrics.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// Seconds; from 1 ms to 10 s, which covers both an API call and a slow query.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Which limit refused a request or event, for `fawkes_rate_limited_total{limit}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Per client IP on the auth endpoints.
    Auth,
    /// Per user on REST writes.
    Write,
    /// Presence updates per socket.
    Presence,
}

impl Limit {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Limit::Auth => "auth",
            Limit::Write => "write",
            Limit::Presence => "presence",
        }
    }
}

/// One server's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// SHA-256 of the bearer token a scrape must present, if one is configured.
    token_digest: Option<[u8; 32]>,
    /// Namespaces that had joined channels at an earlier scrape: they are reported as 0 once
    /// empty instead of vanishing.
    namespaces_seen: Mutex<HashSet<String>>,
    /// Likewise for job queue and state pairs.
    job_states_seen: Mutex<HashSet<(String, String)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh recorder; `token`, when set and not empty, is required to scrape.
    pub fn new(token: Option<&str>) -> Arc<Self> {
        let builder = PrometheusBuilder::new();
        // Histograms with buckets (not summaries) so dashboards can aggregate across nodes.
        let builder = builder
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let metrics = Self {
            recorder,
            handle,
            token_digest: token
                .filter(|t| !t.is_empty())
                .map(|t| Sha256::digest(t.as_bytes()).into()),
            namespaces_seen: Mutex::default(),
            job_states_seen: Mutex::default(),
        };
        metrics.record(describe);
        metrics.record(|| {
            gauge!("fawkes_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        });
        Arc::new(metrics)
    }

    /// Runs `f` with this server's recorder behind the `metrics` macros (on this thread only).
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// Folds recorded histogram samples into their buckets. Rendering does it too; a periodic
    /// call keeps memory flat when nobody scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Counts a request or event refused by a rate limit.
    pub fn rate_limited(&self, limit: Limit) {
        self.record(|| {
            counter!("fawkes_rate_limited_total", "limit" => limit.label()).increment(1)
        });
    }

    /// Records one database query; given to SeaORM as its metric callback.
    pub fn database_query(&self, elapsed: std::time::Duration, sql: &str, failed: bool) {
        let op = statement_kind(sql);
        self.record(|| {
            histogram!("fawkes_db_query_duration_seconds", "op" => op)
                .record(elapsed.as_secs_f64());
            if failed {
                counter!("fawkes_db_query_errors_total", "op" => op).increment(1);
            }
        });
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.token_digest else {
            return true;
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        // Comparing digests: the time taken says nothing about the token itself.
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        presented == *expected
    }

    /// Copies the crates' counters into the recorder, then renders the text format. `jobs` are
    /// the job counts per queue and state, when they could be read.
    fn render(&self, state: &AppState, jobs: Option<fawkes_jobs::Counts>) -> String {
        let stats = state.endpoint.stats();
        let bus = state.endpoint.bus();
        let pool = fawkes_data::pool_usage(&state.db);
        let joined = state.endpoint.joined_by_namespace();
        let presence_entries = state.domain.presence.entry_count();
        let mut seen = self
            .namespaces_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        seen.extend(joined.keys().cloned());
        self.record(|| {
            gauge!("fawkes_sockets_open", "transport" => "websocket")
                .set(stats.connections.load(Relaxed) as f64);
            gauge!("fawkes_sockets_open", "transport" => "longpoll")
                .set(stats.longpoll_sessions.load(Relaxed) as f64);
            for namespace in seen.iter() {
                let count = joined.get(namespace).copied().unwrap_or(0);
                gauge!("fawkes_channels_joined", "namespace" => namespace.clone()).set(count as f64);
            }
            counter!("fawkes_socket_frames_received_total").absolute(stats.frames_in.load(Relaxed));
            counter!("fawkes_socket_frames_sent_total").absolute(stats.frames_out.load(Relaxed));
            counter!("fawkes_broadcasts_total").absolute(stats.broadcasts.load(Relaxed));
            counter!("fawkes_broadcast_deliveries_total")
                .absolute(stats.broadcast_deliveries.load(Relaxed));
            counter!("fawkes_slow_consumer_disconnects_total")
                .absolute(stats.slow_consumer_disconnects.load(Relaxed));
            counter!("fawkes_rate_limited_total", "limit" => "socket_event")
                .absolute(stats.rate_limited_events.load(Relaxed));
            counter!("fawkes_rate_limited_disconnects_total")
                .absolute(stats.rate_limited_disconnects.load(Relaxed));
            gauge!("fawkes_presence_entries").set(presence_entries as f64);
            for (name, cache) in state.domain.cache_stats() {
                counter!("fawkes_cache_requests_total", "cache" => name, "result" => "hit")
                    .absolute(cache.hits.load(Relaxed));
                counter!("fawkes_cache_requests_total", "cache" => name, "result" => "miss")
                    .absolute(cache.misses.load(Relaxed));
                counter!("fawkes_cache_invalidations_total", "cache" => name)
                    .absolute(cache.invalidations.load(Relaxed));
            }
            let writer = state.domain.messaging.writer_stats();
            counter!("fawkes_messages_stored_total").absolute(writer.messages.load(Relaxed));
            counter!("fawkes_message_transactions_total")
                .absolute(writer.transactions.load(Relaxed));
            gauge!("fawkes_db_pool_connections", "state" => "idle").set(f64::from(pool.idle));
            gauge!("fawkes_db_pool_connections", "state" => "in_use")
                .set(f64::from(pool.open.saturating_sub(pool.idle)));
            if let Some(remote) = bus.remote_status() {
                let backend = remote.backend;
                gauge!("fawkes_bus_connected", "backend" => backend)
                    .set(if remote.is_connected() { 1.0 } else { 0.0 });
                counter!("fawkes_bus_reconnects_total", "backend" => backend)
                    .absolute(remote.reconnects.load(Relaxed));
                counter!("fawkes_bus_messages_total", "backend" => backend, "direction" => "sent")
                    .absolute(remote.sent.load(Relaxed));
                counter!("fawkes_bus_messages_total", "backend" => backend, "direction" => "received")
                    .absolute(remote.received.load(Relaxed));
                counter!("fawkes_bus_messages_dropped_total", "backend" => backend)
                    .absolute(remote.dropped.load(Relaxed));
                gauge!("fawkes_bus_backlog", "backend" => backend).set(bus.remote_backlog() as f64);
            }
        });
        drop(seen);
        if let Some(jobs) = jobs {
            let mut seen = self
                .job_states_seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (queue, states) in &jobs {
                seen.extend(states.keys().map(|state| (queue.clone(), state.clone())));
            }
            self.record(|| {
                for (queue, state) in seen.iter() {
                    let count = jobs
                        .get(queue)
                        .and_then(|s| s.get(state))
                        .copied()
                        .unwrap_or(0);
                    gauge!("fawkes_jobs", "queue" => queue.clone(), "state" => state.clone())
                        .set(count as f64);
                }
            });
        }
        self.handle.render()
    }
}

/// `select`, `insert`, `update`, `delete` or `other`: the label of a query, never its text.
fn statement_kind(sql: &str) -> &'static str {
    let word = sql.trim_start().get(..6).unwrap_or_default();
    ["select", "insert", "update", "delete"]
        .into_iter()
        .find(|kind| word.eq_ignore_ascii_case(kind))
        .unwrap_or("other")
}

fn describe() {
    describe_gauge!(
        "fawkes_jobs",
        "Background jobs by queue and state (the whole cluster's: every node reports the same)"
    );
    describe_counter!(
        "fawkes_cache_requests_total",
        "Cache lookups by cache and result (hit or miss)"
    );
    describe_counter!(
        "fawkes_messages_stored_total",
        "Messages stored by this node's writer"
    );
    describe_counter!(
        "fawkes_message_transactions_total",
        "Transactions the message writer committed: messages stored over these is the mean batch (group commit)"
    );
    describe_counter!(
        "fawkes_cache_invalidations_total",
        "Cache entries dropped because they changed here or on another node"
    );
    describe_gauge!(
        "fawkes_build_info",
        "Always 1; the labels name the running version"
    );
    describe_counter!(
        "fawkes_http_requests_total",
        "HTTP requests answered, by method, matched route and status"
    );
    describe_histogram!(
        "fawkes_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by method, matched route and status"
    );
    describe_gauge!("fawkes_sockets_open", "Open sockets by transport");
    describe_gauge!(
        "fawkes_channels_joined",
        "Joined channels by topic namespace"
    );
    describe_counter!(
        "fawkes_socket_frames_received_total",
        "Frames received from socket clients"
    );
    describe_counter!(
        "fawkes_socket_frames_sent_total",
        "Frames queued to socket clients"
    );
    describe_counter!(
        "fawkes_broadcasts_total",
        "Broadcasts that reached a topic with local subscribers"
    );
    describe_counter!(
        "fawkes_broadcast_deliveries_total",
        "Frames queued to subscribers by broadcasts (fan-out)"
    );
    describe_counter!(
        "fawkes_slow_consumer_disconnects_total",
        "Sockets closed (1013) because their queue was full"
    );
    describe_counter!(
        "fawkes_rate_limited_total",
        "Requests and events refused by a rate limit, by limit"
    );
    describe_counter!(
        "fawkes_rate_limited_disconnects_total",
        "Sockets closed (1008) after sustained flooding"
    );
    describe_gauge!(
        "fawkes_presence_entries",
        "Presence entries tracked by this node"
    );
    describe_gauge!(
        "fawkes_db_pool_connections",
        "Database pool connections by state"
    );
    describe_histogram!(
        "fawkes_db_query_duration_seconds",
        Unit::Seconds,
        "Database query time by statement kind"
    );
    describe_counter!(
        "fawkes_db_query_errors_total",
        "Database queries that failed, by statement kind"
    );
    describe_gauge!(
        "fawkes_bus_connected",
        "1 while the bus to the other nodes is connected"
    );
    describe_counter!(
        "fawkes_bus_reconnects_total",
        "Times the bus connection was lost and retried"
    );
    describe_counter!(
        "fawkes_bus_messages_total",
        "Bus messages sent to and received from other nodes"
    );
    describe_counter!(
        "fawkes_bus_messages_dropped_total",
        "Bus messages lost: queue full or send failed"
    );
    describe_gauge!(
        "fawkes_bus_backlog",
        "Messages waiting to go out to the other nodes (bus lag)"
    );
}

/// Records every answered request by its route pattern (`/api/v1/rooms/{slug}`), never the raw
/// path, so ids in paths cannot blow up the number of series.
pub(crate) async fn track(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    metrics.record(|| {
        let labels = [("method", method), ("route", route), ("status", status)];
        counter!("fawkes_http_requests_total", &labels).increment(1);
        histogram!("fawkes_http_request_duration_seconds", &labels).record(elapsed);
    });
    response
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format", content_type = "text/plain"),
        (status = 401, body = crate::ErrorBody, description = "A token is configured and was not presented"),
    ),
    security((), ("bearer" = [])))]
pub(crate) async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let metrics = &state.metrics;
    if !metrics.authorized(&headers) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "a metrics token is required",
        )
        .into_response();
    }
    // The jobs table is shared by every node: one grouped count per scrape.
    let jobs = match state
        .domain
        .jobs
        .counts(&fawkes_domain::Actor::System)
        .await
    {
        Ok(counts) => Some(counts),
        Err(error) => {
            tracing::warn!(%error, "metrics: cannot count jobs");
            None
        }
    };
    let body = metrics.render(&state, jobs);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_labelled_by_kind_only() {
        assert_eq!(statement_kind("SELECT * FROM users WHERE x = $1"), "select");
        assert_eq!(statement_kind("  insert into t values (1)"), "insert");
        assert_eq!(statement_kind("BEGIN"), "other");
        assert_eq!(statement_kind(""), "other");
    }
}
