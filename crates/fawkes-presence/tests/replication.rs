//! Presence replicated between two nodes over a real Redis bus: late joiners catch up by state
//! transfer, deltas follow, a silent node's entries leave within the timeout, and a restarted
//! node converges. Runs when FAWKES_TEST_REDIS_URL is set (CI sets it).

use std::time::{Duration, Instant};

use fawkes_presence::{ReplicationSettings, Tracker};
use fawkes_pubsub::{Backend, Payload, PubSub};
use serde_json::{Map, Value, json};

const SETTINGS: ReplicationSettings = ReplicationSettings {
    heartbeat: Duration::from_millis(100),
    node_timeout: Duration::from_secs(1),
};

async fn node(url: &str) -> (PubSub, Tracker) {
    let bus = PubSub::new();
    let cluster = format!("replication_{}", std::process::id());
    bus.connect_remote_as(Backend::Redis(url.to_owned()), &cluster);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !bus.remote_status().is_some_and(|s| s.is_connected()) {
        assert!(Instant::now() < deadline, "redis did not connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tracker = Tracker::new(bus.clone());
    (bus, tracker)
}

fn meta(name: &str) -> Map<String, Value> {
    let Value::Object(map) = json!({ "username": name }) else {
        return Map::new();
    };
    map
}

fn keys(tracker: &Tracker, topic: &str) -> Vec<String> {
    let mut keys: Vec<String> = tracker
        .list(topic)
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// Waits, bounded, until `tracker` shows exactly `expected` on `topic`; returns how long it took.
async fn converges(tracker: &Tracker, topic: &str, expected: &[&str]) -> Duration {
    let started = Instant::now();
    while keys(tracker, topic) != expected {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "presence never became {expected:?}: {:?}",
            keys(tracker, topic)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_converge_and_forget_silent_ones() {
    let Some(url) = std::env::var("FAWKES_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: FAWKES_TEST_REDIS_URL is not set");
        return;
    };
    let topic = format!("room:presence-{}", std::process::id());
    let (_bus_a, a) = node(&url).await;
    let a_task = a.start_replication(SETTINGS);
    a.track(1, &topic, "u1", meta("one"));

    // B starts after A tracked u1: it learns by state transfer.
    let (bus_b, b) = node(&url).await;
    let _b_task = b.start_replication(SETTINGS);
    converges(&b, &topic, &["u1"]).await;
    b.track(7, &topic, "b1", meta("bee"));
    converges(&a, &topic, &["b1", "u1"]).await;

    // Deltas: a new entry and a removal.
    a.track(2, &topic, "u2", meta("two"));
    a.untrack(1, &topic);
    converges(&b, &topic, &["b1", "u2"]).await;

    // A goes silent (as if killed): B drops its entries and tells its own subscribers.
    let mut on_b = bus_b.subscribe(&topic, 64);
    a_task.abort();
    let took = converges(&b, &topic, &["b1"]).await;
    assert!(
        took <= Duration::from_secs(3),
        "A's entries left after {took:?}"
    );
    let leave = loop {
        let message = tokio::time::timeout(Duration::from_secs(5), on_b.recv())
            .await
            .expect("a diff")
            .expect("open");
        if let Payload::Json(diff) = &message.payload
            && diff["leaves"].get("u2").is_some()
        {
            break diff.clone();
        }
    };
    assert_eq!(leave["joins"], json!({}));

    // A restarts (a new node): everyone converges again.
    let (_bus_a2, a2) = node(&url).await;
    let _a2_task = a2.start_replication(SETTINGS);
    a2.track(3, &topic, "u3", meta("three"));
    converges(&b, &topic, &["b1", "u3"]).await;
    converges(&a2, &topic, &["b1", "u3"]).await;
}
