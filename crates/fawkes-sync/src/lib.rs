//! Outbound sinks: the application's events sent to the outside world, durably.
//!
//! - A **webhook** sink POSTs each event as JSON, signed like Stripe's webhooks
//!   ([`sign::signature_header`]: `X-Fawkes-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`),
//!   with `X-Fawkes-Event` and `X-Fawkes-Delivery` (the delivery id, the same on every attempt, so
//!   a receiver that remembers ids handles each event once).
//! - A **Firebase** sink mirrors state into a Firebase Realtime Database through its REST API:
//!   `PUT {url}/{path}.json?auth=…` with the value, `DELETE` when it is gone. What to write is
//!   asked of the application ([`Mirror`]) when the request is sent, from the state as it is
//!   then, so deliveries that arrive late or out of order still leave the mirror right.
//!
//! Events reach sinks through jobs, never inline: the action calls [`Router::emit`] with its own
//! transaction, which enqueues one `sink_deliver` job per sink that wants the event (so each sink
//! retries, fails and recovers on its own). [`Sinks`] is the handler of those jobs and of
//! `sink_reconcile`:
//!
//! - 2xx is delivered; a 4xx other than 408/429 is refused for good (the job is discarded with the
//!   error); anything else, a timeout included, is a failure retried with the job's backoff.
//! - A [`breaker::Breaker`] per sink opens after `failure_threshold` failures in a row. While it is
//!   open nothing is attempted: deliveries are recorded in `sink_missed` (and so are deliveries out
//!   of attempts, and deliveries that arrive while older missed ones wait, so the backlog keeps
//!   event order). After the cool-down one delivery goes out as the probe; success closes it.
//! - Reconciliation (`sink_reconcile`, scheduled for when the breaker will let a probe through,
//!   when it closes, and by cron) sends a sink's missed deliveries oldest first, each with its
//!   original delivery id, deleting each once the sink took it.
//!
//! The crate knows events only by name and JSON data; which events exist and how they map to
//! Firebase paths is the application's.

pub mod breaker;
mod config;
mod http;
mod outbox;
pub mod sign;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use fawkes_jobs::{JobContext, JobError, JobHandler, NewJob, Registry};
use reqwest::Method;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

pub use breaker::{Breaker, BreakerState};
pub use config::{SinkConfig, SinkKind, check};
pub use http::{Outcome, install_crypto_provider, judge};
pub use outbox::missed_counts;

/// The job kind that delivers one event to one sink.
pub const DELIVER_KIND: &str = "sink_deliver";
/// The job kind that sends what sinks missed (args `{"sink": name}`, or `{}` for every sink).
pub const RECONCILE_KIND: &str = "sink_reconcile";
/// The queue of both.
pub const QUEUE: &str = "sinks";
/// Reconciliation sends this many missed deliveries per database read.
const BATCH: u64 = 50;

/// What can go wrong setting sinks up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid sink {name:?}: {message}")]
    Config { name: String, message: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error(transparent)]
    Jobs(#[from] fawkes_jobs::Error),
}

/// An event for the sinks, as an action emits it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// e.g. `comment.created`.
    pub name: String,
    /// What webhooks receive as `data`, and what a [`Mirror`] needs to find the state.
    pub data: Value,
    /// Whether webhooks may receive it (their `events` filter still applies).
    pub webhook: bool,
    /// The group Firebase sinks mirror it under (`comments`, `presence`), if any.
    pub mirror: Option<String>,
    /// `(key, window)`: the deliveries of events with the same key are coalesced: one job per
    /// sink per window, sent once the window has passed (so it reads the latest state). Only
    /// for events whose delivery reads state at send time (mirrors).
    pub coalesce: Option<(String, Duration)>,
}

impl Event {
    /// An event webhooks receive.
    pub fn new(name: impl Into<String>, data: Value) -> Self {
        Self {
            name: name.into(),
            data,
            webhook: true,
            mirror: None,
            coalesce: None,
        }
    }

    /// Also mirrored by Firebase sinks under `group`.
    pub fn mirrored(mut self, group: &str) -> Self {
        self.mirror = Some(group.to_owned());
        self
    }

    /// Not for webhooks.
    pub fn mirror_only(mut self, group: &str) -> Self {
        self.webhook = false;
        self.mirrored(group)
    }

    pub fn coalesced(mut self, key: impl Into<String>, window: Duration) -> Self {
        self.coalesce = Some((key.into(), window));
        self
    }
}

/// The arguments of a `sink_deliver` job, and of a row of `sink_missed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryArgs {
    pub sink: String,
    /// `X-Fawkes-Delivery`, and the missed row's id: UUIDv7, so ordering by it is event order.
    pub delivery_id: Uuid,
    pub event: String,
    /// When the event happened (Unix milliseconds).
    pub occurred_at: i64,
    pub data: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
}

/// Which sinks want which events. Cheap to clone; configured once at start.
#[derive(Debug, Clone, Default)]
pub struct Router {
    sinks: Arc<RwLock<Vec<SinkConfig>>>,
}

impl Router {
    pub fn configure(&self, sinks: Vec<SinkConfig>) {
        if let Ok(mut current) = self.sinks.write() {
            *current = sinks;
        }
    }

    /// Whether any sink wants events mirrored under `group` (or webhook events, for `None`):
    /// lets an action skip work nobody will receive.
    pub fn any_wants(&self, event: &Event) -> bool {
        self.sinks
            .read()
            .map(|sinks| sinks.iter().any(|s| s.wants(event)))
            .unwrap_or(false)
    }

    /// Enqueues one `sink_deliver` job per sink that wants `event`, through `conn`: the
    /// action's transaction, so the deliveries exist exactly when the action committed.
    /// Returns how many were enqueued.
    pub async fn emit<C: ConnectionTrait>(&self, conn: &C, event: Event) -> Result<usize, Error> {
        let wanting: Vec<SinkConfig> = match self.sinks.read() {
            Ok(sinks) => sinks.iter().filter(|s| s.wants(&event)).cloned().collect(),
            Err(_) => Vec::new(),
        };
        let occurred_at = chrono::Utc::now().timestamp_millis();
        let mut enqueued = 0;
        for sink in wanting {
            let args = DeliveryArgs {
                sink: sink.name.clone(),
                delivery_id: Uuid::now_v7(),
                event: event.name.clone(),
                occurred_at,
                data: event.data.clone(),
                mirror: event.mirror.clone(),
            };
            let mut job = NewJob::new(
                DELIVER_KIND,
                serde_json::to_value(&args).unwrap_or_default(),
            )
            .queue(QUEUE)
            .max_attempts(sink.max_attempts);
            if let Some((key, window)) = &event.coalesce {
                // Sent after the window, so it reads whatever the last coalesced change left.
                job = job
                    .unique(format!("sink:{}:{key}", sink.name), *window)
                    .delay(*window + Duration::from_millis(50));
            }
            if fawkes_jobs::enqueue(conn, job).await?.is_some() {
                enqueued += 1;
            }
        }
        Ok(enqueued)
    }
}

/// A write to a Firebase Realtime Database.
#[derive(Debug, Clone, PartialEq)]
pub enum FirebaseWrite {
    /// `PUT {url}/{path}.json` with `value`.
    Put { path: String, value: Value },
    /// `DELETE {url}/{path}.json`.
    Delete { path: String },
}

/// The application's side of a mirror: what a Firebase sink should hold for a delivery, read
/// when it is sent. `Ok(None)` sends nothing.
#[async_trait::async_trait]
pub trait Mirror: Send + Sync + 'static {
    async fn firebase(&self, delivery: &DeliveryArgs) -> Result<Option<FirebaseWrite>, String>;
}

struct Sink {
    config: SinkConfig,
    breaker: Breaker,
    /// One reconciliation at a time per sink on this node.
    reconciling: tokio::sync::Mutex<()>,
}

struct Inner {
    db: DatabaseConnection,
    client: reqwest::Client,
    sinks: HashMap<String, Arc<Sink>>,
    mirror: Arc<dyn Mirror>,
}

/// The sinks of this node: the handler of `sink_deliver` and `sink_reconcile` jobs, holding
/// each sink's breaker. Cheap to clone.
#[derive(Clone)]
pub struct Sinks {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks")
            .field("sinks", &self.inner.sinks.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What one attempt at a delivery came to.
enum Attempt {
    /// Nothing to send (a mirror with nothing to write).
    Nothing,
    Sent(Outcome),
}

impl Sinks {
    /// The configured sinks (checked) over `db`, mirroring through `mirror`.
    pub fn new(
        db: DatabaseConnection,
        configs: Vec<SinkConfig>,
        mirror: Arc<dyn Mirror>,
    ) -> Result<Sinks, Error> {
        check(&configs)?;
        let client = http::client().map_err(|e| Error::Client(e.to_string()))?;
        let sinks = configs
            .into_iter()
            .map(|config| {
                let breaker =
                    Breaker::new(&config.name, config.failure_threshold, config.cooldown());
                let name = config.name.clone();
                let sink = Sink {
                    config,
                    breaker,
                    reconciling: tokio::sync::Mutex::new(()),
                };
                (name, Arc::new(sink))
            })
            .collect();
        Ok(Sinks {
            inner: Arc::new(Inner {
                db,
                client,
                sinks,
                mirror,
            }),
        })
    }

    /// Runs both job kinds with this handler.
    pub fn register(&self, registry: &Registry) {
        registry.register(DELIVER_KIND, self.clone());
        registry.register(RECONCILE_KIND, self.clone());
    }

    /// A sink's breaker state on this node.
    pub fn breaker_state(&self, sink: &str) -> Option<BreakerState> {
        self.inner.sinks.get(sink).map(|s| s.breaker.state())
    }

    fn sink(&self, name: &str) -> Result<&Arc<Sink>, JobError> {
        self.inner
            .sinks
            .get(name)
            .ok_or_else(|| JobError::discard(format!("no sink named {name:?} is configured")))
    }

    async fn deliver(&self, job: &JobContext) -> Result<(), JobError> {
        let args: DeliveryArgs = job.args()?;
        let sink = self.sink(&args.sink)?;
        let db = &self.inner.db;
        // Older deliveries are waiting: this one goes behind them, so the sink sees events in
        // order once reconciliation sends the backlog.
        if outbox::any(db, &sink.config.name).await? {
            self.miss(sink, &args, "queued behind earlier missed deliveries")
                .await?;
            return Ok(());
        }
        if let breaker::Admission::Refused { .. } = sink.breaker.allow() {
            self.miss(sink, &args, "circuit open").await?;
            return Ok(());
        }
        let outcome = match self.attempt(sink, &args).await? {
            Attempt::Nothing => return Ok(()),
            Attempt::Sent(outcome) => outcome,
        };
        match outcome {
            Outcome::Delivered => {
                self.answered(sink).await;
                Ok(())
            }
            Outcome::Refused(error) => {
                // The sink is up and answered; it will never take this request.
                self.answered(sink).await;
                tracing::warn!(sink = %sink.config.name, delivery = %args.delivery_id, event = %args.event, %error, "sink refused the delivery; discarded");
                Err(JobError::discard(error))
            }
            Outcome::Failed(error) => {
                sink.breaker.failure();
                let last = job.attempt >= job.max_attempts;
                if sink.breaker.state() != BreakerState::Closed || last {
                    // The breaker is open now (or this was the last attempt): reconciliation
                    // takes it from here, in order with what else is missed.
                    self.miss(sink, &args, &error).await?;
                    Ok(())
                } else {
                    Err(JobError::retry(error))
                }
            }
        }
    }

    /// The sink answered: a breaker that closes now sends what was missed meanwhile.
    async fn answered(&self, sink: &Sink) {
        if sink.breaker.success() == breaker::Transition::Closed {
            self.schedule_reconcile(sink, None).await;
        }
    }

    /// Records a missed delivery and makes sure reconciliation will come for it.
    async fn miss(&self, sink: &Sink, args: &DeliveryArgs, why: &str) -> Result<(), JobError> {
        outbox::record(&self.inner.db, args, why).await?;
        tracing::info!(sink = %sink.config.name, delivery = %args.delivery_id, event = %args.event, reason = why, "sink delivery recorded as missed");
        self.schedule_reconcile(sink, sink.breaker.open_until())
            .await;
        Ok(())
    }

    /// Enqueues a reconciliation of `sink` at `at` (now if `None`), once per second-slot.
    async fn schedule_reconcile(&self, sink: &Sink, at: Option<Instant>) {
        let now = chrono::Utc::now().timestamp_millis();
        let at_ms = at.map_or(now, |at| {
            let wait = at.saturating_duration_since(Instant::now());
            now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
        });
        let name = &sink.config.name;
        let job = NewJob::new(RECONCILE_KIND, json!({ "sink": name }))
            .queue(QUEUE)
            .run_at(at_ms)
            .unique(
                format!("sink_reconcile:{name}:{}", at_ms / 1000),
                Duration::from_secs(1),
            );
        if let Err(e) = fawkes_jobs::enqueue(&self.inner.db, job).await {
            // The cron entry reconciles every sink with a backlog anyway.
            tracing::warn!(sink = %name, error = %e, "cannot schedule reconciliation");
        }
    }

    /// Builds and sends the request for `args`.
    async fn attempt(&self, sink: &Sink, args: &DeliveryArgs) -> Result<Attempt, JobError> {
        let config = &sink.config;
        let request = match config.kind {
            SinkKind::Webhook => webhook_request(config, args)?,
            SinkKind::Firebase => {
                let write = self
                    .inner
                    .mirror
                    .firebase(args)
                    .await
                    .map_err(JobError::retry)?;
                match write {
                    Some(write) => firebase_request(config, write)?,
                    None => return Ok(Attempt::Nothing),
                }
            }
        };
        let outcome = http::send(&self.inner.client, request, config.timeout()).await;
        if let Outcome::Failed(error) = &outcome {
            tracing::info!(sink = %config.name, delivery = %args.delivery_id, event = %args.event, %error, "sink delivery failed");
        }
        Ok(Attempt::Sent(outcome))
    }

    async fn reconcile(&self, job: &JobContext) -> Result<(), JobError> {
        #[derive(Deserialize)]
        struct Args {
            sink: Option<String>,
        }
        let args: Args = job.args()?;
        let names = match args.sink {
            Some(name) => vec![name],
            None => outbox::sinks_with_backlog(&self.inner.db).await?,
        };
        let mut first_error = None;
        for name in names {
            let Some(sink) = self.inner.sinks.get(&name) else {
                tracing::warn!(sink = %name, "missed deliveries of a sink that is no longer configured; kept");
                continue;
            };
            if let Err(e) = self.reconcile_sink(sink).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Sends `sink`'s missed deliveries oldest first until none is left or the sink fails.
    async fn reconcile_sink(&self, sink: &Sink) -> Result<(), JobError> {
        let _one_at_a_time = sink.reconciling.lock().await;
        let db = &self.inner.db;
        let name = &sink.config.name;
        let mut sent = 0u64;
        loop {
            let rows = outbox::oldest(db, name, BATCH).await?;
            if rows.is_empty() {
                if sent > 0 {
                    tracing::info!(sink = %name, sent, "sink reconciled: every missed delivery sent");
                }
                return Ok(());
            }
            for row in rows {
                if let breaker::Admission::Refused { until } = sink.breaker.allow() {
                    self.schedule_reconcile(sink, Some(until)).await;
                    return Ok(());
                }
                let args: DeliveryArgs = match serde_json::from_str(&row.args) {
                    Ok(args) => args,
                    Err(e) => {
                        tracing::error!(sink = %name, delivery = %row.id, error = %e, "unreadable missed delivery; dropped");
                        outbox::delivered(db, row.id).await?;
                        continue;
                    }
                };
                match self.attempt(sink, &args).await? {
                    Attempt::Nothing => outbox::delivered(db, row.id).await?,
                    Attempt::Sent(Outcome::Delivered) => {
                        sink.breaker.success();
                        outbox::delivered(db, row.id).await?;
                        sent += 1;
                    }
                    Attempt::Sent(Outcome::Refused(error)) => {
                        sink.breaker.success();
                        tracing::warn!(sink = %name, delivery = %row.id, event = %row.event, %error, "sink refused a missed delivery; discarded");
                        outbox::delivered(db, row.id).await?;
                    }
                    Attempt::Sent(Outcome::Failed(error)) => {
                        sink.breaker.failure();
                        outbox::failed_again(db, row.id, &error).await?;
                        return match sink.breaker.open_until() {
                            Some(until) => {
                                self.schedule_reconcile(sink, Some(until)).await;
                                Ok(())
                            }
                            // Still closed: the job's own backoff paces the next try.
                            None => Err(JobError::retry(error)),
                        };
                    }
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl JobHandler for Sinks {
    async fn perform(&self, job: &JobContext) -> Result<(), JobError> {
        match job.kind.as_str() {
            DELIVER_KIND => self.deliver(job).await,
            RECONCILE_KIND => self.reconcile(job).await,
            other => Err(JobError::discard(format!("not a sink job: {other}"))),
        }
    }
}

/// The webhook POST: `{id, event, created_at, data}`, signed at send time.
fn webhook_request(config: &SinkConfig, args: &DeliveryArgs) -> Result<http::Outgoing, JobError> {
    let created_at = chrono::DateTime::from_timestamp_millis(args.occurred_at)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let body = serde_json::to_vec(&json!({
        "id": args.delivery_id,
        "event": args.event,
        "created_at": created_at,
        "data": args.data,
    }))
    .map_err(|e| JobError::discard(e.to_string()))?;
    let secret = config.secret.as_deref().unwrap_or_default();
    let signature =
        sign::signature_header(secret.as_bytes(), chrono::Utc::now().timestamp(), &body);
    let url = url::Url::parse(&config.url).map_err(|e| JobError::discard(e.to_string()))?;
    Ok(http::Outgoing {
        method: Method::POST,
        url,
        headers: vec![
            ("x-fawkes-event", args.event.clone()),
            ("x-fawkes-delivery", args.delivery_id.to_string()),
            ("x-fawkes-signature", signature),
        ],
        body: Some(body),
    })
}

/// `PUT`/`DELETE {url}/{path}.json?auth=…`, each path segment escaped.
fn firebase_request(config: &SinkConfig, write: FirebaseWrite) -> Result<http::Outgoing, JobError> {
    let (method, path, body) = match write {
        FirebaseWrite::Put { path, value } => (
            Method::PUT,
            path,
            Some(serde_json::to_vec(&value).map_err(|e| JobError::discard(e.to_string()))?),
        ),
        FirebaseWrite::Delete { path } => (Method::DELETE, path, None),
    };
    let mut url = url::Url::parse(&config.url).map_err(|e| JobError::discard(e.to_string()))?;
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some((last, parents)) = segments.split_last() else {
        return Err(JobError::discard("an empty Firebase path"));
    };
    {
        let mut parts = url
            .path_segments_mut()
            .map_err(|_| JobError::discard("the Firebase URL cannot take a path"))?;
        parts.pop_if_empty();
        parts.extend(parents.iter().copied());
        parts.push(&format!("{last}.json"));
    }
    url.query_pairs_mut()
        .append_pair("auth", config.auth.as_deref().unwrap_or_default());
    Ok(http::Outgoing {
        method,
        url,
        headers: Vec::new(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(kind: SinkKind) -> SinkConfig {
        SinkConfig {
            name: "s".into(),
            kind,
            url: "https://db.example/base/".into(),
            secret: Some("whsec".into()),
            auth: Some("tok en".into()),
            events: vec!["comment.*".into(), "post.published".into()],
            mirror: vec!["comments".into()],
            failure_threshold: 3,
            cooldown_secs: 1,
            timeout_secs: 1,
            max_attempts: 3,
        }
    }

    #[test]
    fn webhooks_filter_by_name_and_prefix_firebase_by_mirror_group() {
        let webhook = sink(SinkKind::Webhook);
        let firebase = sink(SinkKind::Firebase);
        let created = Event::new("comment.created", json!({})).mirrored("comments");
        let published = Event::new("post.published", json!({}));
        let message = Event::new("message.created", json!({}));
        let presence = Event::new("presence.changed", json!({})).mirror_only("presence");
        assert!(webhook.wants(&created) && webhook.wants(&published));
        assert!(!webhook.wants(&message) && !webhook.wants(&presence));
        assert!(firebase.wants(&created));
        assert!(!firebase.wants(&published) && !firebase.wants(&presence));
    }

    #[test]
    fn firebase_urls_escape_segments_and_carry_the_token() {
        let request = firebase_request(
            &sink(SinkKind::Firebase),
            FirebaseWrite::Put {
                path: "presence/room:lobby/u 1".into(),
                value: json!({"a": 1}),
            },
        )
        .expect("request");
        assert_eq!(
            request.url.as_str(),
            "https://db.example/base/presence/room:lobby/u%201.json?auth=tok+en"
        );
        assert_eq!(request.method, Method::PUT);
    }

    #[test]
    fn config_check_refuses_missing_secrets_bad_urls_and_duplicates() {
        assert!(check(&[sink(SinkKind::Webhook)]).is_ok());
        let mut no_secret = sink(SinkKind::Webhook);
        no_secret.secret = None;
        assert!(check(&[no_secret]).is_err());
        let mut bad_url = sink(SinkKind::Firebase);
        bad_url.url = "ftp://x".into();
        assert!(check(&[bad_url]).is_err());
        assert!(check(&[sink(SinkKind::Webhook), sink(SinkKind::Firebase)]).is_err());
        let shown = format!("{:?}", sink(SinkKind::Webhook).masked());
        assert!(!shown.contains("whsec"));
    }
}
