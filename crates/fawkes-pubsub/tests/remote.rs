//! Two buses ("nodes") joined through a real Redis, NATS or PostgreSQL: what one publishes,
//! the other delivers exactly once, and the publisher never delivers its own message twice.
//! Each test runs when its server's URL is set (CI sets all three).

use std::time::{Duration, Instant};

use fawkes_pubsub::{Backend, Payload, PubSub};
use serde_json::json;

fn url(var: &str) -> Option<String> {
    let url = std::env::var(var).ok().filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("skipped: {var} is not set");
    }
    url
}

/// Waits, bounded, until both nodes are listening.
async fn connected(nodes: &[&PubSub]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !nodes
        .iter()
        .all(|n| n.remote_status().is_some_and(|s| s.is_connected()))
    {
        assert!(Instant::now() < deadline, "the bus did not connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn exactly_once_across_nodes(backend: impl Fn() -> Backend) {
    let (a, b) = (PubSub::new(), PubSub::new());
    let cluster = format!("remote_{}", rand_suffix());
    a.connect_remote_as(backend(), &cluster);
    b.connect_remote_as(backend(), &cluster);
    connected(&[&a, &b]).await;
    let topic = format!("room:bus-{}", rand_suffix());
    let mut on_a = a.subscribe(&topic, 16);
    let mut on_b = b.subscribe(&topic, 16);
    let big = "x".repeat(20_000);
    a.broadcast(&topic, "new_msg", json!({"body": "hello"}));
    a.broadcast(&topic, "big", json!({"body": big}));
    b.publish(fawkes_pubsub::Broadcast {
        topic: topic.clone().into(),
        event: "bin".into(),
        payload: Payload::Binary(vec![1u8, 2, 3].into()),
        origin: None,
    });
    for node in [&mut on_a, &mut on_b] {
        let mut events = Vec::new();
        for _ in 0..3 {
            let message = tokio::time::timeout(Duration::from_secs(10), node.recv())
                .await
                .expect("arrives")
                .expect("open");
            if &*message.event == "big" {
                assert_eq!(
                    message.payload,
                    Payload::Json(json!({"body": big})),
                    "large messages arrive whole"
                );
            }
            events.push(message.event.to_string());
        }
        events.sort();
        assert_eq!(
            events,
            ["big", "bin", "new_msg"],
            "each message once, on both nodes"
        );
    }
    // Nothing arrives twice: a marker published last is the next thing each node sees.
    a.broadcast(&topic, "marker", json!({}));
    for node in [&mut on_a, &mut on_b] {
        let next = tokio::time::timeout(Duration::from_secs(10), node.recv())
            .await
            .expect("arrives")
            .expect("open");
        assert_eq!(
            &*next.event, "marker",
            "a duplicate arrived before the marker"
        );
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_joins_nodes() {
    let Some(url) = url("FAWKES_TEST_REDIS_URL") else {
        return;
    };
    exactly_once_across_nodes(|| Backend::Redis(url.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_joins_nodes() {
    let Some(url) = url("FAWKES_TEST_NATS_URL") else {
        return;
    };
    exactly_once_across_nodes(|| Backend::Nats(url.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_joins_nodes_and_carries_large_messages() {
    let Some(url) = url("FAWKES_TEST_POSTGRES_URL") else {
        return;
    };
    let db = fawkes_data::connect(&url, &fawkes_data::PoolOptions::default())
        .await
        .expect("connects");
    <fawkes_data::Migrator as fawkes_data::MigratorTrait>::up(&db, None)
        .await
        .expect("migrates");
    let pool = db.get_postgres_connection_pool().clone();
    exactly_once_across_nodes(|| Backend::Postgres(pool.clone())).await;
}
