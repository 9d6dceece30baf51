//! Outbound sinks on every database, against local HTTP servers that behave like the real
//! endpoints: a webhook receiver that checks signatures and counts deliveries by id (failing,
//! slow and refusing for a while), and a Firebase Realtime Database stand-in (`PUT`/`DELETE
//! /{path}.json?auth=…`). Every wait is for a condition, bounded by a timeout.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{post, put};
use common::TestServer;
use fawkes_jobs::{JobFilter, Jobs, State as JobState};
use fawkes_sync::{SinkConfig, SinkKind};
use serde_json::{Value, json};

const SECRET: &str = "whsec_test_secret";
const TOKEN: &str = "firebase-test-token";

/// Polls `check` every 25 ms until it holds; fails the test after `timeout`.
async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Serves `router` on a random loopback port; returns its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

/// How the webhook receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Fail,
    Slow,
    Gone,
}

#[derive(Default)]
struct Receiver {
    mode: Mutex<Option<Mode>>,
    /// Every request while failing.
    failed_attempts: AtomicUsize,
    attempts: AtomicUsize,
    bad_signatures: AtomicUsize,
    /// 2xx answers per delivery id, and the events in the order they were taken.
    by_delivery: Mutex<HashMap<String, usize>>,
    taken: Mutex<Vec<Value>>,
}

impl Receiver {
    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("lock") = Some(mode);
    }

    fn delivered(&self) -> usize {
        self.by_delivery.lock().expect("lock").len()
    }
}

async fn webhook(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    receiver.attempts.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let now = chrono::Utc::now().timestamp();
    if !fawkes_sync::sign::verify(
        SECRET.as_bytes(),
        &header("x-fawkes-signature"),
        &body,
        now,
        300,
    ) {
        receiver.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::BAD_REQUEST;
    }
    let mode = receiver.mode.lock().expect("lock").unwrap_or(Mode::Ok);
    match mode {
        Mode::Fail => {
            receiver.failed_attempts.fetch_add(1, Ordering::SeqCst);
            StatusCode::INTERNAL_SERVER_ERROR
        }
        Mode::Slow => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            StatusCode::OK
        }
        Mode::Gone => StatusCode::GONE,
        Mode::Ok => {
            let event: Value = serde_json::from_slice(&body).unwrap_or_default();
            assert_eq!(
                event["id"].as_str(),
                Some(header("x-fawkes-delivery").as_str())
            );
            assert_eq!(
                event["event"].as_str(),
                Some(header("x-fawkes-event").as_str())
            );
            let mut seen = receiver.by_delivery.lock().expect("lock");
            let count = seen.entry(header("x-fawkes-delivery")).or_default();
            *count += 1;
            // An idempotent receiver takes each delivery id once.
            if *count == 1 {
                receiver.taken.lock().expect("lock").push(event);
            }
            StatusCode::NO_CONTENT
        }
    }
}

async fn receiver() -> (Arc<Receiver>, String) {
    let state = Arc::new(Receiver::default());
    let router = axum::Router::new()
        .route("/hook", post(webhook))
        .with_state(state.clone());
    let base = serve(router).await;
    (state, format!("{base}/hook"))
}

fn webhook_sink(name: &str, url: &str) -> SinkConfig {
    SinkConfig {
        name: name.to_owned(),
        kind: SinkKind::Webhook,
        url: url.to_owned(),
        secret: Some(SECRET.to_owned()),
        auth: None,
        events: vec!["comment.*".to_owned()],
        mirror: Vec::new(),
        failure_threshold: 3,
        cooldown_secs: 1,
        timeout_secs: 1,
        max_attempts: 5,
    }
}

/// A server whose worker runs the sinks quickly.
async fn server_with(backend: common::Backend, sinks: Vec<SinkConfig>) -> Option<TestServer> {
    TestServer::start_with(backend, move |config| {
        config.sinks = sinks;
        config.jobs.poll_interval_ms = 50;
        config.jobs.backoff_base_ms = 50;
        config.jobs.backoff_cap_secs = 1;
    })
    .await
}

async fn missed(server: &TestServer, sink: &str) -> u64 {
    fawkes_sync::missed_counts(&server.db)
        .await
        .expect("counts")
        .get(sink)
        .copied()
        .unwrap_or(0)
}

async fn comment(server: &TestServer, token: &str, video: &str, content: &str) -> Value {
    server
        .create(
            &format!("/api/v1/videos/{video}/comments"),
            token,
            json!({ "content": content }),
        )
        .await
}

async fn sink_jobs(server: &TestServer, state: JobState) -> Vec<fawkes_jobs::Job> {
    let filter = JobFilter {
        state: Some(state),
        queue: None,
        kind: Some(fawkes_sync::DELIVER_KIND.to_owned()),
    };
    Jobs::new(server.db.clone())
        .list(&filter, None, 100)
        .await
        .expect("jobs")
}

/// The receiver fails: the breaker opens after three failures, so far fewer requests reach it
/// than there are events, and every event is recorded as missed. Once it recovers,
/// reconciliation sends every event in order, and each delivery id is taken exactly once.
async fn breaker_opens_and_reconciliation_delivers_everything_once_on(backend: common::Backend) {
    let (receiver, url) = receiver().await;
    receiver.set(Mode::Fail);
    let Some(server) = server_with(backend, vec![webhook_sink("hooks", &url)]).await else {
        return;
    };
    let ada = server.register("ada").await;
    let events = 12;
    let mut ids = Vec::new();
    for n in 0..events {
        let created = comment(&server, &ada.access_token, "v1", &format!("comment {n}")).await;
        ids.push(created["id"].as_str().expect("id").to_owned());
    }
    wait_until(
        "every event recorded as missed",
        Duration::from_secs(30),
        || async { missed(&server, "hooks").await == events },
    )
    .await;
    let failed = receiver.failed_attempts.load(Ordering::SeqCst);
    assert!(
        failed < events as usize,
        "the open breaker holds deliveries back: {failed} attempts for {events} events"
    );
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);

    receiver.set(Mode::Ok);
    wait_until(
        "every event delivered after recovery",
        Duration::from_secs(30),
        || async { receiver.delivered() == events as usize },
    )
    .await;
    wait_until("the backlog emptied", Duration::from_secs(10), || async {
        missed(&server, "hooks").await == 0
    })
    .await;
    // Let any stray duplicate arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let by_delivery = receiver.by_delivery.lock().expect("lock").clone();
    assert_eq!(by_delivery.len(), events as usize);
    assert!(
        by_delivery.values().all(|n| *n == 1),
        "no delivery taken twice: {by_delivery:?}"
    );
    let taken = receiver.taken.lock().expect("lock").clone();
    let order: Vec<String> = taken
        .iter()
        .map(|e| e["data"]["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(order, ids, "the backlog is sent in event order");
    assert!(taken.iter().all(|e| e["event"] == "comment.created"));
    assert!(taken.iter().all(|e| e["data"]["video_id"] == "v1"));
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
}

/// A receiver slower than the sink's timeout fails the delivery: retried, then, out of
/// attempts, recorded as missed (never lost) with the timeout as its error.
async fn a_slow_receiver_is_a_failure_on(backend: common::Backend) {
    let (receiver, url) = receiver().await;
    receiver.set(Mode::Slow);
    let mut sink = webhook_sink("slow", &url);
    sink.max_attempts = 2;
    sink.failure_threshold = 5;
    let Some(server) = server_with(backend, vec![sink]).await else {
        return;
    };
    let ada = server.register("ada").await;
    comment(&server, &ada.access_token, "v1", "hello").await;
    wait_until(
        "the slow delivery recorded as missed",
        Duration::from_secs(20),
        || async { missed(&server, "slow").await == 1 },
    )
    .await;
    // Both attempts reached it (reconciliation may already have tried once more).
    assert!(receiver.attempts.load(Ordering::SeqCst) >= 2);
    let rows = fawkes_data::entity::sink_missed::Entity::find()
        .all(&server.db)
        .await
        .expect("rows");
    let error = rows[0].last_error.clone().unwrap_or_default();
    assert!(error.contains("timed out"), "{error}");
}

/// A 4xx other than 408/429 is refused for good: the job is discarded with the error, nothing
/// is missed, and the breaker stays closed (the next delivery goes straight out).
async fn a_refusing_receiver_discards_the_delivery_on(backend: common::Backend) {
    let (receiver, url) = receiver().await;
    receiver.set(Mode::Gone);
    let Some(server) = server_with(backend, vec![webhook_sink("gone", &url)]).await else {
        return;
    };
    let ada = server.register("ada").await;
    for n in 0..4 {
        comment(&server, &ada.access_token, "v1", &format!("c{n}")).await;
    }
    wait_until(
        "four deliveries discarded",
        Duration::from_secs(20),
        || async { sink_jobs(&server, JobState::Discarded).await.len() == 4 },
    )
    .await;
    let discarded = sink_jobs(&server, JobState::Discarded).await;
    assert!(discarded.iter().all(|job| {
        job.attempt == 1
            && job
                .last_error
                .as_deref()
                .unwrap_or_default()
                .contains("410")
    }));
    assert_eq!(missed(&server, "gone").await, 0);
    receiver.set(Mode::Ok);
    comment(&server, &ada.access_token, "v1", "after").await;
    wait_until(
        "the next delivery taken",
        Duration::from_secs(10),
        || async { receiver.delivered() == 1 },
    )
    .await;
}

use sea_orm::EntityTrait;

/// A Firebase Realtime Database stand-in: a map of path → value, `PUT` and `DELETE` on
/// `/{path}.json?auth=TOKEN`, 401 for any other token.
#[derive(Default)]
struct Firebase {
    data: Mutex<BTreeMap<String, Value>>,
    refused: AtomicU64,
}

async fn firebase_put(
    State(db): State<Arc<Firebase>>,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> (StatusCode, String) {
    if query.get("auth").map(String::as_str) != Some(TOKEN) {
        db.refused.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::UNAUTHORIZED,
            "{\"error\":\"Permission denied\"}".into(),
        );
    }
    let Some(path) = path.strip_suffix(".json") else {
        return (StatusCode::BAD_REQUEST, "no .json".into());
    };
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "{\"error\":\"Invalid data\"}".into(),
        );
    };
    db.data.lock().expect("lock").insert(path.to_owned(), value);
    (StatusCode::OK, String::from_utf8_lossy(&body).into_owned())
}

async fn firebase_delete(
    State(db): State<Arc<Firebase>>,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    if query.get("auth").map(String::as_str) != Some(TOKEN) {
        db.refused.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::UNAUTHORIZED,
            "{\"error\":\"Permission denied\"}".into(),
        );
    }
    let Some(path) = path.strip_suffix(".json") else {
        return (StatusCode::BAD_REQUEST, "no .json".into());
    };
    db.data.lock().expect("lock").remove(path);
    (StatusCode::OK, "null".into())
}

fn firebase_sink(name: &str, base: &str, auth: &str) -> SinkConfig {
    SinkConfig {
        name: name.to_owned(),
        kind: SinkKind::Firebase,
        url: base.to_owned(),
        secret: None,
        auth: Some(auth.to_owned()),
        events: Vec::new(),
        mirror: vec!["comments".to_owned(), "presence".to_owned()],
        failure_threshold: 3,
        cooldown_secs: 1,
        timeout_secs: 2,
        max_attempts: 5,
    }
}

/// The mirror ends as the source is: comments added, edited and deleted; a user present in a
/// room while joined and gone once they leave. A sink with a wrong token is refused (401) and
/// its deliveries discarded.
async fn firebase_mirrors_comments_and_presence_on(backend: common::Backend) {
    let state = Arc::new(Firebase::default());
    let router = axum::Router::new()
        .route("/{*path}", put(firebase_put).delete(firebase_delete))
        .with_state(state.clone());
    let base = serve(router).await;
    let sinks = vec![
        firebase_sink("firebase", &base, TOKEN),
        firebase_sink("firebase_wrong_token", &base, "not-the-token"),
    ];
    let Some(server) = server_with(backend, sinks).await else {
        return;
    };
    let ada = server.register("ada").await;
    let kept = comment(&server, &ada.access_token, "v9", "first words").await;
    let gone = comment(&server, &ada.access_token, "v9", "soon deleted").await;
    let kept_id = kept["id"].as_str().expect("id").to_owned();
    let gone_id = gone["id"].as_str().expect("id").to_owned();
    server
        .patch(
            &format!("/api/v1/comments/{kept_id}"),
            &ada.access_token,
            json!({ "content": "edited words" }),
        )
        .await
        .expect(200);
    server
        .delete(&format!("/api/v1/comments/{gone_id}"), &ada.access_token)
        .await
        .expect(204);
    let kept_path = format!("comments/v9/{kept_id}");
    let gone_path = format!("comments/v9/{gone_id}");
    wait_until(
        "the mirror holds the edited comment only",
        Duration::from_secs(20),
        || async {
            let data = state.data.lock().expect("lock").clone();
            data.get(&kept_path).map(|c| c["content"].clone()) == Some(json!("edited words"))
                && !data.contains_key(&gone_path)
        },
    )
    .await;
    let mirrored = state.data.lock().expect("lock")[&kept_path].clone();
    assert_eq!(mirrored["author"], "ada");
    assert_eq!(mirrored["video_id"], "v9");

    // Presence: joined, then gone.
    let presence_path = format!("presence/room:lobby/{}", ada.user_id);
    let mut socket = server.socket(&ada.access_token).await;
    let reply = socket.join("room:lobby", "1", json!({})).await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    wait_until(
        "the mirror shows ada in the lobby",
        Duration::from_secs(20),
        || async {
            state
                .data
                .lock()
                .expect("lock")
                .get(&presence_path)
                .map(|p| p["username"].clone())
                == Some(json!("ada"))
        },
    )
    .await;
    socket.close().await;
    wait_until(
        "the mirror shows ada gone",
        Duration::from_secs(20),
        || async {
            !state
                .data
                .lock()
                .expect("lock")
                .contains_key(&presence_path)
        },
    )
    .await;

    // The wrong token was refused every time, and those deliveries were discarded.
    wait_until(
        "the wrong token's deliveries discarded",
        Duration::from_secs(20),
        || async {
            sink_jobs(&server, JobState::Discarded)
                .await
                .iter()
                .filter(|job| job.args.contains("firebase_wrong_token"))
                .count()
                >= 4
        },
    )
    .await;
    assert!(state.refused.load(Ordering::SeqCst) >= 4);
    assert_eq!(missed(&server, "firebase").await, 0);
}

/// Runs each `*_on` test on every configured backend under the usual module names.
macro_rules! on_every_backend {
    ($($name:ident => $on:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$on(crate::common::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$on(crate::common::Backend::Postgres).await }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$on(crate::common::Backend::MySql).await }
            )*
        }
    };
}

on_every_backend!(
    breaker_opens_and_reconciliation_delivers_everything_once => breaker_opens_and_reconciliation_delivers_everything_once_on,
    a_slow_receiver_is_a_failure => a_slow_receiver_is_a_failure_on,
    a_refusing_receiver_discards_the_delivery => a_refusing_receiver_discards_the_delivery_on,
    firebase_mirrors_comments_and_presence => firebase_mirrors_comments_and_presence_on,
);
